'use strict';
// Connection state recovery helpers shared by the recovery suites: clients that keep their Socket instance
// across reconnections (as in a browser, so they send their pid and last offset), and server-side cuts.

const { io: ioClient } = require('socket.io-client');
const { waitFor, withTimeout } = require('./cluster');

// A client that reconnects only when told to, to the server we choose; it records [event, payload].
async function recoverableClient(cluster, serverIndex, rooms = [], auth = {}) {
  const client = ioClient(`http://127.0.0.1:${cluster.servers[serverIndex].port}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    auth: { rooms, ...auth },
  });
  client.got = [];
  client.onAny((ev, payload) => client.got.push([ev, payload]));
  await withTimeout(new Promise((r) => client.once('connect', r)), 5000, 'connect');
  return client;
}

// Cuts the client off on the server side (a recoverable "transport close"). With `sessionTable` and `pool`,
// waits until the server has stored the session.
async function cut(cluster, client, serverIndex, { pool, sessionTable, timeoutMs = 5000 } = {}) {
  const socket = cluster.servers[serverIndex].io.of('/').sockets.get(client.id);
  const gone = new Promise((r) => client.once('disconnect', r));
  socket.conn.close();
  await gone;
  if (!pool) return;
  await waitFor(
    async () => (await pool.query(`SELECT 1 FROM ${sessionTable} WHERE pid = $1`, [client._pid])).rowCount === 1,
    timeoutMs,
    'the session to be stored',
  );
}

async function reconnectTo(cluster, client, serverIndex) {
  client.io.uri = `http://127.0.0.1:${cluster.servers[serverIndex].port}`;
  const connected = new Promise((r) => client.once('connect', r));
  client.connect();
  await withTimeout(connected, 5000, 'reconnect');
}

module.exports = { recoverableClient, cut, reconnectTo };
