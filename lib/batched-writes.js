"use strict";
// One write system call per engine.io flush instead of one per frame. While a websocket write is
// pending, engine.io keeps the next packets of a client and then sends them together, but its
// websocket transport hands them to ws one by one, and each becomes its own write(2) and TCP
// segment. A broadcast batch from PostgreSQL (or a burst of emits) thus cost one system call per
// message per client; corking the TCP socket for the duration of the transport's send() turns them
// into one writev, with the same bytes in the same order and nothing held past the call.

const BATCHED = Symbol("postgres-adapter batched writes");

// Installs the batching on the current transport of an engine.io socket (once per transport: an
// upgrade brings a new one). Transports without a Node.js TCP socket under ws (polling, another
// wsEngine) are left alone.
function batchWrites(conn) {
  const transport = conn && conn.transport;
  if (!transport || transport[BATCHED]) return;
  transport[BATCHED] = true;
  const tcp = transport.socket && transport.socket._socket;
  if (!tcp || typeof tcp.cork !== "function" || typeof tcp.uncork !== "function") return;
  const send = transport.send;
  if (typeof send !== "function") return;
  transport.send = function sendBatched(packets) {
    if (!Array.isArray(packets) || packets.length < 2) return send.call(this, packets);
    tcp.cork();
    try {
      return send.call(this, packets);
    } finally {
      tcp.uncork();
    }
  };
}

module.exports = { batchWrites };
