'use strict';
// Namespaces whose names cannot be PostgreSQL channels (too long, a NUL, a lone surrogate): refused and
// reported, never a crash, never a failed batch for the other namespaces.

const { fork } = require('child_process');
const path = require('path');
const { Manager } = require('socket.io-client');
const { Cluster, waitFor, withTimeout, eventsOf } = require('./helpers/cluster');

// Connects a client to `nsp` (any string, even one a URL cannot carry) and resolves to what happened.
function tryConnect(port, nsp) {
  const manager = new Manager(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true });
  const socket = manager.socket(nsp);
  socket.received = [];
  socket.onAny((ev, ...args) => socket.received.push([ev, ...args]));
  const outcome = withTimeout(
    new Promise((resolve) => {
      socket.once('connect', () => resolve({ connected: true }));
      socket.once('connect_error', (err) => resolve({ error: err.message }));
      socket.once('disconnect', (reason) => resolve({ disconnected: reason }));
    }),
    5000,
    `a client for namespace ${JSON.stringify(nsp)}`,
  );
  return { socket, outcome };
}

describe('namespaces that cannot be PostgreSQL channels', () => {
  test('a client asking for a dynamic namespace too long for a channel is refused; the server reports it and keeps serving', async () => {
    const child = fork(path.join(__dirname, 'fixtures', 'namespace-server.js'), [`ns_${process.pid}`], { stdio: 'inherit' });
    const reports = [];
    let exited = null;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    const port = await withTimeout(
      new Promise((resolve, reject) => {
        child.on('message', (m) => {
          if (m.port) resolve(m.port);
          if (m.report) reports.push(m.report);
        });
        child.once('exit', () => reject(new Error('the server exited before listening')));
      }),
      10000,
      'the server to listen',
    );
    const sockets = [];
    try {
      const long = 'x'.repeat(60);
      for (const nsp of [`/dyn-${long}`, `/sync-${long}`]) {
        const { socket, outcome } = tryConnect(port, nsp);
        sockets.push(socket);
        expect(await outcome).toEqual({ error: 'Invalid namespace' });
      }
      await waitFor(() => reports.filter((r) => r.code === 'BAD_NAMESPACE').length === 2, 5000, 'two BAD_NAMESPACE reports');
      expect(reports.filter((r) => r.code === 'BAD_NAMESPACE').map((r) => r.message.includes('63 bytes'))).toEqual([true, true]);

      // Still alive and serving.
      const { socket, outcome } = tryConnect(port, '/');
      sockets.push(socket);
      expect(await outcome).toEqual({ connected: true });
      await waitFor(() => eventsOf(socket, 'hello').length === 1, 5000, 'the hello of a healthy server');
      expect(exited).toBeNull();
    } finally {
      for (const s of sockets) s.io.engine.close();
      if (exited === null && child.connected) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.send('close');
        await withTimeout(gone, 10000, 'the server to exit').catch(() => child.kill('SIGKILL'));
      }
    }
  });

  describe('in this process', () => {
    const reports = [];
    let cluster;
    beforeAll(async () => {
      cluster = new Cluster({ channelPrefix: 'nsnames', size: 2, adapterOpts: { errorHandler: (err) => reports.push(err) } });
      await cluster.start();
    });
    afterAll(() => cluster.close());

    test('io.of(name) whose channel is too long, has a NUL or a lone surrogate does not throw: reported, connections refused', async () => {
      const [A] = cluster.servers;
      const names = [`/${'y'.repeat(60)}`, '/nul-\0x', '/lone-\ud800'];
      for (const name of names) {
        const nsp = A.io.of(name);
        nsp.emit('nothing', 1); // a broadcast there is harmless
      }
      await waitFor(() => reports.filter((r) => r.code === 'BAD_NAMESPACE').length >= names.length, 5000, 'a report per name');
      expect(reports.filter((r) => r.code === 'BAD_NAMESPACE')).toHaveLength(names.length);
      expect(reports.every((r) => r instanceof Error)).toBe(true);
      for (const name of names.slice(0, 2)) {
        const { socket, outcome } = tryConnect(A.port, name);
        expect(await outcome).toEqual({ error: 'Invalid namespace' });
        socket.io.engine.close();
      }
    });

    test('a client-made namespace with a NUL cannot make broadcasts on "/" fail', async () => {
      const [A] = cluster.servers;
      for (const s of cluster.servers) s.io.of(/^\/room-.+$/);
      const bad = tryConnect(A.port, '/room-\0x');
      expect(await bad.outcome).toEqual({ error: 'Invalid namespace' });
      const receivers = await Promise.all([cluster.connect(0), cluster.connect(1)]);
      const N = 5000;
      for (let i = 0; i < N; i++) {
        A.io.emit('n', i);
        // The application broadcasting to the namespace too (it exists on A).
        if (i % 100 === 0) {
          A.io.of('/room-\0x').emit('poison', i);
          await new Promise(setImmediate);
        }
      }
      for (const client of receivers) {
        await waitFor(() => eventsOf(client, 'n').length >= N, 20000, () => `${N} broadcasts at ${client.label} (got ${eventsOf(client, 'n').length})`);
        expect(eventsOf(client, 'n').map((e) => e[0])).toEqual([...Array(N).keys()]);
      }
      bad.socket.io.engine.close();
    }, 60000);
  });
});

test('Emitter.of() refuses a namespace that cannot be a channel with a BAD_NAMESPACE error', async () => {
  const { Emitter } = require('../lib');
  const emitter = new Emitter(process.env.DATABASE_URL, '/', { channelPrefix: `ns_emitter_${process.pid}` });
  try {
    for (const name of ['/a\0b', '/\udc00', `/${'z'.repeat(70)}`]) {
      expect(() => emitter.of(name)).toThrow(expect.objectContaining({ code: 'BAD_NAMESPACE' }));
    }
  } finally {
    await emitter.close();
  }
});
