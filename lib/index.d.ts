// Only socket.io-adapter (a peer dependency) is imported: a project that uses just the Emitter has no socket.io.
import type {
  ClusterAdapterWithHeartbeat,
  ClusterAdapterOptions,
  ClusterMessage,
  ClusterResponse,
  Offset,
  ServerId,
} from "socket.io-adapter";

/** The codes of PostgresAdapterError (the list is binding/core/error_codes.h; a test keeps this in step). */
export type PostgresAdapterErrorCode =
  | "CONNECTION_LOST" // a connection failed or was lost; it is retried (reported once per outage)
  | "RECONNECTED" // that connection is back (and LISTENs again)
  | "PUBLISH_FAILED" // PostgreSQL refused a publish, or the connection was lost while it was in flight
  | "PUBLISH_DROPPED" // the publish queue was full, the adapter is closed, or the channel is not a valid name
  | "ENCODE_FAILED" // a message cannot be serialized (a BigInt, a circular structure, nesting over 512 levels)
  | "BAD_NOTIFICATION" // a malformed notification on one of our channels; skipped
  | "BAD_ATTACHMENT" // an attachment row that is not a valid msgpack cluster message; skipped
  | "ATTACHMENT_MISSING" // an announced attachment row is gone (deleted by the cleanup); skipped
  | "INBOUND_OVERFLOW" // too much waits for delivery; new notifications are dropped until the queue drains
  | "ATTACHMENT_FETCH_FAILED" // fetching an announced attachment row failed
  | "LISTEN_FAILED" // a LISTEN statement failed
  | "CLEANUP_FAILED" // the periodic cleanup of old rows failed
  | "CREATE_TABLE_FAILED" // creating a table (createTable: true) failed
  | "BAD_TABLE_NAME" // a table name SQL cannot read (thrown by createAdapter), or one libpq cannot quote
  | "MESSAGE_FAILED" // Socket.IO's adapter threw while handling a received message; skipped
  | "RECOVERY_FAILED" // a connection state recovery statement failed (the client gets a fresh session)
  | "RECOVERY_UNAVAILABLE" // the recovery tables are missing and cannot be created: broadcasts go out unrecoverable
  | "IPC_FAILED" // setupPrimary could not forward a message to a worker
  | "BAD_NAMESPACE" // a namespace that cannot be mapped to a channel name
  | "CALLBACK_FAILED" // a callback into JavaScript threw
  | "NATIVE_FAILED" // the native core could not complete a call (out of memory or an internal error)
  | "READY_TIMEOUT" // a namespace's LISTEN was not confirmed within readyTimeout; its connections are no longer held (reported once)
  | "ACKS_DROPPED"; // over 1,000 broadcasts with acknowledgements from other servers wait for our clients: the oldest one's unanswered callbacks are dropped

/** Every error the package reports to `errorHandler` (or throws with a code); `code` says what happened. */
export declare class PostgresAdapterError extends Error {
  constructor(message: string, code: PostgresAdapterErrorCode, options?: { cause?: unknown });
  readonly name: "PostgresAdapterError";
  code: PostgresAdapterErrorCode;
}

/** Each code with its one-line meaning (frozen). */
export declare const errorCodes: Readonly<Record<PostgresAdapterErrorCode, string>>;

export interface PostgresAdapterOptions extends Partial<ClusterAdapterOptions> {
  /** This server's id in the cluster, at most 256 characters. @default 8 random bytes, hex */
  uid?: string;
  /** Channel name prefix: the channel of namespace `/x` is `${channelPrefix}#/x`. @default "socket.io" */
  channelPrefix?: string;
  /** Table of large and binary messages, written as in SQL: `schema.table`, `"Quoted Name"`; unquoted parts fold to lower case. @default "socket_io_attachments" */
  tableName?: string;
  /** Connection state recovery: the log of recoverable broadcasts. @default "socket_io_log" */
  logTableName?: string;
  /** Connection state recovery: sessions of disconnected clients. @default "socket_io_sessions" */
  sessionTableName?: string;
  /** Messages whose JSON is at least this many bytes go through the table. @default 8000 */
  payloadThreshold?: number;
  /** Attachment rows older than this (ms) are deleted, checked this often; 0 disables. @default 30000 */
  cleanupInterval?: number;
  /** ms between heartbeats. @default 5000 */
  heartbeatInterval?: number;
  /** ms without a heartbeat before a server is considered gone. @default 10000 */
  heartbeatTimeout?: number;
  /** An idle cluster commits nothing: liveness from pg_stat_activity instead of heartbeat NOTIFYs (README "Quiet idle"). @default true */
  quietIdle?: boolean;
  /** Timeout (ms) of fetchSockets() and serverSideEmit() with an ack. @default 5000 */
  requestsTimeout?: number;
  /** Called with every error; must not throw (if it does, the error is ignored). @default logs with `debug` */
  errorHandler?: (err: PostgresAdapterError) => void;
  /** Create the attachment table (and the recovery tables when recovery is on) if missing. @default false */
  createTable?: boolean;
  /**
   * Messages waiting to be sent to PostgreSQL from one turn of the event loop to the next (while it is unreachable
   * or slower than the emits); more are dropped and reported (PUBLISH_DROPPED). The emits of the current turn (one
   * synchronous loop) count only from the next turn on, unless PostgreSQL is known to be down. @default 10000
   */
  maxPublishQueue?: number;
  /** On close, how long (ms) to wait for queued messages to be sent. @default 2000 */
  closeTimeout?: number;
  /** First reconnect delay (ms); doubles up to reconnectMaxDelay, with jitter. @default 100 */
  reconnectInitialDelay?: number;
  /** @default 10000 */
  reconnectMaxDelay?: number;
  /** Time limit (ms) of one connection attempt. @default 10000, or the pool's connectionTimeoutMillis */
  connectTimeout?: number;
  /** An idle connection is checked with a query this often (ms); 0 disables. @default 15000 */
  healthCheckInterval?: number;
  /**
   * A new namespace holds incoming connections and peer-counting requests (fetchSockets, serverSideEmit
   * with an ack, serverCount) until its LISTEN took effect and its peers answered, at most this long (ms);
   * past it, they go ahead and READY_TIMEOUT is reported once. 0: never hold. @default 2000
   */
  readyTimeout?: number;
  /** Peers count as found once no new one has shown up for this long (ms). @default 250 */
  discoveryWindow?: number;
  /**
   * A connection waiting this long (ms) for any answer to a statement or health check is dropped and
   * reconnected (a frozen server or a black-holed network, which TCP may not notice); 0 disables.
   * @default 10000
   */
  responseTimeout?: number;
  /** statement_timeout (ms) of the adapter's sessions (keep it below responseTimeout); 0 keeps PostgreSQL's setting. @default 5000 */
  statementTimeout?: number;
  /** Connection state recovery: a client that missed more packets than this gets a fresh session (the log is read no further). @default 10000 */
  maxRecoveredPackets?: number;
}

/** What createAdapter accepts: a pg.Pool (only its options are read), a connection string, or a pg-style config. */
export type ConnectionSource =
  | string
  | { options: object; query: (...args: any[]) => any }
  | {
      /** Its TLS settings (sslmode, ssl, sslrootcert, ...) mean what they mean to pg and replace `ssl` (see README). */
      connectionString?: string;
      host?: string;
      port?: number | string;
      user?: string;
      database?: string;
      password?: string | (() => string | Promise<string>);
      /** As in pg: true or an object verifies the server (sslmode=verify-full) unless rejectUnauthorized is false. */
      ssl?:
        | boolean
        | {
            rejectUnauthorized?: boolean;
            ca?: string | Buffer | Array<string | Buffer>;
            cert?: string | Buffer | Array<string | Buffer>;
            key?: string | Buffer | Array<string | Buffer>;
          };
      application_name?: string;
      options?: string;
      connectionTimeoutMillis?: number;
    };

/** State of one connection to PostgreSQL: "down" after a failure or loss (until it is back) and once closed. */
export type ConnectionState = "connecting" | "connected" | "down";

export interface ConnectionStats {
  state: ConnectionState;
  /** Times it came back after an outage (each RECONNECTED report). */
  reconnects: number;
}

/** stats(): this server's figures (one native client serves every namespace of a createAdapter()). */
export interface PostgresAdapterStats {
  /** `listen` is null for an Emitter (it only publishes). */
  connections: { publish: ConnectionStats; listen: ConnectionStats | null };
  /** depth: messages waiting to be sent; inFlight: those in the statements being committed (up to 4 in pipeline mode). */
  queue: { depth: number; inFlight: number };
  /** Committed to PostgreSQL; bytes: payload bytes (JSON, or msgpack for attachments). */
  published: { messages: number; attachments: number; bytes: number };
  /** From other servers and emitters, handed to Socket.IO. */
  received: { messages: number; attachments: number };
  dropped: {
    /** Published while maxPublishQueue messages were waiting (PUBLISH_DROPPED). */
    queueFull: number;
    /** Published after close() (PUBLISH_DROPPED). */
    closed: number;
    /** Refused by PostgreSQL, or in flight when the connection was lost (PUBLISH_FAILED). */
    publishFailed: number;
    /** Notifications dropped while the inbound queue was full (INBOUND_OVERFLOW). */
    inboundOverflow: number;
  };
  /** Reports to the errorHandler, by code; codes never reported are absent. */
  errors: Partial<Record<PostgresAdapterErrorCode, number>>;
  /** Publish latency (queued to committed) in ms over the last minute (at most 1024 messages); null when none. */
  latency: { p50: number | null; p99: number | null };
}

export interface HealthOptions {
  /** Not ok when more messages than this wait for PostgreSQL (queued or in flight). Default: maxPublishQueue / 2. */
  maxQueue?: number;
}

export interface PostgresAdapterHealth {
  /** Every connection "connected" and at most maxQueue messages waiting. */
  ok: boolean;
  /** Why not ok, e.g. "listen connection down", "6000 messages queued (more than 5000)". */
  reasons: string[];
  connections: { publish: ConnectionState; listen: ConnectionState | null };
  queue: { depth: number; inFlight: number; maxQueue: number };
}

export declare class PostgresAdapter extends ClusterAdapterWithHeartbeat {
  readonly channel: string;
  /** This server's figures (the same from every namespace). */
  stats(): PostgresAdapterStats;
  /** For readiness probes. Throws a TypeError for a maxQueue that is not a non-negative integer. */
  health(options?: HealthOptions): PostgresAdapterHealth;
  /** Once per outage: the first connection to PostgreSQL went down (the CONNECTION_LOST report). */
  on(event: "connection-lost", listener: (err: PostgresAdapterError) => void): this;
  /** Once per outage: every connection is back (and LISTENs again); downtime in ms. */
  on(event: "connection-restored", listener: (info: { downtime: number }) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  close(): Promise<void>;
  protected doPublish(message: ClusterMessage): Promise<Offset>;
  protected doPublishResponse(requesterUid: ServerId, response: ClusterResponse): Promise<void>;
}

export declare function createAdapter(
  source: ConnectionSource,
  opts?: PostgresAdapterOptions,
): (nsp: any) => PostgresAdapter; // nsp: socket.io's Namespace (typed loosely, as socket.io-adapter does)

export interface EmitterOptions
  extends Pick<
    PostgresAdapterOptions,
    | "channelPrefix"
    | "tableName"
    | "payloadThreshold"
    | "errorHandler"
    | "maxPublishQueue"
    | "closeTimeout"
    | "reconnectInitialDelay"
    | "reconnectMaxDelay"
    | "connectTimeout"
    | "healthCheckInterval"
    | "responseTimeout"
  > {}

export declare class BroadcastOperator {
  to(room: string | string[]): BroadcastOperator;
  in(room: string | string[]): BroadcastOperator;
  except(room: string | string[]): BroadcastOperator;
  compress(compress: boolean): BroadcastOperator;
  readonly volatile: BroadcastOperator;
  /** Throws for a reserved event name or an acknowledgement callback. */
  emit(ev: string, ...args: any[]): true;
  socketsJoin(rooms: string | string[]): void;
  socketsLeave(rooms: string | string[]): void;
  disconnectSockets(close?: boolean): void;
  /** To every server, as Emitter#serverSideEmit (rooms do not apply). Acknowledgements are not supported (throws). */
  serverSideEmit(ev: string, ...args: any[]): void;
}

/** Event names emit() refuses, as @socket.io/postgres-emitter's. */
export declare const RESERVED_EVENTS: ReadonlySet<string>;

/** Publishes to the cluster from any Node.js process; the API of @socket.io/postgres-emitter. */
export declare class Emitter {
  constructor(source: ConnectionSource, nsp?: string, opts?: EmitterOptions);
  readonly nsp: string;
  readonly channel: string;
  /** Same options and connection, another namespace. */
  of(nsp: string): Emitter;
  emit(ev: string, ...args: any[]): true;
  to(room: string | string[]): BroadcastOperator;
  in(room: string | string[]): BroadcastOperator;
  except(room: string | string[]): BroadcastOperator;
  compress(compress: boolean): BroadcastOperator;
  readonly volatile: BroadcastOperator;
  socketsJoin(rooms: string | string[]): void;
  socketsLeave(rooms: string | string[]): void;
  disconnectSockets(close?: boolean): void;
  /** Acknowledgements are not supported (throws). */
  serverSideEmit(ev: string, ...args: any[]): void;
  /** Figures of the connection shared with its of() siblings; connections.listen is null. */
  stats(): PostgresAdapterStats;
  /** ok while the publishing connection is up and at most maxQueue messages wait. */
  health(options?: HealthOptions): PostgresAdapterHealth;
  /** Sends what is queued, then closes the connection shared with its of() siblings. */
  close(): Promise<void>;
}

/** For the primary of a node:cluster whose workers use @socket.io/cluster-adapter. */
export declare function setupPrimary(
  source: ConnectionSource,
  opts?: PostgresAdapterOptions,
): { readonly nodeId: string; close(): Promise<void> };
