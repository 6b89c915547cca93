"use strict";
const { Adapter, ClusterAdapterWithHeartbeat, MessageType } = require("socket.io-adapter");
const { randomBytes } = require("crypto");
const { SharedClient } = require("./client");
const { codes, toError } = require("./errors");
const { channelName, namespaceProblem } = require("./channel");
const { Readiness } = require("./readiness");
const { resolveOptions, MAX_UID_LENGTH } = require("./options");
const { paramsProvider, connectTimeoutOf } = require("./connection");
const { DeliveredLog, isRestorable } = require("./recovery");
const { healthOf } = require("./health");
const { appendTarget, encodable, encodeRelayed, isDefaultJsonEncoder, relayedFrame } = require("./relay");
const { batchWrites } = require("./batched-writes");

const EVENT = 2; // socket.io-parser packet type

// What socket.io-adapter would give an offset to: a plain event broadcast, no ack, not volatile.
function isRecoverable(message) {
  if (message.type !== MessageType.BROADCAST || message.data.requestId !== undefined) return false;
  const { packet, opts } = message.data;
  return packet.type === EVENT && packet.id === undefined && !(opts.flags && opts.flags.volatile);
}

// Any role may NOTIFY heartbeats under made-up uids, each remembered for heartbeatTimeout: a uid longer
// than ours may be (MAX_UID_LENGTH) is refused, and at most MAX_PEERS servers are remembered.
const MAX_PEERS = 10000;
// Broadcasts of other servers whose acknowledgements our clients may still send (see forgetAcks).
const MAX_ACK_REQUESTS = 1000;
const MAX_TIMER = 2 ** 31 - 1;

// The core keeps maxDisconnectionDuration in 32 bits: a longer one (Infinity too) counts as about 49.7
// days instead of wrapping around (Infinity would have become 0: nothing recoverable); NaN or <= 0: off.
const MAX_RECOVERY_MS = 2 ** 32 - 1;
const recoveryDurationOf = (ms) => (ms > 0 ? Math.min(ms, MAX_RECOVERY_MS) : 0);

const GATE = Symbol("postgres-adapter gate");

// Runs before any middleware of the namespace (socket.io-adapter has no hook for incoming
// connections): the namespace's current adapter admits or refuses each one.
function installGate(nsp) {
  if (nsp[GATE] || !Array.isArray(nsp._fns)) return;
  nsp[GATE] = true;
  nsp._fns.unshift((socket, next) => {
    const adapter = socket.nsp.adapter;
    if (adapter instanceof PostgresAdapter) adapter.admit(next);
    else next();
  });
}

class PostgresAdapter extends ClusterAdapterWithHeartbeat {
  /**
   * @param nsp the namespace
   * @param opts resolved options (see createAdapter)
   * @param client the SharedClient of this createAdapter() call
   */
  constructor(nsp, opts, client) {
    super(nsp, opts);
    // Never throws: a client can make Socket.IO create a namespace (a dynamic one), and this runs
    // where nothing catches. A name that cannot be a channel is refused and reported instead.
    const problem = namespaceProblem(opts.channelPrefix, nsp.name);
    // One id per server (all its namespaces), so the native core can drop our own messages early.
    this.uid = opts.uid;
    this.requestsTimeout = opts.requestsTimeout;
    this.channel = problem === null ? channelName(opts.channelPrefix, nsp.name) : null; // null: refused
    this.client = client;
    this.ackCleanupTimers = new Set();
    this.remoteAcks = new Map(); // packet id -> timer, oldest first: broadcasts of other servers waiting for our clients' acks
    this.heartbeatQueued = false; // a HEARTBEAT of ours is queued or in flight (see publish)
    this.announceOwed = false; // an INITIAL_HEARTBEAT is owed at the next heartbeat tick (see onMessagesLost)
    this.pendingFetches = new Set(); // reject functions of fetchSockets() calls waiting for other servers
    const recovery = nsp.server && nsp.server.opts && nsp.server.opts.connectionStateRecovery;
    this.recoveryDuration = recovery ? recoveryDurationOf(recovery.maxDisconnectionDuration) : 0;
    this.delivered = new DeliveredLog(); // connection state recovery (lib/recovery.js)
    installGate(nsp);
    if (this.channel === null) {
      this.readiness = new Readiness({ readyTimeout: 0 });
      client.report(toError(`${problem}; its connections are refused`, codes.BAD_NAMESPACE));
      return;
    }
    const { readyTimeout, discoveryWindow } = opts;
    this.readiness = new Readiness({
      readyTimeout,
      discoveryWindow,
      onTimeout: () =>
        client.report(
          toError(
            `the LISTEN of namespace ${JSON.stringify(nsp.name)} was not confirmed within ${readyTimeout} ms: ` +
              "its connections are no longer held (they may miss broadcasts until it is)",
            codes.READY_TIMEOUT,
          ),
        ),
    });
    client.attach(this.channel, this); // may call onListening() at once
    if (this.recoveryDuration) client.native.enableRecovery(this.recoveryDuration);
  }

  // Quiet idle: the periodic heartbeat is skipped while the peers' presence says enough (lib/presence.js).
  scheduleHeartbeat() {
    if (this.heartbeatTimer) {
      this.heartbeatTimer.refresh();
      return;
    }
    this.heartbeatTimer = setTimeout(() => {
      if (this.announceOwed) {
        this.announceOwed = false;
        this.publish({ type: MessageType.INITIAL_HEARTBEAT }); // refreshes the timer
      } else if (this.client.presence && this.client.presence.quiet()) this.heartbeatTimer.refresh();
      else this.publish({ type: MessageType.HEARTBEAT });
    }, this._opts.heartbeatInterval);
  }

  // Quiet idle leaves membership to the INITIAL_HEARTBEAT and its answers (no periodic heartbeat makes up
  // for a lost one): after PostgreSQL refused or dropped a publish of ours (a cancel, a timeout, a revoked
  // pg_notify, a full queue) or our inbound queue dropped notifications, any of which may have been one of
  // them, the next tick announces us again and the peers answer. A loss of that one is reported too, and
  // owes the next.
  onMessagesLost() {
    if (this.client.presence && this.client.presence.enabled) this.announceOwed = true;
  }

  // One HEARTBEAT not yet committed answers every INITIAL_HEARTBEAT heard meanwhile: it commits after
  // them, so their senders (LISTENing by then) receive it. Any role may NOTIFY 100,000 of them in one
  // statement; an answer each would fill the publish queue and drop real broadcasts (PUBLISH_DROPPED).
  publish(message) {
    if (message.type !== MessageType.HEARTBEAT) return super.publish(message);
    this.scheduleHeartbeat();
    if (this.heartbeatQueued) return;
    this.heartbeatQueued = true;
    const sent = () => {
      this.heartbeatQueued = false;
    };
    this.publishAndReturnOffset(message).then(sent, sent); // a failure is reported by the core
  }

  // Called for every incoming connection, before the namespace's own middlewares: a connection
  // completes once we are ready (see Readiness): its client misses no broadcast published after
  // that, and requests made then, here or by the peers, count this server and every live peer.
  admit(next) {
    if (this.channel === null) return next(new Error("Invalid namespace")); // what Socket.IO says for an unknown one
    this.readiness.whenReady(next);
  }

  // The native core confirmed our LISTEN; the INITIAL_HEARTBEAT goes out now and peers answer it.
  onListening() {
    this.readiness.listening();
  }

  // PostgreSQL is unreachable (reported as CONNECTION_LOST): waiting for it would only keep local
  // clients out. They are served at once, as every server is while the database is down.
  onDatabaseDown() {
    this.readiness.done();
  }

  onMessage(message, offset) {
    const uid = message && message.uid;
    if (typeof uid === "string" && uid.length > MAX_UID_LENGTH) {
      this.client.report(toError(`ignored a message on ${this.channel} with a uid of ${uid.length} characters (at most ${MAX_UID_LENGTH})`, codes.BAD_NOTIFICATION));
      return undefined;
    }
    const ackRequest = message && message.type === MessageType.BROADCAST && uid !== this.uid &&
      message.data && message.data.requestId !== undefined;
    if (message && this.client.presence) this.client.presence.heard(uid); // quiet idle
    if (offset !== undefined && message && message.type === MessageType.BROADCAST) this.leaveOutReplayed(message, offset);
    const known = this.nodesMap.size;
    const firstId = this.nsp._ids; // socket.io numbers the packets of a namespace from this counter
    const result = super.onMessage(message, offset);
    if (ackRequest) this.forgetAcks(message.data, firstId);
    if (message && message.type === MessageType.ADAPTER_CLOSE && this.client.presence) {
      this.client.presence.closed(uid, this);
    }
    if (this.nodesMap.size > known) {
      if (this.nodesMap.size > MAX_PEERS) {
        this.nodesMap.delete(uid); // its message was handled; the server is not counted
        this.client.report(toError(`not counting server ${uid} on ${this.channel}: ${MAX_PEERS} servers are known already`, codes.BAD_NOTIFICATION));
      } else {
        this.readiness.peerSeen();
      }
    }
    return result;
  }

  // Socket.IO keeps a broadcast's acknowledgement callback on each of our sockets until its client
  // answers; only the requesting server drops them, when its timeout fires. Those of another server's
  // broadcast are dropped here at that same timeout (flags.timeout, sent with it). At most
  // MAX_ACK_REQUESTS such broadcasts keep callbacks (any role may NOTIFY broadcasts with acknowledgements):
  // past it, the oldest stops waiting. Its clients mostly answered already; the callbacks still waiting
  // are reported (ACKS_DROPPED). A new broadcast is always delivered.
  forgetAcks({ packet, opts }, firstId) {
    const id = packet && packet.id;
    if (typeof id !== "number" || !(id >= firstId)) return; // not broadcast here (an id of the sender's own)
    const ms = Number(opts && opts.flags && opts.flags.timeout);
    const timer = setTimeout(() => this.dropAcks(id), Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_TIMER) : 0);
    timer.unref();
    this.remoteAcks.set(id, timer);
    if (this.remoteAcks.size <= MAX_ACK_REQUESTS) return;
    const dropped = this.dropAcks(this.remoteAcks.keys().next().value);
    if (dropped > 0) {
      this.client.report(toError(`stopped waiting for ${dropped} acknowledgement(s) of a broadcast from another server on ${this.channel}: ` +
        `${MAX_ACK_REQUESTS} newer broadcasts with acknowledgements are waiting for our clients`, codes.ACKS_DROPPED));
    }
  }

  // The callbacks our sockets still keep for the broadcast `id` of another server are dropped; returns how many.
  dropAcks(id) {
    clearTimeout(this.remoteAcks.get(id));
    this.remoteAcks.delete(id);
    let dropped = 0;
    for (const socket of this.nsp.sockets.values()) if (socket.acks.delete(id)) dropped++;
    return dropped;
  }

  // Requests count the peers found so far: a just-started server waits for discovery first.
  serverCount() {
    return this.readiness.afterReady(() => super.serverCount());
  }

  // As socket.io-adapter's, except that the timer forgetting the request is tracked, unref'd and
  // cleared on close(): a closed server does not keep the process alive for the ack timeout.
  broadcastWithAck(packet, opts, clientCountCallback, ack) {
    if (opts && opts.flags && opts.flags.local) {
      Adapter.prototype.broadcastWithAck.call(this, packet, opts, clientCountCallback, ack);
      // Socket.IO completes the ack once it has one client count per server of serverCount(): the
      // other servers take no part in a local broadcast, so they count 0 clients (without this, every
      // local emit with an ack ended in its timeout, as with the pure-JS adapter).
      if (this.readiness.isReady) for (let i = 0; i < this.nodesMap.size; i++) clientCountCallback(0);
      return;
    }
    const requestId = randomBytes(8).toString("hex");
    this.ackRequests.set(requestId, { clientCountCallback, ack });
    this.publish({
      type: MessageType.BROADCAST,
      data: {
        packet,
        requestId,
        opts: { rooms: [...opts.rooms], except: [...(opts.except || [])], flags: opts.flags },
      },
    });
    const timer = setTimeout(() => {
      this.ackCleanupTimers.delete(timer);
      this.ackRequests.delete(requestId);
    }, opts.flags.timeout);
    timer.unref();
    this.ackCleanupTimers.add(timer);
    Adapter.prototype.broadcastWithAck.call(this, packet, opts, clientCountCallback, ack);
  }

  doPublish(message) {
    if (this.channel === null) return Promise.resolve(); // a refused namespace is local only
    if (this.recoveryDuration && isRecoverable(message)) {
      const { packet, opts } = message.data;
      const data = packet.data.slice(); // before socket.io appends the offset
      // Resolves when our own notification comes by on the listening connection, i.e. in the same
      // order as the other servers' packets: a client's last offset then covers all before it. No
      // offset (undefined): sent unlogged, delivered locally at once (see README: recovery).
      return this.client.publishLogged(this.channel, message).then((offset) => {
        if (offset !== undefined) this.recordDelivered(offset, data, opts);
        return offset;
      });
    }
    return this.client.publish(this.channel, message);
  }

  // Connection state recovery: only a message with an offset gets one appended (a message from a
  // pure-JS server or an emitter has none, and must not gain an `undefined` argument).
  addOffsetIfNecessary(packet, opts, offset) {
    if (offset === undefined || offset === null || offset === "") return;
    // A relayed packet nobody has read (lib/relay.js): the offset joins its JSON unparsed.
    const tail = appendTarget(packet);
    if (tail !== undefined) packet = { type: packet.type, id: packet.id, data: tail };
    super.addOffsetIfNecessary(packet, opts, offset);
  }

  // A relayed broadcast (lib/relay.js) goes to the clients as the JSON received, when the server
  // encodes as Socket.IO's default encoder does; socket.io-adapter's _encode still builds the rest
  // (the websocket frame). Anything else, or a relayed packet something has read, is encoded as usual.
  _encode(packet, packetOpts) {
    // No socket of this namespace on this server: apply() will find nobody to write to, so nothing is
    // encoded (a server that only emits, e.g. an API server, skips serializing every packet).
    if (this.sids.size === 0) return [];
    const encoded = this.relays() ? encodeRelayed(packet) : undefined;
    if (encoded === undefined) return super._encode(encodable(packet), packetOpts);
    const frame = relayedFrame(packet);
    if (frame === undefined) return super._encode.call({ encoder: { encode: () => encoded } }, packet, packetOpts);
    packetOpts.wsPreEncodedFrame = frame; // ws writes both parts (engine.io skips it where it cannot)
    return encoded;
  }

  // Every local delivery (broadcasts from PostgreSQL and from this server) passes here: the
  // sockets written to get batched writes (lib/batched-writes.js).
  apply(opts, callback) {
    return super.apply(opts, (socket) => {
      batchWrites(socket.conn);
      callback(socket);
    });
  }

  relays() {
    if (this.relaying === undefined) this.relaying = isDefaultJsonEncoder(this.encoder, this.nsp.server);
    return this.relaying;
  }

  persistSession(session) {
    if (!this.recoveryDuration) return;
    // Socket.IO neither awaits nor catches this call: nothing may escape it.
    let stored;
    try {
      stored = this.client.native.persistSession(session.pid, session.sid, this.nsp.name, session.rooms, session.data);
    } catch (err) {
      this.client.report(
        toError(`cannot store the session of socket ${session.sid} (it will not be recoverable): ${err && err.message}`, codes.RECOVERY_FAILED),
      );
      return;
    }
    stored.catch((err) => this.client.report(toError(err, codes.RECOVERY_FAILED)));
  }

  // A restore replayed this broadcast to some sockets before its notification came: the live delivery leaves
  // them out (each socket is in the room of its id). A copy of the options: the recovery log keeps the received ones.
  leaveOutReplayed(message, offset) {
    const sids = this.delivered.exceptReplayed(offset);
    const opts = message.data && message.data.opts;
    if (sids.length === 0 || !opts || typeof opts !== "object") return;
    message.data.opts = { ...opts, except: [...(Array.isArray(opts.except) ? opts.except : []), ...sids] };
  }

  // Called in delivery order for every logged broadcast (ours and the other servers').
  recordDelivered(offset, data, opts) {
    this.delivered.record(offset, data, opts);
  }

  async restoreSession(pid, offset) {
    if (!this.recoveryDuration || !isRestorable(pid, offset)) return null;
    const key = `${this.nsp.name}\0${pid}`;
    // closing, given up, or too many waiting: a fresh session
    if (!(await this.client.beginRestore(key, this.nsp.server.connectTimeout() || 45000))) return null;
    let session;
    try {
      session = await this.client.native.restoreSession(pid, this.nsp.name, offset, this.client.opts.maxRecoveredPackets);
    } catch (err) {
      this.client.report(toError(err, codes.RECOVERY_FAILED));
      return null;
    } finally {
      this.client.endRestore();
    }
    if (!session) return null;
    const missedPackets = this.delivered.missed(session, offset);
    if (!missedPackets) return null; // cannot be sure what was missed: a fresh session
    return { sid: session.sid, pid, rooms: session.rooms, data: session.data, missedPackets };
  }

  doPublishResponse(requesterUid, response) {
    if (this.channel === null) return Promise.resolve();
    return this.client.publish(this.channel, response);
  }

  fetchSockets(opts) {
    if (opts.flags && opts.flags.local) return Adapter.prototype.fetchSockets.call(this, opts);
    if (!opts.flags || !opts.flags.timeout) {
      opts = { ...opts, flags: { ...opts.flags, timeout: this.requestsTimeout } };
    }
    // socket.io-adapter keeps no way to reject a waiting request: close() needs one.
    return new Promise((resolve, reject) => {
      this.pendingFetches.add(reject);
      super.fetchSockets(opts).then(resolve, reject).finally(() => this.pendingFetches.delete(reject));
    });
  }

  serverSideEmit(packet) {
    const ack = packet[packet.length - 1];
    if (typeof ack !== "function") return super.serverSideEmit(packet);
    // Expects an answer from each peer known when it is sent.
    return this.readiness.afterReady(() => {
      const result = super.serverSideEmit(packet);
      this.applyRequestsTimeout(ack);
      return result;
    });
  }

  // socket.io-adapter waits a fixed 5 s for serverSideEmit answers: use requestsTimeout instead.
  applyRequestsTimeout(ack) {
    for (const [requestId, request] of this.customRequests) {
      if (request.resolve !== ack) continue;
      clearTimeout(request.timeout);
      request.timeout = setTimeout(() => {
        if (this.customRequests.get(requestId) !== request) return;
        this.customRequests.delete(requestId);
        ack(new Error(`timeout reached: missing ${request.missingUids.size} responses`), request.responses);
      }, this.requestsTimeout);
      return;
    }
  }

  /** This server's figures: one native client serves every namespace of a createAdapter(). See the README. */
  stats() {
    return this.client.native.stats();
  }

  /** { ok, reasons, ... } for readiness probes. See the README. */
  health(options) {
    return healthOf(this.client.native.stats(), this.client.opts.maxPublishQueue, options);
  }

  async close() {
    this.readiness.done();
    for (const timers of [this.ackCleanupTimers, this.remoteAcks]) {
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    }
    this.ackRequests.clear();
    // Requests still waiting for other servers end now (with what they got), not at their timeout.
    const closed = () => new Error("the adapter is closed");
    for (const requests of [this.customRequests, this.requests]) {
      if (!requests) continue;
      for (const request of requests.values()) {
        clearTimeout(request.timeout);
        if (request.type !== MessageType.SERVER_SIDE_EMIT) continue;
        try {
          request.resolve(closed(), request.responses);
        } catch (err) {
          this.client.report(err); // the user's acknowledgement callback threw
        }
      }
      requests.clear();
    }
    for (const reject of this.pendingFetches) reject(closed());
    this.pendingFetches.clear();
    super.close(); // publishes ADAPTER_CLOSE, stops the heartbeat
    await this.client.detach(this.channel);
  }
}

/**
 * Returns the adapter factory for `new Server({ adapter })` or `io.adapter()`.
 * @param source a pg.Pool (its connection options are used; no slot of the pool is taken),
 *               a connection string, or a pg-style connection config object
 */
function createAdapter(source, userOpts) {
  const opts = resolveOptions(userOpts);
  const getParams = paramsProvider(source);
  // The pool's (or config's) connectionTimeoutMillis, unless connectTimeout is given.
  const poolTimeout = connectTimeoutOf(source);
  if (Number.isInteger(poolTimeout) && poolTimeout > 0 && (!userOpts || userOpts.connectTimeout === undefined)) {
    opts.connectTimeout = poolTimeout;
  }
  let client = null;
  return function (nsp) {
    if (!client || client.closed) client = new SharedClient(getParams, opts);
    return new PostgresAdapter(nsp, opts, client);
  };
}

module.exports = { PostgresAdapter, createAdapter };
