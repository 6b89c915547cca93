"use strict";
// Connection state recovery on the JavaScript side, one per namespace adapter: the logged packets this
// server has delivered lately (the delivered-offset watermark) and, on restore, which of them the client
// missed. The argument is in README.md ("Why no packet is missed").

const RECENT_MAX = 10000;
const RECENT_MS = 10000;
const REPLAYED_MAX = 10000;
// What Socket.IO's clients send back: the pid the server gave them (base64id: 20 url-safe characters)
// and the offset of their last packet (a log id). Anything else never reaches the database.
const PID = /^[A-Za-z0-9_-]{16,32}$/;
const OFFSET = /^[1-9][0-9]{0,15}$/;

function isRestorable(pid, offset) {
  return typeof pid === "string" && typeof offset === "string" && PID.test(pid) && OFFSET.test(offset);
}

class DeliveredLog {
  constructor() {
    // { offset, at, data (with its offset; or null and make() builds it), rooms, except }, in offset order, from index `head` on
    // (dropped entries are cut off in bulk: one splice per message would copy the whole list).
    this.recent = [];
    this.head = 0;
    this.floor = 0; // `recent` holds every packet delivered above this offset
    this.last = 0; // the watermark: the highest offset delivered here
    // Restored socket id -> the highest offset its restore replayed, while above the watermark: a
    // notification of a replayed broadcast can still come (PostgreSQL signals listeners only after a commit
    // is visible), and is then delivered live to every socket but these. Oldest first.
    this.replayed = new Map();
  }

  // Called in delivery order for every logged broadcast (ours and the other servers'). data: the
  // packet's data, or a function returning it (a relayed packet: parsed only if a restore needs it).
  record(offset, data, opts) {
    const n = Number(offset);
    if (!(n > this.last)) return;
    this.last = n;
    const now = Date.now();
    const entry = { offset: n, at: now, data: null, rooms: opts.rooms || [], except: opts.except || [] };
    if (typeof data === "function") entry.make = () => [...data(), String(offset)];
    else entry.data = [...data, String(offset)];
    this.recent.push(entry);
    // A few seconds are plenty: the list only bridges one restore query's duration.
    const { recent } = this;
    let head = this.head;
    while (head < recent.length && (recent.length - head > RECENT_MAX || recent[head].at < now - RECENT_MS)) head++;
    if (head > this.head) this.floor = recent[head - 1].offset;
    if (head >= 1024 && head * 2 >= recent.length) {
      recent.splice(0, head);
      head = 0;
    }
    this.head = head;
  }

  // The packets a client resuming from `offset` missed: those logged after it that this server has
  // already delivered (W: the watermark, or what committed before it listened); later ones arrive live
  // once the socket exists. The query gives the rows of its snapshot (up to session.snapshotMax);
  // packets delivered here but committed after it come from `recent`. null: cannot be sure.
  missed(session, offset) {
    const from = Number(offset);
    const delivered = Math.max(this.last, session.baseline);
    const out = [];
    const { packets } = session;
    for (let i = 0; i < packets.length && packets[i] <= delivered; i += 2) out.push(packets[i + 1]);
    if (delivered > session.snapshotMax) {
      const low = Math.max(session.snapshotMax, from);
      if (this.floor > low) return null;
      const rooms = new Set(session.rooms);
      for (let i = this.head; i < this.recent.length; i++) {
        const p = this.recent[i];
        if (p.offset <= low || p.offset > delivered) continue;
        const inRooms = p.rooms.length === 0 || p.rooms.some((r) => rooms.has(r));
        if (inRooms && !p.except.some((r) => rooms.has(r))) out.push(p.data || (p.data = p.make()));
      }
    }
    if (delivered > this.last) {
      this.replayed.delete(session.sid);
      this.replayed.set(session.sid, delivered);
      if (this.replayed.size > REPLAYED_MAX) this.replayed.delete(this.replayed.keys().next().value);
    }
    return out;
  }

  // The restored sockets that got the broadcast at `offset` from their restore (see `replayed`): the ones
  // its live delivery leaves out. Offsets arrive in increasing order: a restore below this one is done with.
  exceptReplayed(offset) {
    const n = Number(offset);
    const out = [];
    for (const [sid, upTo] of this.replayed) {
      if (upTo < n) this.replayed.delete(sid);
      else out.push(sid);
    }
    return out;
  }
}

module.exports = { DeliveredLog, isRestorable };
