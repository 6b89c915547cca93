'use strict';
// stats(), health() and the connection-lost / connection-restored events, against a known workload.
// Heartbeats are made rare (ten minutes) so that after the cluster has formed, the only traffic is the test's.

const { Cluster, waitFor, waitForEvents, eventsOf } = require('./helpers/cluster');
const { startPostgres } = require('./helpers/pg-tmp');
const { pgStop, pgStart } = require('./helpers/faults');
const { execFile } = require('child_process');
const path = require('path');
const { Emitter } = require('../lib');

jest.setTimeout(60000);

// No heartbeat during the file; no quiet idle either: after an outage it re-announces the server
// (INITIAL_HEARTBEAT, see README "Quiet idle"), a message these exact counts do not expect.
const QUIET = { heartbeatInterval: 600000, heartbeatTimeout: 1200000, quietIdle: false };
const FAST = { reconnectInitialDelay: 50, reconnectMaxDelay: 300, connectTimeout: 5000 };

function delta(after, before) {
  return {
    published: after.published.messages - before.published.messages,
    publishedAttachments: after.published.attachments - before.published.attachments,
    received: after.received.messages - before.received.messages,
    receivedAttachments: after.received.attachments - before.received.attachments,
  };
}

describe('stats() on a running cluster', () => {
  let cluster;
  const errors = [];
  beforeAll(async () => {
    cluster = new Cluster({ channelPrefix: 'stats', size: 3, adapterOpts: { ...QUIET, errorHandler: (e) => errors.push(e) } });
    await cluster.start();
  });
  afterAll(async () => {
    if (cluster) await cluster.close();
  });

  test('the shape: connections connected, an empty queue, every documented field', async () => {
    const s = cluster.servers[0].io.of('/').adapter.stats();
    expect(s.connections).toEqual({
      publish: { state: 'connected', reconnects: 0 },
      listen: { state: 'connected', reconnects: 0 },
    });
    expect(s.queue).toEqual({ depth: 0, inFlight: 0 });
    for (const k of ['messages', 'attachments', 'bytes']) expect(typeof s.published[k]).toBe('number');
    for (const k of ['messages', 'attachments']) expect(typeof s.received[k]).toBe('number');
    expect(s.dropped).toEqual({ queueFull: 0, closed: 0, publishFailed: 0, inboundOverflow: 0 });
    expect(s.errors).toEqual({});
    expect(Object.keys(s.latency).sort()).toEqual(['p50', 'p99']);
    expect(cluster.servers[0].io.of('/').adapter.health()).toMatchObject({ ok: true, reasons: [] });
  });

  test('N broadcasts and two attachments: counted once where published and once on every other server', async () => {
    const clients = await cluster.connectOnEach();
    const [A, B, C] = cluster.servers;
    const before = [A, B, C].map((s) => s.io.of('/').adapter.stats());
    const N = 25;
    const big = 'x'.repeat(1000);
    for (let i = 0; i < N; i++) A.io.emit('m', i, big);
    A.io.emit('bin', Buffer.from([1, 2, 3])); // binary content goes to the attachment table
    A.io.emit('long', 'y'.repeat(9000)); // so does a message over 8000 bytes
    for (const c of clients) {
      await waitForEvents(c, 'm', N);
      await waitForEvents(c, 'bin', 1);
      await waitForEvents(c, 'long', 1);
    }
    await waitFor(() => A.io.of('/').adapter.stats().published.messages - before[0].published.messages >= N + 2, 5000, 'A to count its publishes');
    const after = [A, B, C].map((s) => s.io.of('/').adapter.stats());
    expect(delta(after[0], before[0])).toEqual({ published: N + 2, publishedAttachments: 2, received: 0, receivedAttachments: 0 });
    for (const i of [1, 2]) {
      expect(delta(after[i], before[i])).toEqual({ published: 0, publishedAttachments: 0, received: N + 2, receivedAttachments: 2 });
    }
    expect(after[0].published.bytes - before[0].published.bytes).toBeGreaterThan(N * big.length);
    expect(typeof after[0].latency.p50).toBe('number');
    expect(after[0].latency.p50).toBeLessThanOrEqual(after[0].latency.p99);
    for (const c of clients) expect(eventsOf(c, 'm')).toHaveLength(N);
  });

  test('every namespace of one createAdapter() returns the same server figures', async () => {
    const A = cluster.servers[0];
    const other = A.io.of('/stats-other').adapter;
    await waitFor(() => other.stats().connections.listen.state === 'connected', 5000, 'the namespace');
    expect(other.stats().published).toEqual(A.io.of('/').adapter.stats().published);
  });

  test('errors are counted by code, as the errorHandler saw them', async () => {
    const A = cluster.servers[0];
    const seen = errors.filter((e) => e.code === 'BAD_NAMESPACE').length;
    A.io.of(`/${'n'.repeat(80)}`); // cannot be a channel: reported as BAD_NAMESPACE
    const s = A.io.of('/').adapter.stats();
    expect(errors.filter((e) => e.code === 'BAD_NAMESPACE').length).toBe(seen + 1);
    expect(s.errors.BAD_NAMESPACE).toBe(1);
  });
});

describe('stats(), health() and events through an outage', () => {
  let pg;
  beforeAll(() => {
    pg = startPostgres();
  });
  afterAll(() => {
    if (pg) pg.stop();
  });

  test('the queue grows while PostgreSQL is down and drains after; health() flips; one lost/restored event per outage', async () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = pg.url;
    const errs = [];
    const cluster = new Cluster({
      channelPrefix: 'statsdown',
      size: 2,
      adapterOpts: { ...QUIET, ...FAST, maxPublishQueue: 8, errorHandler: (e) => errs.push(e) },
    });
    try {
      await cluster.start();
      const [A, B] = cluster.servers;
      const adapter = A.io.of('/').adapter;
      const events = [];
      adapter.on('connection-lost', (err) => events.push(['lost', err.code]));
      adapter.on('connection-restored', (info) => events.push(['restored', typeof info.downtime]));
      const clientB = await cluster.connect(1);
      const before = [adapter.stats(), B.io.of('/').adapter.stats()];
      expect(adapter.health().ok).toBe(true);

      await pgStop(pg);
      await waitFor(() => !adapter.health().ok, 10000, 'health() to turn false');
      await waitFor(() => adapter.stats().connections.publish.state === 'down' &&
        adapter.stats().connections.listen.state === 'down', 10000, 'both connections down');
      for (let i = 0; i < 10; i++) A.io.emit('m', i); // 8 fit in the queue, 2 are dropped
      const down = adapter.stats();
      expect(down.queue).toEqual({ depth: 8, inFlight: 0 });
      expect(down.dropped.queueFull).toBe(2);
      expect(down.errors.PUBLISH_DROPPED).toBe(2);
      const health = adapter.health({ maxQueue: 4 });
      expect(health.ok).toBe(false);
      expect(health.connections).toEqual({ publish: 'down', listen: 'down' });
      expect(health.reasons).toEqual(['publish connection down', 'listen connection down', '8 messages queued (more than 4)']);
      expect(events).toEqual([['lost', 'CONNECTION_LOST']]);

      await pgStart(pg);
      await waitFor(() => adapter.health().ok, 20000, 'health() to turn true again');
      await waitFor(() => events.length === 2, 10000, 'the restored event');
      await waitFor(() => adapter.stats().queue.depth === 0, 10000, 'the queue to drain');
      const after = adapter.stats();
      expect(after.published.messages - before[0].published.messages).toBe(8);
      expect(after.connections).toEqual({
        publish: { state: 'connected', reconnects: 1 },
        listen: { state: 'connected', reconnects: 1 },
      });
      expect(after.errors.CONNECTION_LOST).toBe(2); // one per connection
      expect(after.errors.RECONNECTED).toBe(2);
      expect(events).toEqual([['lost', 'CONNECTION_LOST'], ['restored', 'number']]);
      // B was cut off too: whether the 8 reached it depends on when its LISTEN came back, but it counts
      // exactly what its client got. The barrier needs B listening again (its own reconnect may lag A's).
      // RECONNECTED is reported once a connection's setup (its LISTENs) has run again: 2 per server.
      await waitFor(() => errs.filter((e) => e.code === 'RECONNECTED').length >= 4, 20000, "both servers' connections to be back");
      await cluster.barrier();
      const got = eventsOf(clientB, 'm').length;
      expect(B.io.of('/').adapter.stats().received.messages - before[1].received.messages).toBe(got + 1); // + the barrier
    } finally {
      process.env.DATABASE_URL = saved;
      await cluster.close();
    }
  });
});

describe('the Emitter', () => {
  test('stats() counts what it published; it has no listening connection', async () => {
    const errs = [];
    const emitter = new Emitter(process.env.DATABASE_URL, '/', { channelPrefix: 'statsemit', errorHandler: (e) => errs.push(e) });
    try {
      for (let i = 0; i < 5; i++) emitter.emit('e', i);
      await waitFor(() => emitter.stats().published.messages === 5, 10000, 'five publishes');
      const s = emitter.stats();
      expect(s.connections).toEqual({ publish: { state: 'connected', reconnects: 0 }, listen: null });
      expect(s.queue).toEqual({ depth: 0, inFlight: 0 });
      expect(s.received).toEqual({ messages: 0, attachments: 0 });
      expect(emitter.health()).toMatchObject({ ok: true, connections: { publish: 'connected', listen: null } });
      expect(errs).toEqual([]);
    } finally {
      await emitter.close();
    }
    expect(emitter.stats().connections.publish.state).toBe('down');
    emitter.emit('late', 1);
    expect(emitter.stats().dropped.closed).toBe(1);
  });
});

describe('lifecycle logs (DEBUG=socket.io-postgres-native)', () => {
  test('connect, LISTEN, batch sizes and a failed connection are logged', async () => {
    const lib = JSON.stringify(path.join(__dirname, '..', 'lib'));
    const script = `
      const { Server } = require('socket.io');
      const { createAdapter } = require(${lib});
      const io = new Server({ adapter: createAdapter(process.env.DATABASE_URL, { channelPrefix: 'statslog' }) });
      const bad = new Server({ adapter: createAdapter('postgres://nobody@127.0.0.1:1/none', { reconnectInitialDelay: 5000 }) });
      const adapter = io.of('/').adapter;
      const timer = setInterval(() => {
        if (!adapter.health().ok) return;
        if (adapter.stats().published.messages === 0) return void io.emit('x', 1);
        if (bad.of('/').adapter.stats().errors.CONNECTION_LOST !== 2) return;
        clearInterval(timer);
        adapter.close();
        bad.of('/').adapter.close();
      }, 20);`;
    const { stderr } = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script], {
        timeout: 20000,
        env: { ...process.env, DEBUG: 'socket.io-postgres-native', DEBUG_COLORS: '0' },
      }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr })));
    });
    expect(stderr).toMatch(/publishing connection ready \(backend pid \d+\)/);
    expect(stderr).toMatch(/listening connection ready \(backend pid \d+\)/);
    expect(stderr).toContain('LISTEN statslog#/\n');
    expect(stderr).toMatch(/published 1 message \(0 attachments, \d+ bytes\) in one statement/);
    expect(stderr).toMatch(/publishing connection failed: .*127\.0\.0\.1/);
  });
});
