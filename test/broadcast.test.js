'use strict';
// Broadcasts across 3 servers: what each client receives.
// Ordering guarantees (which the pure-JS adapter does not give) are in native-only.test.js.

const { useCluster, eventsOf, waitForEvents } = require('./helpers/cluster');

const ctx = useCluster({ channelPrefix: 'broadcast', namespaces: ['/custom'] });

describe('broadcast across servers', () => {
  test('io.emit from A reaches the clients of A, B and C exactly once each', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    const [A] = cluster.servers;

    A.io.emit('hello', 'world', 42, { nested: [1, 'two'] });

    for (const client of clients) {
      expect(await waitForEvents(client, 'hello')).toEqual([['world', 42, { nested: [1, 'two'] }]]);
    }
    await cluster.barrier();
    for (const client of clients) expect(eventsOf(client, 'hello')).toHaveLength(1);
  });

  test('a namespace broadcast only reaches the clients of that namespace', async () => {
    const { cluster } = ctx;
    const custom = await Promise.all([0, 1, 2].map((i) => cluster.connect(i, { nsp: '/custom' })));
    const main = await cluster.connectOnEach();
    const [A] = cluster.servers;

    A.io.of('/custom').emit('ns-only', 'x');

    for (const client of custom) expect(await waitForEvents(client, 'ns-only')).toEqual([['x']]);
    await cluster.barrier('/');
    await cluster.barrier('/custom');
    for (const client of custom) expect(eventsOf(client, 'ns-only')).toHaveLength(1);
    for (const client of main) expect(eventsOf(client, 'ns-only')).toEqual([]);
  });

  test('to(room) reaches only the members of the room, on every server', async () => {
    const { cluster } = ctx;
    const inRoom = [
      await cluster.connect(1, { rooms: ['r1'] }),
      await cluster.connect(2, { rooms: ['r1'] }),
      await cluster.connect(0, { rooms: ['r1'] }),
    ];
    const outside = [await cluster.connect(1), await cluster.connect(2, { rooms: ['r2'] })];

    cluster.servers[0].io.to('r1').emit('room-msg', 'for r1');

    for (const client of inRoom) expect(await waitForEvents(client, 'room-msg')).toEqual([['for r1']]);
    await cluster.barrier();
    for (const client of outside) expect(eventsOf(client, 'room-msg')).toEqual([]);
  });

  test('to([r1, r2]) reaches a client in both rooms once', async () => {
    const { cluster } = ctx;
    const both = await cluster.connect(1, { rooms: ['r1', 'r2'] });
    const onlyR2 = await cluster.connect(2, { rooms: ['r2'] });
    const neither = await cluster.connect(2, { rooms: ['r3'] });

    cluster.servers[0].io.to(['r1', 'r2']).emit('multi', 1);

    expect(await waitForEvents(both, 'multi')).toEqual([[1]]);
    expect(await waitForEvents(onlyR2, 'multi')).toEqual([[1]]);
    await cluster.barrier();
    expect(eventsOf(both, 'multi')).toHaveLength(1);
    expect(eventsOf(neither, 'multi')).toEqual([]);
  });

  test('except(room) skips the members of the room on every server', async () => {
    const { cluster } = ctx;
    const excluded = [await cluster.connect(1, { rooms: ['muted'] }), await cluster.connect(2, { rooms: ['muted', 'r1'] })];
    const included = await cluster.connectOnEach({ rooms: ['r1'] });

    cluster.servers[0].io.except('muted').emit('not-muted', 'ok');

    for (const client of included) expect(await waitForEvents(client, 'not-muted')).toEqual([['ok']]);
    await cluster.barrier();
    for (const client of excluded) expect(eventsOf(client, 'not-muted')).toEqual([]);
  });

  test('to(room).except(room) combines both filters across servers', async () => {
    const { cluster } = ctx;
    const target = await cluster.connect(2, { rooms: ['team'] });
    const excluded = await cluster.connect(1, { rooms: ['team', 'muted'] });

    cluster.servers[0].io.to('team').except('muted').emit('team-msg');

    await waitForEvents(target, 'team-msg');
    await cluster.barrier();
    expect(eventsOf(excluded, 'team-msg')).toEqual([]);
  });

  test('.local only reaches the clients of the emitting server', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();

    cluster.servers[0].io.local.emit('local-only', 'A');

    expect(await waitForEvents(clients[0], 'local-only')).toEqual([['A']]);
    await cluster.barrier();
    expect(eventsOf(clients[1], 'local-only')).toEqual([]);
    expect(eventsOf(clients[2], 'local-only')).toEqual([]);
  });

  test('volatile and compress(false) broadcasts are still delivered to every server', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    const [A] = cluster.servers;

    // One at a time: a volatile packet may legitimately be dropped while the client's transport is busy
    // writing another packet, so nothing else is in flight to these clients meanwhile.
    A.io.volatile.emit('volatile-msg', 'v');
    for (const client of clients) expect(await waitForEvents(client, 'volatile-msg')).toEqual([['v']]);

    A.io.compress(false).emit('uncompressed-msg', 'c');
    for (const client of clients) expect(await waitForEvents(client, 'uncompressed-msg')).toEqual([['c']]);
  });
});
