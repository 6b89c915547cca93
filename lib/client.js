"use strict";
// One native client per createAdapter() call, shared by all namespaces: it routes incoming
// messages to the namespace adapters by channel and turns native reports into Errors.
const native = require("./native");
const { NativeClient } = native;
const { codes, toError, redact } = require("./errors");
const { OutageTracker, RESTORED } = require("./health");
const { Presence } = require("./presence");
const { relayPacket, parseWire, receivedData, EnvelopeParser } = require("./relay");
const { plainJson } = require("./plain-json");
const debug = require("debug")("socket.io-postgres-native");

// Inline notifications arrive as JSON text already validated by the native core; attachments as objects.
// A plain broadcast comes as its envelope and `wire`, its packet's data as JSON, or [JSON, ...binaries]
// for an attachment with binaries (lib/relay.js): that data is parsed when read (relay) or now.
// envelopes: an EnvelopeParser, for the envelopes of relayed broadcasts.
function parseMessage(m, wire, relay = false, envelopes = null) {
  const message = typeof m !== "string" ? m : wire !== undefined && envelopes ? envelopes.parse(m) : JSON.parse(m);
  if (wire !== undefined) {
    const { data } = message;
    if (relay) data.packet = relayPacket(data.packet, wire);
    else data.packet.data = parseWire(wire);
  }
  return message;
}

// The passwords getParams knows (see connection.js), to keep them out of messages.
const secretsOf = (getParams) => (getParams.secrets ? getParams.secrets() : []);

// Starts a native client. onMessages(flat) receives [channel, message, offset, wire, ...] (see parseMessage).
function openNativeClient(getParams, opts, { listen, weak = false, onMessages, onListening, report }) {
  const native = new NativeClient({
    uid: opts.uid,
    tableName: opts.tableName,
    payloadThreshold: opts.payloadThreshold,
    cleanupInterval: listen ? opts.cleanupInterval : 0,
    maxQueue: opts.maxPublishQueue,
    createTable: opts.createTable,
    logTableName: opts.logTableName,
    sessionTableName: opts.sessionTableName,
    statementTimeout: opts.statementTimeout,
    presenceName: listen ? opts.presenceName : undefined,
    listen,
    weak,
    reconnect: {
      initialDelay: opts.reconnectInitialDelay,
      maxDelay: opts.reconnectMaxDelay,
      connectTimeout: opts.connectTimeout,
      healthCheckInterval: opts.healthCheckInterval,
      responseTimeout: opts.responseTimeout,
    },
    getParams,
    onMessages: onMessages || (() => {}),
    onListening,
    // Every native report and log line passes here: the known passwords are removed from it. The core
    // has counted these reports and applied the rate limit already (counted: true).
    onError: (message, code) => report(toError(message, code, secretsOf(getParams)), true),
    // Lifecycle lines (connect, loss, LISTEN, batch sizes): asked of the core only when DEBUG enables them.
    onLog: debug.enabled ? (line) => debug("%s", redact(line, secretsOf(getParams))) : undefined,
  });
  // The connection's TLS files live as long as a client using them: released once this one is closed
  // (close() is wrapped on the instance, so that every owner's close releases them).
  if (getParams.acquire) {
    getParams.acquire();
    const close = native.close.bind(native);
    let released = false;
    const release = () => {
      if (!released) getParams.release();
      released = true;
    };
    Object.defineProperty(native, "close", {
      value: (...args) => {
        const closing = Promise.resolve(close(...args));
        closing.then(release, release);
        return closing;
      },
    });
  }
  native.start();
  return native;
}

// Calls the user's errorHandler; one that throws must not break the native client.
function safeReport(handler, err) {
  try {
    handler(err);
  } catch (_) {
    // ignored on purpose
  }
}

// Queues a message on a native client; resolves once queued (in order) for PostgreSQL.
function publishOn(native, channel, message, report) {
  let dropped;
  try {
    const json = plainJson(message);
    dropped = json === undefined ? false : native.publishJson(channel, json);
    if (dropped === false) dropped = native.publish(channel, message);
  } catch (err) {
    report(toError(err, codes.ENCODE_FAILED));
    return Promise.reject(err);
  }
  if (dropped === undefined) return Promise.resolve();
  const err = toError(dropped, codes.PUBLISH_DROPPED);
  report(err);
  return Promise.reject(err);
}

// Restores running at once per client (each is a statement on the listening connection): the core's
// limit. More wait their turn, Socket.IO holding their CONNECT meanwhile (a server that went away
// sends all its clients to the others at once); past MAX_WAITING_RESTORES waiting, a fresh session.
const MAX_RESTORES = native.maxRestores;
const MAX_WAITING_RESTORES = 10000;

class SharedClient {
  constructor(getParams, opts) {
    this.opts = opts;
    this.restores = 0;
    this.waitingRestores = new Map(); // namespace + pid -> { resolve, until } of a beginRestore() waiting for a turn, in order
    this.restoresSaturated = false;
    this.routes = new Map(); // channel -> adapter
    this.listening = new Set(); // channels whose LISTEN the core has confirmed
    this.linksDown = 0; // connections in an outage
    this.closed = false;
    this.native = null;
    this.envelopes = new EnvelopeParser();
    this.outages = new OutageTracker((event, arg) => {
      if (event === RESTORED && this.presence) this.presence.rejoin();
      for (const adapter of this.routes.values()) {
        try {
          adapter.emit(event, arg);
        } catch (_) {
          // a throwing listener must not break the native client
        }
      }
    });
    this.presence = null;
    const presence = new Presence(this, opts);
    this.native = openNativeClient(getParams, { ...opts, presenceName: presence.name || undefined }, {
      listen: true,
      onMessages: (flat) => this.onMessages(flat),
      onListening: (channel) => this.onListening(channel),
      report: (err, counted) => this.report(err, counted),
    });
    this.presence = presence;
  }

  // Every report is counted (stats().errors); past the rate limit of its code it does not reach the
  // errorHandler (the core sends a summary). A report may start or end an outage.
  // counted: the core's own reports, counted and admitted there.
  report(err, counted = false) {
    if (!counted && this.native && !this.native.countError(err.code)) return;
    // Each connection reports CONNECTION_LOST once per outage, then RECONNECTED.
    if (err.code === codes.CONNECTION_LOST) {
      this.linksDown++;
      for (const adapter of this.routes.values()) adapter.onDatabaseDown();
    } else if (err.code === codes.RECONNECTED && this.linksDown > 0) {
      this.linksDown--;
    }
    // A message of ours or of a peer was lost: it may have been an INITIAL_HEARTBEAT or an answer to one.
    if ([codes.PUBLISH_FAILED, codes.PUBLISH_DROPPED, codes.INBOUND_OVERFLOW].includes(err.code)) {
      for (const adapter of this.routes.values()) adapter.onMessagesLost();
    }
    if (err && err.code === codes.RECOVERY_UNAVAILABLE) {
      // Once per client, and visible without DEBUG: the user has a table to create.
      console.warn(`socket.io-postgres-native: ${err.message}`);
    }
    safeReport(this.opts.errorHandler, err);
    if (this.native) this.outages.onReport(err, () => this.native.stats());
  }

  // Resolves true when this restore may run (then endRestore() once it is done), false if it may not.
  // `key` names the session (namespace and pid): a CONNECT asking again for a session whose restore still
  // waits comes from its client that gave the first one up (its connection closed: Socket.IO would drop
  // what that restore takes, the session being taken then). The earlier one gets a fresh session at once,
  // the new one its place in the queue. One still waiting after `maxWaitMs` (Socket.IO's connectTimeout,
  // past which it has closed a connection that joined no namespace) gets a fresh session when its turn
  // comes: its session stays for its client to come back for.
  beginRestore(key, maxWaitMs) {
    if (this.closed) return Promise.resolve(false);
    if (this.restores < MAX_RESTORES) {
      this.restores++;
      return Promise.resolve(true);
    }
    const earlier = this.waitingRestores.get(key);
    if (earlier !== undefined) {
      earlier.resolve(false);
    } else if (this.waitingRestores.size >= MAX_WAITING_RESTORES) {
      if (!this.restoresSaturated) {
        this.restoresSaturated = true;
        this.report(toError(`more than ${MAX_WAITING_RESTORES} session restores waiting: new ones get a fresh session`, codes.RECOVERY_FAILED));
      }
      return Promise.resolve(false);
    }
    const until = Date.now() + maxWaitMs;
    return new Promise((resolve) => this.waitingRestores.set(key, { resolve, until }));
  }

  endRestore() {
    const now = Date.now();
    for (const [key, next] of this.waitingRestores) {
      this.waitingRestores.delete(key);
      if (now <= next.until) {
        next.resolve(true); // its turn: the count stays
        return;
      }
      next.resolve(false);
    }
    this.restores--;
    if (this.restores === 0) this.restoresSaturated = false;
  }

  attach(channel, adapter) {
    this.routes.set(channel, adapter);
    if (this.listening.has(channel)) adapter.onListening();
    else this.native.listen(channel);
    if (this.linksDown > 0) adapter.onDatabaseDown();
  }

  onListening(channel) {
    this.listening.add(channel);
    const adapter = this.routes.get(channel);
    if (adapter) adapter.onListening();
  }

  // channel: null for a refused namespace (never attached).
  async detach(channel) {
    if (channel !== null) {
      this.routes.delete(channel);
      this.listening.delete(channel);
    }
    if (this.routes.size > 0) {
      if (channel !== null) this.native.unlisten(channel);
      return;
    }
    await this.close();
  }

  // Resolves once the message is queued, in order, for PostgreSQL: local delivery never waits
  // for the database, and messages of one server reach the others in publish order.
  publish(channel, message) {
    return publishOn(this.native, channel, message, (err) => this.report(err));
  }

  // A recoverable broadcast: resolves to its offset once logged (connection state recovery), or to
  // undefined when it went out unlogged.
  publishLogged(channel, message) {
    let promise;
    try {
      promise = this.native.publishLogged(channel, message);
    } catch (err) {
      this.report(toError(err, codes.ENCODE_FAILED));
      return Promise.reject(err);
    }
    return promise.catch((err) => {
      if (err.code === codes.PUBLISH_DROPPED) this.report(toError(err, codes.PUBLISH_DROPPED)); // other failures are reported by the core
      throw err;
    });
  }

  // flat: [channel, message, offset, wire, ...]; offset is the one checked by the core, or undefined;
  // wire: see parseMessage.
  onMessages(flat) {
    for (let i = 0; i < flat.length; i += 4) {
      const channel = flat[i];
      const adapter = this.routes.get(channel);
      if (!adapter) continue;
      try {
        const message = parseMessage(flat[i + 1], flat[i + 3], adapter.relays(), this.envelopes);
        const nspName = adapter.nsp.name;
        // The pure-JS emitter sends no top-level nsp: the channel says which namespace it is for.
        if (message.nsp === undefined) message.nsp = nspName;
        if (message.nsp !== nspName) {
          this.report(toError(`ignored a message on channel ${channel} for another namespace (${message.nsp})`, codes.BAD_NOTIFICATION));
          continue;
        }
        // Connection state recovery: the payload's own offset is never trusted.
        if (message.offset !== undefined) delete message.offset;
        const offset = flat[i + 2];
        if (offset !== undefined && message.data && message.data.packet) {
          const { packet } = message.data;
          // A relayed packet's data is parsed only if a restore needs it.
          const data = receivedData(packet) || packet.data;
          if (typeof data === "function" || Array.isArray(data)) adapter.recordDelivered(offset, data, message.data.opts || {});
        }
        adapter.onMessage(message, offset);
      } catch (err) {
        this.report(toError(err, codes.MESSAGE_FAILED));
      }
    }
  }

  close() {
    if (!this.closePromise) {
      this.closed = true;
      if (this.presence) this.presence.close();
      for (const { resolve } of this.waitingRestores.values()) resolve(false); // fresh sessions, at once
      this.waitingRestores.clear();
      this.closePromise = this.native.close(this.opts.closeTimeout);
    }
    return this.closePromise;
  }
}

module.exports = { SharedClient, openNativeClient, publishOn, safeReport, parseMessage };
