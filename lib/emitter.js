"use strict";
// Publishes to a Socket.IO cluster from any Node.js process, like @socket.io/postgres-emitter,
// through the same native publishing path as the adapter. Its messages carry a top-level `nsp`,
// so both this adapter and the pure-JS adapter 0.5 deliver them.
const { openNativeClient, publishOn, safeReport } = require("./client");
const { resolveOptions } = require("./options");
const { paramsProvider } = require("./connection");
const { channelName, namespaceProblem } = require("./channel");
const { PostgresAdapterError, codes } = require("./errors");
const { healthOf } = require("./health");

const EMITTER_UID = "emitter";
const RESERVED_EVENTS = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);
const BROADCAST = 3;
const SOCKETS_JOIN = 4;
const SOCKETS_LEAVE = 5;
const DISCONNECT_SOCKETS = 6;
const SERVER_SIDE_EMIT = 9;
const EVENT = 2; // socket.io-parser packet type

function normalizeNsp(nsp) {
  if (typeof nsp !== "string") throw new TypeError(`namespace must be a string, got ${typeof nsp}`);
  return nsp.startsWith("/") ? nsp : `/${nsp}`;
}

function roomList(rooms) {
  const list = Array.isArray(rooms) ? rooms : [rooms];
  for (const r of list) {
    if (typeof r !== "string" && typeof r !== "number") throw new TypeError("rooms must be strings");
  }
  return list;
}

class Emitter {
  /**
   * @param source a pg.Pool (only its options are read), a connection string, or a pg-style config
   * @param nsp the namespace, "/" by default
   * @param opts channelPrefix, tableName, payloadThreshold, errorHandler, maxPublishQueue, ...
   */
  constructor(source, nsp = "/", opts = {}, shared = null) {
    this.nsp = normalizeNsp(nsp);
    if (shared) {
      this.shared = shared;
    } else {
      const resolved = resolveOptions({ ...(opts || {}), uid: EMITTER_UID });
      let native = null;
      // Counted, and rate-limited per code, like the adapter's (see SharedClient.report).
      const report = (err, counted = false) => {
        if (!counted && native && !native.countError(err.code)) return;
        safeReport(resolved.errorHandler, err);
      };
      // Weak: a script that only emits exits once its messages are sent, without close().
      native = openNativeClient(paramsProvider(source), resolved, { listen: false, weak: true, report });
      this.shared = { native, opts: resolved, report };
    }
    const { channelPrefix } = this.shared.opts;
    this.channel = channelName(channelPrefix, this.nsp);
    const problem = namespaceProblem(channelPrefix, this.nsp);
    if (problem !== null) throw new PostgresAdapterError(problem, codes.BAD_NAMESPACE);
  }

  /** An emitter for another namespace, with the same options and connection. */
  of(nsp) {
    return new Emitter(null, nsp, null, this.shared);
  }

  emit(ev, ...args) {
    return new BroadcastOperator(this).emit(ev, ...args);
  }

  to(room) {
    return new BroadcastOperator(this).to(room);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return new BroadcastOperator(this).except(room);
  }

  get volatile() {
    return new BroadcastOperator(this).volatile;
  }

  compress(compress) {
    return new BroadcastOperator(this).compress(compress);
  }

  socketsJoin(rooms) {
    new BroadcastOperator(this).socketsJoin(rooms);
  }

  socketsLeave(rooms) {
    new BroadcastOperator(this).socketsLeave(rooms);
  }

  disconnectSockets(close = false) {
    new BroadcastOperator(this).disconnectSockets(close);
  }

  serverSideEmit(ev, ...args) {
    if (typeof args[args.length - 1] === "function") {
      throw new Error("Acknowledgements are not supported by the emitter");
    }
    this.publish({ type: SERVER_SIDE_EMIT, data: { packet: [ev, ...args] } });
  }

  /** Sends what is queued (up to closeTimeout ms) and closes the connection of this emitter and its of() siblings. */
  close() {
    return this.shared.native.close(this.shared.opts.closeTimeout);
  }

  /** This emitter's figures (shared with its of() siblings); connections.listen is null. See the README. */
  stats() {
    return this.shared.native.stats();
  }

  /** { ok, reasons, ... }: ok while the connection is up and at most maxQueue messages wait. See the README. */
  health(options) {
    return healthOf(this.shared.native.stats(), this.shared.opts.maxPublishQueue, options);
  }

  /** @returns a promise that resolves when queued; publish errors go to errorHandler, never to clients. */
  publish(message) {
    message.uid = EMITTER_UID;
    message.nsp = this.nsp;
    return publishOn(this.shared.native, this.channel, message, this.shared.report).catch(() => {});
  }
}

class BroadcastOperator {
  constructor(emitter, rooms = new Set(), exceptRooms = new Set(), flags = {}) {
    this.emitter = emitter;
    this.rooms = rooms;
    this.exceptRooms = exceptRooms;
    this.flags = flags;
  }

  to(room) {
    const rooms = new Set(this.rooms);
    for (const r of roomList(room)) rooms.add(r);
    return new BroadcastOperator(this.emitter, rooms, this.exceptRooms, this.flags);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    const exceptRooms = new Set(this.exceptRooms);
    for (const r of roomList(room)) exceptRooms.add(r);
    return new BroadcastOperator(this.emitter, this.rooms, exceptRooms, this.flags);
  }

  compress(compress) {
    return new BroadcastOperator(this.emitter, this.rooms, this.exceptRooms, { ...this.flags, compress });
  }

  get volatile() {
    return new BroadcastOperator(this.emitter, this.rooms, this.exceptRooms, { ...this.flags, volatile: true });
  }

  emit(ev, ...args) {
    if (RESERVED_EVENTS.has(ev)) throw new Error(`"${String(ev)}" is a reserved event name`);
    if (typeof args[args.length - 1] === "function") {
      throw new Error("Acknowledgements are not supported by the emitter");
    }
    this.emitter.publish({
      type: BROADCAST,
      data: {
        packet: { type: EVENT, data: [ev, ...args], nsp: this.emitter.nsp },
        opts: { rooms: [...this.rooms], except: [...this.exceptRooms], flags: { ...this.flags } },
      },
    });
    return true;
  }

  socketsJoin(rooms) {
    this.emitter.publish({ type: SOCKETS_JOIN, data: { opts: this.targets(), rooms: roomList(rooms) } });
  }

  socketsLeave(rooms) {
    this.emitter.publish({ type: SOCKETS_LEAVE, data: { opts: this.targets(), rooms: roomList(rooms) } });
  }

  disconnectSockets(close = false) {
    this.emitter.publish({ type: DISCONNECT_SOCKETS, data: { opts: this.targets(), close } });
  }

  // As @socket.io/postgres-emitter's operator has it: every server receives it (rooms do not apply).
  serverSideEmit(ev, ...args) {
    this.emitter.serverSideEmit(ev, ...args);
  }

  targets() {
    return { rooms: [...this.rooms], except: [...this.exceptRooms] };
  }
}

module.exports = { Emitter, BroadcastOperator, RESERVED_EVENTS };
