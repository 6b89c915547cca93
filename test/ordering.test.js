// The publisher groups queued messages into one statement per run: order must hold across runs of
// small, large (attachment) and binary messages, and identical messages must all arrive (PostgreSQL
// folds identical notifications of one transaction into one).
const { useCluster, waitFor } = require('./helpers/cluster');

describe('ordering and batching', () => {
  const ctx = useCluster({ channelPrefix: 'ordering', size: 2 });

  test('300 mixed small, large and binary messages arrive in order', async () => {
    const client = await ctx.cluster.connect(1);
    const got = [];
    client.on('m', (i, payload) => got.push([i, payload]));
    const io = ctx.cluster.servers[0].io;
    const expected = [];
    for (let i = 0; i < 300; i++) {
      const kind = i % 7 === 0 ? 'large' : i % 5 === 0 ? 'binary' : 'small';
      const payload = kind === 'large' ? `${i}:${'x'.repeat(9000)}` : kind === 'binary' ? Buffer.from([i & 255, 1]) : `s${i}`;
      io.emit('m', i, payload);
      expected.push([i, kind]);
    }
    await waitFor(() => got.length >= 300, 15000, () => `300 messages, got ${got.length}`);
    expect(got.map(([i]) => i)).toEqual(expected.map(([i]) => i));
    for (const [i, payload] of got) {
      const kind = expected[i][1];
      if (kind === 'large') expect(payload).toBe(`${i}:${'x'.repeat(9000)}`);
      else if (kind === 'binary') expect([...new Uint8Array(payload)]).toEqual([i & 255, 1]);
      else expect(payload).toBe(`s${i}`);
    }
  });

  test('200 identical messages all arrive', async () => {
    const client = await ctx.cluster.connect(1);
    let count = 0;
    client.on('same', () => count++);
    for (let i = 0; i < 200; i++) ctx.cluster.servers[0].io.emit('same', 'identical payload');
    await waitFor(() => count >= 200, 10000, () => `200 identical messages, got ${count}`);
    await ctx.cluster.barrier();
    expect(count).toBe(200);
  });

  test('200 identical large messages all arrive', async () => {
    const client = await ctx.cluster.connect(1);
    let count = 0;
    client.on('same-large', () => count++);
    const big = 'y'.repeat(10000);
    for (let i = 0; i < 200; i++) ctx.cluster.servers[0].io.emit('same-large', big);
    await waitFor(() => count >= 200, 10000, () => `200 identical large messages, got ${count}`);
    await ctx.cluster.barrier();
    expect(count).toBe(200);
  });
});

// A message to each of many rooms (one per user, say) is a synchronous loop of emits: they leave together at
// its end, and maxPublishQueue bounds what waits across turns of the loop (PostgreSQL unreachable or slower
// than the emits), not the size of one loop.
describe('a synchronous loop of more emits than maxPublishQueue', () => {
  const errors = [];
  const ctx = useCluster({ channelPrefix: 'bulkloop', size: 2, adapterOpts: { maxPublishQueue: 100, errorHandler: (e) => errors.push(e) } });

  test('reaches the clients and servers whole while PostgreSQL is up', async () => {
    const [A, B] = ctx.cluster.servers;
    const N = 1000;
    const rooms = Array.from({ length: N }, (_, i) => `user-${i}`);
    const client = await ctx.cluster.connect(1, { rooms });
    const got = [];
    const heard = [];
    client.on('bulk', (i) => got.push(i));
    B.io.on('bulk-sse', (i) => heard.push(i));
    for (let i = 0; i < N; i++) A.io.to(rooms[i]).emit('bulk', i);
    for (let i = 0; i < N; i++) A.io.serverSideEmit('bulk-sse', i);
    await waitFor(() => got.length >= N && heard.length >= N, 15000, () => `${N} + ${N} messages, got ${got.length} + ${heard.length}`);
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(heard).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(errors.map((e) => e.code)).toEqual([]);
  });
});
