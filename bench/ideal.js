"use strict";
// The bench's "adapter that costs nothing": the least any adapter in Node.js must do to carry a message
// from A to B/C through PostgreSQL. A writes NOTIFY statements straight to a socket in PostgreSQL's
// wire protocol (the emits of one tick as one simple query: one transaction); B/C read the notifications
// straight from a socket and hand them to io.local.emit. No pool, no parser library, no cluster
// protocol, no validation: nothing a real adapter could leave out is left in. Only for the bench's
// throwaway PostgreSQL (trust authentication; anything else is an error).
const net = require("net");

// Connects and, once the server is ready for queries, resolves with { query, close } (`onNotify` gets
// each notification's payload; `onError` an error once connected). query(sql, done): `done` runs when
// the server is ready again.
function connect(url, onNotify, onError) {
  const u = new URL(url);
  const user = decodeURIComponent(u.username || "postgres");
  const database = decodeURIComponent(u.pathname.slice(1) || user);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port || 5432), u.hostname);
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let ready = false;
    const waiting = []; // per query sent: its `done`, or null
    const fail = (err) => {
      socket.destroy();
      if (ready) onError(err);
      else reject(err);
    };
    socket.on("error", fail);
    socket.on("connect", () => {
      const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + params.length, 0);
      head.writeInt32BE(196608, 4); // protocol 3.0
      socket.write(Buffer.concat([head, params]));
    });
    socket.on("data", (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let at = 0;
      while (buf.length - at >= 5) {
        const type = buf[at];
        const len = buf.readInt32BE(at + 1);
        if (buf.length - at < 1 + len) break;
        const body = buf.subarray(at + 5, at + 1 + len);
        at += 1 + len;
        if (type === 0x41) {
          // 'A': pid, channel, payload (both NUL-terminated)
          const channelEnd = body.indexOf(0, 4);
          onNotify(body.toString("utf8", channelEnd + 1, body.length - 1));
        } else if (type === 0x52 && body.readInt32BE(0) !== 0) {
          return fail(new Error("bench/ideal.js needs trust authentication"));
        } else if (type === 0x45) {
          return fail(new Error(`PostgreSQL error: ${body.toString("utf8").replace(/\0/g, " ")}`));
        } else if (type === 0x5a) {
          if (ready) {
            const done = waiting.shift();
            if (done) done();
          } else {
            ready = true;
            resolve({ query, close: () => socket.end() });
          }
        }
      }
      buf = at === buf.length ? Buffer.alloc(0) : buf.subarray(at);
    });
    function query(sql, done = null) {
      waiting.push(done);
      const text = Buffer.from(sql + "\0");
      const head = Buffer.alloc(5);
      head[0] = 0x51; // 'Q'
      head.writeInt32BE(4 + text.length, 1);
      socket.write(Buffer.concat([head, text]));
    }
  });
}

// A's side (onError: an error once connected): notify(payload) queues a NOTIFY; the ones of a tick go out together when it ends.
async function sender(url, channel, onError) {
  const conn = await connect(url, () => {}, onError);
  let batch = [];
  const flush = () => {
    conn.query(batch.join(";"));
    batch = [];
  };
  return {
    notify(payload) {
      if (batch.length === 0) queueMicrotask(flush);
      batch.push(`NOTIFY "${channel}", '${payload}'`); // the bench's payloads: digits and commas
    },
    close: conn.close,
  };
}

// B/C's side: LISTENs on `channel`; each payload goes to onPayload.
async function listener(url, channel, onPayload, onError) {
  const conn = await connect(url, onPayload, onError);
  await new Promise((resolve) => conn.query(`LISTEN "${channel}"`, resolve));
  return conn;
}

module.exports = { sender, listener };
