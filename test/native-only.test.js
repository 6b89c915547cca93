'use strict';
// Guarantees this package gives and @socket.io/postgres-adapter 0.5.0 does not. The pure-JS run excludes this
// file (--testPathIgnorePatterns native-only); each test names the upstream behaviour it improves on.

const { Pool } = require('pg');
const { Emitter } = require('@socket.io/postgres-emitter');
const { useCluster, waitFor, waitForEvents } = require('./helpers/cluster');

const ctx = useCluster({ channelPrefix: 'native_only' });

describe('ordering', () => {
  // Upstream publishes each message with its own pool.query(), so up to pool.max NOTIFYs race and commit out of order.
  test('200 messages emitted in a loop from A arrive in order on a client of B', async () => {
    const { cluster } = ctx;
    const onB = await cluster.connect(1);
    const N = 200;

    for (let i = 0; i < N; i++) cluster.servers[0].io.emit('seq', i);

    const received = await waitForEvents(onB, 'seq', N, 15000);
    expect(received.map(([i]) => i)).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  // Upstream: the same race lets the DISCONNECT_SOCKETS message overtake the broadcast, and the packet is lost.
  test('a packet emitted before io.disconnectSockets() arrives before the disconnection', async () => {
    const { cluster } = ctx;
    const onB = await cluster.connect(1);
    const onC = await cluster.connect(2);
    const timeline = (client) => {
      const events = [];
      client.on('bye', () => events.push('bye'));
      client.on('disconnect', (reason) => events.push(`disconnect:${reason}`));
      return events;
    };
    const eventsB = timeline(onB);
    const eventsC = timeline(onC);

    cluster.servers[0].io.emit('bye');
    cluster.servers[0].io.disconnectSockets();

    await waitFor(() => eventsB.length === 2 && eventsC.length === 2, 5000, () => `bye + disconnect on B and C (B: ${eventsB}, C: ${eventsC})`);
    expect(eventsB).toEqual(['bye', 'disconnect:io server disconnect']);
    expect(eventsC).toEqual(['bye', 'disconnect:io server disconnect']);
  });
});

describe('payload size', () => {
  // Upstream compares `> payloadThreshold` (8000), but PostgreSQL only accepts NOTIFY payloads shorter than
  // 8000 bytes: a message of exactly 8000 bytes of JSON fails in pg_notify and is silently dropped.
  test('a message of exactly 8000 bytes of JSON arrives', async () => {
    const { cluster } = ctx;
    const onB = await cluster.connect(1);
    const overhead = Buffer.byteLength(JSON.stringify({
      type: 3,
      data: { packet: { type: 2, data: ['exact', ''] }, opts: { rooms: [], except: [], flags: {} } },
      uid: '0123456789abcdef',
      nsp: '/',
    }));
    const text = 'x'.repeat(8000 - overhead);

    cluster.servers[0].io.emit('exact', text);

    expect(await waitForEvents(onB, 'exact')).toEqual([[text]]);
  });
});

describe('@socket.io/postgres-emitter', () => {
  // Upstream: the emitter 0.1.1 publishes messages without a top-level `nsp`, which adapter 0.5.0 drops.
  // A drop-in adapter routes them by the notification channel instead.
  let pool;
  beforeAll(() => {
    pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  });
  afterAll(() => pool.end());

  test('emitter.emit() and emitter.to(room).emit() reach the clients of every server', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    const inRoom = await cluster.connect(2, { rooms: ['emitter-room'] });
    const emitter = new Emitter(pool, '/', { channelPrefix: cluster.adapterOpts.channelPrefix });

    emitter.emit('from-emitter', 'hello', { n: 1 });
    emitter.to('emitter-room').emit('room-from-emitter', Buffer.from([1, 2, 3]));

    for (const client of clients) expect(await waitForEvents(client, 'from-emitter')).toEqual([['hello', { n: 1 }]]);
    const [[bin]] = await waitForEvents(inRoom, 'room-from-emitter');
    expect([...bin]).toEqual([1, 2, 3]);
  });
});

describe('encoding only where it is written', () => {
  // Upstream (socket.io-adapter's broadcast) encodes every packet for the local clients, even when there are none.
  test('a server without clients in the namespace does not encode its broadcasts; one with a client does', async () => {
    const { cluster } = ctx;
    const [A] = cluster.servers;
    const others = [await cluster.connect(1), await cluster.connect(2)];
    // The namespace's adapter encodes with the server's encoder: count the packets it encodes on A.
    const encoder = A.io.of('/').adapter.encoder;
    const encode = encoder.encode;
    let encoded = 0;
    encoder.encode = function (packet) {
      encoded++;
      return encode.call(this, packet);
    };
    try {
      for (let i = 0; i < 5; i++) A.io.emit('api-only', i);
      for (const client of others) expect((await waitForEvents(client, 'api-only', 5)).map(([i]) => i)).toEqual([0, 1, 2, 3, 4]);
      expect(encoded).toBe(0);

      const local = await cluster.connect(0);
      encoded = 0; // (its CONNECT packet was encoded too)
      A.io.emit('with-local', 'x');
      for (const client of [local, ...others]) expect(await waitForEvents(client, 'with-local')).toEqual([['x']]);
      expect(encoded).toBe(1);
    } finally {
      encoder.encode = encode;
    }
  });
});

describe('acknowledgements', () => {
  // Upstream (socket.io-adapter's ClusterAdapter): Socket.IO waits for one client count per server it knows
  // (serverCount()), and a local broadcast gets one, from this server: every io.local.timeout(...).emit(...)
  // with an ack ends in "operation has timed out", although every client answered.
  test('io.local.timeout().emit() with an ack settles with the local answers, without the timeout', async () => {
    const { cluster } = ctx;
    const local = [await cluster.connect(0), await cluster.connect(0)];
    const remote = await cluster.connect(1);
    for (const client of [...local, remote]) client.on('q', (cb) => cb(client.label));
    const answers = await cluster.servers[0].io.local.timeout(10000).emitWithAck('q');
    expect(answers.sort()).toEqual(local.map((c) => c.label).sort());

    const none = await cluster.servers[2].io.local.timeout(10000).emitWithAck('q'); // no client there
    expect(none).toEqual([]);
  });
});
