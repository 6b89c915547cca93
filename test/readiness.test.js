'use strict';
// A server is ready when its first client is: a client that has connected receives every broadcast
// published after its connection completed, and a just-started server's requests count every live peer.
// Nothing here waits for discovery (no waitReady): servers start, clients connect, requests go at once.

const http = require('http');
const net = require('net');
const { Server } = require('socket.io');
const { io: ioClient } = require('socket.io-client');
const { Cluster, waitFor, eventsOf, ackResult, withTimeout } = require('./helpers/cluster');
const { createAdapter } = require('../lib');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Server i's listening connection (its second connection: the publishing one is opened first) comes up
// i * 150 ms late, as on a busy database: its clients connect long before its LISTEN is in place.
async function startAtOnce(size) {
  const cluster = new Cluster({ channelPrefix: 'ready', size: 0 });
  for (let i = 0; i < size; i++) {
    let connections = 0;
    const password = async () => {
      if (++connections === 2) await sleep(i * 150);
      return ''; // trust authentication
    };
    const server = await cluster.addServer({}, { password }); // its http server listens; nothing else is awaited
    server.io.on('who', (ack) => ack(server.index));
  }
  return cluster;
}

describe('ready when the first client is', () => {
  test.each([1, 2, 3, 4, 5])('round %i: 3 servers, clients connected at once, broadcasts and requests at once', async () => {
    const cluster = await startAtOnce(3);
    try {
      const clients = await Promise.all([0, 1, 2].map((i) => cluster.connect(i)));
      const { servers } = cluster;
      for (const s of servers) s.io.emit('from', s.index);
      const [fetched, emitted] = await Promise.all([
        Promise.all(servers.map((s) => s.io.fetchSockets())),
        Promise.all(servers.map((s) => ackResult((cb) => s.io.serverSideEmit('who', cb)))),
      ]);
      for (const client of clients) {
        await waitFor(() => eventsOf(client, 'from').length >= 3, 5000, () => `3 broadcasts at ${client.label} (got ${JSON.stringify(eventsOf(client, 'from'))})`);
        expect(eventsOf(client, 'from').map((e) => e[0]).sort()).toEqual([0, 1, 2]);
      }
      for (const sockets of fetched) expect(sockets.map((s) => s.data.server).sort()).toEqual([0, 1, 2]);
      servers.forEach((s, i) => {
        expect(emitted[i].err).toBeNull();
        expect(emitted[i].responses.sort()).toEqual([0, 1, 2].filter((k) => k !== s.index));
      });
      const counts = await Promise.all(servers.map((s) => s.io.of('/').adapter.serverCount()));
      expect(counts).toEqual([3, 3, 3]);
    } finally {
      await cluster.close();
    }
  }, 30000);

  // Starts a server on `url` with `opts`, connects two clients, returns what errorHandler got by then.
  async function twoClientsOn(url, opts) {
    const reports = [];
    const httpServer = http.createServer();
    const io = new Server(httpServer, { adapter: createAdapter(url, { ...opts, errorHandler: (err) => reports.push(err) }) });
    await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const clients = [];
    try {
      for (let i = 0; i < 2; i++) {
        const client = ioClient(`http://127.0.0.1:${httpServer.address().port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
        clients.push(client);
        await withTimeout(new Promise((resolve, reject) => {
          client.once('connect', resolve);
          client.once('connect_error', reject);
        }), 5000, 'the client to connect');
      }
      return reports.slice();
    } finally {
      for (const c of clients) c.disconnect();
      await new Promise((resolve) => io.close(() => resolve()));
    }
  }

  test('a database that does not answer holds connections only up to readyTimeout, reported once', async () => {
    // Accepts connections and never answers: no LISTEN can be confirmed.
    const sockets = new Set();
    const silent = net.createServer((socket) => sockets.add(socket));
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const reports = await twoClientsOn(`postgresql://nobody@127.0.0.1:${silent.address().port}/none`, { readyTimeout: 300 });
      expect(reports.map((e) => e.code)).toEqual(['READY_TIMEOUT']);
      expect(reports[0].message).toMatch(/300 ms/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('a database that is down does not hold connections: they are served at once', async () => {
    const closed = net.createServer();
    await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address();
    await new Promise((resolve) => closed.close(resolve));
    // A readyTimeout the client's 5 s connect wait could not outlast.
    const reports = await twoClientsOn(`postgresql://nobody@127.0.0.1:${port}/none`, { readyTimeout: 60000 });
    expect(reports.map((e) => e.code)).toContain('CONNECTION_LOST');
    expect(reports.map((e) => e.code)).not.toContain('READY_TIMEOUT');
  });
});
