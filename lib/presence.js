"use strict";
// Quiet idle (README "Quiet idle"): liveness of the peers without a heartbeat NOTIFY (each one a
// committed transaction). Each server's listening session carries an application_name naming its
// cluster and uid; a read-only query of pg_stat_activity every heartbeatInterval finds the live peers,
// and the state_change of their sessions (they run the same query) says they are still answering.
// Membership per namespace is still learned from messages (INITIAL_HEARTBEAT and its answers), so a
// peer is only ever refreshed here, never added. A peer that is not present (a pure-JS server, one
// with quietIdle off, or one whose session we cannot see) needs heartbeats: we send them again until
// none such has been heard of for heartbeatTimeout.
const { createHash } = require("crypto");
const { MessageType } = require("socket.io-adapter");
const debug = require("debug")("socket.io-postgres-native");

const APP = "socket.io-postgres-native";
const MAX_NAME_BYTES = 63; // PostgreSQL cuts application_name there (NAMEDATALEN - 1)
const EMITTER_UID = "emitter";
const MAX_PENDING = 1000; // uids waiting for a look: a flood of made-up ones must not grow it

// "socket.io-postgres-native:<8 hex of sha256(channelPrefix)>:": the servers of one cluster.
function presencePrefix(channelPrefix) {
  return `${APP}:${createHash("sha256").update(channelPrefix).digest("hex").slice(0, 8)}:`;
}

// null when application_name cannot carry the uid intact (PostgreSQL keeps printable ASCII only).
function presenceName(channelPrefix, uid) {
  const name = presencePrefix(channelPrefix) + uid;
  return /^[\x20-\x7e]+$/.test(uid) && Buffer.byteLength(name) <= MAX_NAME_BYTES ? name : null;
}

class Presence {
  /**
   * @param client the SharedClient (its native client and its adapters by channel)
   * @param opts resolved options
   */
  constructor(client, opts) {
    this.client = client;
    this.uid = opts.uid;
    this.timeout = opts.heartbeatTimeout;
    this.prefix = presencePrefix(opts.channelPrefix);
    this.name = opts.quietIdle ? presenceName(opts.channelPrefix, opts.uid) : null;
    this.enabled = this.name !== null;
    this.looked = false; // a query has succeeded once
    this.usable = false; // the last query succeeded, saw our own session and every peer's liveness
    this.present = new Map(); // uid -> Date.now() at its session's last state change
    this.heartbeaters = new Map(); // uid -> when last heard of: peers that need heartbeats
    this.unknown = new Set(); // uids heard of, not present in the last query: checked by the next one
    this.closes = new Map(); // channel NUL uid -> { uid, adapter, at }: ADAPTER_CLOSEs heard (see closed)
    this.running = null;
    this.again = false;
    this.timer = null;
    this.first = null;
    if (this.enabled) {
      this.timer = setInterval(() => this.refresh(), opts.heartbeatInterval);
      this.timer.unref();
      // A first look once the sessions are likely up, so that the first periodic heartbeat is skipped.
      this.first = setTimeout(() => this.refresh(), Math.floor(opts.heartbeatInterval / 2));
      this.first.unref();
    }
  }

  // Whether this server may skip its periodic heartbeat now.
  quiet() {
    if (!this.enabled || !this.usable) return false;
    const now = Date.now();
    for (const [uid, seen] of this.heartbeaters) {
      if (now - seen <= this.timeout) return false;
      this.heartbeaters.delete(uid);
    }
    return true;
  }

  // Every message of a peer passes here (before the adapter handles it).
  heard(uid) {
    if (!this.enabled || typeof uid !== "string" || uid === this.uid || uid === EMITTER_UID) return;
    if (this.heartbeaters.has(uid)) {
      this.heartbeaters.set(uid, Date.now());
      return;
    }
    if (this.present.has(uid)) return;
    if (this.unknown.size < MAX_PENDING) this.unknown.add(uid); // more are heard of again later
    this.refresh();
  }

  // A peer's ADAPTER_CLOSE in the namespace of `adapter`. Any role may NOTIFY one under a live peer's
  // uid: with heartbeats that peer would be counted again at its next one, quietly it would not. So a
  // peer whose session still changes state after its close (its own looks) is asked again there.
  closed(uid, adapter) {
    if (!this.enabled || typeof uid !== "string" || uid === EMITTER_UID) return;
    const key = `${adapter.channel}\0${uid}`;
    if (this.closes.has(key)) return; // one question answers them all
    if (this.closes.size < MAX_PENDING) this.closes.set(key, { uid, adapter, at: Date.now() });
  }

  refresh() {
    if (this.running) {
      this.again = true;
      return;
    }
    // Only what was heard before the query started is judged by it: a peer's presence is set before
    // it LISTENs, so before anything of it can be heard.
    const checking = this.unknown;
    this.unknown = new Set();
    let query;
    try {
      query = this.client.native.presence(`${this.prefix}%`);
    } catch (err) {
      query = Promise.reject(err);
    }
    this.running = query.then(
      (flat) => this.update(flat, checking),
      (err) => {
        this.usable = false;
        debug("quiet idle: %s", err && err.message);
        // Judged by the next look (on the next heartbeatInterval, or the next message heard).
        for (const uid of checking) if (this.unknown.size < MAX_PENDING) this.unknown.add(uid);
      },
    ).catch((err) => debug("quiet idle: %s", err && err.message)).then(() => {
      this.running = null;
      // Only what was heard meanwhile starts another look at once (a failing one never loops).
      if (this.again && !this.client.closed) {
        this.again = false;
        this.refresh();
      }
    });
  }

  // flat: [application_name, seconds since its last state change (text, null when hidden from us), ...]
  update(flat, checking) {
    if (this.client.closed) return;
    const now = Date.now();
    const present = new Map();
    let self = false;
    let hidden = false;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = flat[i];
      if (typeof name !== "string" || !name.startsWith(this.prefix)) continue;
      const uid = name.slice(this.prefix.length);
      if (uid === this.uid) {
        self = true;
        continue;
      }
      if (flat[i + 1] === null) {
        hidden = true; // another role's session: its liveness is not visible to ours
        continue;
      }
      const age = Number(flat[i + 1]) * 1000;
      present.set(uid, now - (Number.isFinite(age) && age > 0 ? age : 0));
    }
    if (hidden) return this.giveUp("the role cannot see other roles' sessions in pg_stat_activity (it needs pg_read_all_stats)");
    this.present = present;
    const wasQuiet = this.quiet();
    this.usable = self;
    this.looked = this.looked || self;
    for (const [uid, seen] of this.heartbeaters) {
      if (now - seen > this.timeout) this.heartbeaters.delete(uid);
    }
    for (const uid of checking) {
      // Past the limit, heartbeats are on anyway (one entry is enough).
      if (!present.has(uid) && this.heartbeaters.size < MAX_PENDING) this.heartbeaters.set(uid, now);
    }
    // An INITIAL_HEARTBEAT in that namespace, answered by whoever is still there (not by a peer that left it).
    for (const [key, { uid, adapter, at }] of this.closes) {
      const seen = present.get(uid);
      if (seen === undefined || seen <= at) {
        if (now - at > this.timeout) this.closes.delete(key);
        continue;
      }
      this.closes.delete(key);
      if (this.client.routes.get(adapter.channel) === adapter) adapter.publish({ type: MessageType.INITIAL_HEARTBEAT });
    }
    for (const adapter of this.client.routes.values()) {
      for (const [uid, lastSeen] of adapter.nodesMap) {
        const seen = present.get(uid);
        if (seen !== undefined && seen > lastSeen) adapter.nodesMap.set(uid, seen);
      }
    }
    if (wasQuiet && !this.quiet()) {
      debug("quiet idle: a peer needs heartbeats (%s)", [...this.heartbeaters.keys()].join(", "));
      this.beat(MessageType.HEARTBEAT);
    }
  }

  // Heartbeats for good: our own presence is withdrawn, so that the peers send theirs too.
  giveUp(reason) {
    if (!this.enabled) return;
    debug("quiet idle off: %s", reason);
    this.enabled = false;
    this.usable = false;
    clearInterval(this.timer);
    clearTimeout(this.first);
    this.client.native.setPresenceName(APP);
    this.beat(MessageType.HEARTBEAT);
  }

  // After an outage of ours: what was announced meanwhile was missed; everyone answers this at once.
  // (Only once presence has been seen to work: before that, nothing was skipped.)
  rejoin() {
    if (this.enabled && this.looked) this.beat(MessageType.INITIAL_HEARTBEAT);
  }

  beat(type) {
    for (const adapter of this.client.routes.values()) adapter.publish({ type });
  }

  close() {
    clearInterval(this.timer);
    clearTimeout(this.first);
    this.enabled = false;
  }
}

module.exports = { Presence, presenceName, presencePrefix, APP };
