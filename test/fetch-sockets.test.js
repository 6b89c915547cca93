'use strict';
// fetchSockets() and the remote-socket / cluster-wide socket operations across 3 servers.

const { useCluster, waitFor, waitForEvents, eventsOf } = require('./helpers/cluster');

const ctx = useCluster({ channelPrefix: 'fetch' });

const byId = (sockets) => new Map(sockets.map((s) => [s.id, s]));
const sortedIds = (list) => list.map((s) => s.id).sort();

// The server-side socket of `client` on the server it is connected to.
const ownSocket = (client) => ctx.cluster.servers[client.serverIndex].io.of('/').sockets.get(client.id);

// Resolves to the reason of the next disconnection of `client`.
function disconnection(client) {
  return new Promise((resolve) => client.once('disconnect', resolve));
}

describe('fetchSockets', () => {
  test('fetchSockets() from A returns the sockets of every server with id, handshake, rooms and data', async () => {
    const { cluster } = ctx;
    const clients = [
      await cluster.connect(0, { rooms: ['lobby'], data: { name: 'alice' } }),
      await cluster.connect(1, { rooms: ['lobby', 'vip'], data: { name: 'bob' } }),
      await cluster.connect(2, { data: { name: 'carol', tags: ['x', 1] } }),
    ];

    const sockets = await cluster.servers[0].io.fetchSockets();

    expect(sortedIds(sockets)).toEqual(clients.map((c) => c.id).sort());
    const found = byId(sockets);
    const [alice, bob, carol] = clients.map((c) => found.get(c.id));
    expect(alice.data).toEqual({ server: 0, name: 'alice' });
    expect(bob.data).toEqual({ server: 1, name: 'bob' });
    expect(carol.data).toEqual({ server: 2, name: 'carol', tags: ['x', 1] });
    expect([...bob.rooms].sort()).toEqual([clients[1].id, 'lobby', 'vip'].sort());
    expect([...carol.rooms]).toEqual([clients[2].id]);
    expect(bob.handshake.auth).toEqual({ rooms: ['lobby', 'vip'], data: { name: 'bob' } });
    expect(bob.handshake.address).toMatch(/127\.0\.0\.1/);
    expect(bob.handshake.query).toMatchObject({ EIO: '4', transport: 'websocket' });
    expect(typeof bob.handshake.issued).toBe('number');
  });

  test('in(room).fetchSockets() returns only the members of the room, on every server', async () => {
    const { cluster } = ctx;
    const members = [await cluster.connect(1, { rooms: ['team'] }), await cluster.connect(2, { rooms: ['team'] })];
    await cluster.connectOnEach({ rooms: ['other'] });

    const sockets = await cluster.servers[0].io.in('team').fetchSockets();

    expect(sortedIds(sockets)).toEqual(members.map((c) => c.id).sort());
  });

  test('fetchSockets() from B and C also see the sockets of the other servers', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    const expected = clients.map((c) => c.id).sort();

    for (const server of cluster.servers.slice(1)) {
      expect(sortedIds(await server.io.fetchSockets())).toEqual(expected);
    }
  });
});

describe('remote sockets returned by fetchSockets', () => {
  async function remoteSocketOf(client) {
    const sockets = await ctx.cluster.servers[0].io.fetchSockets();
    const remote = sockets.find((s) => s.id === client.id);
    if (!remote) throw new Error(`socket ${client.id} not returned by fetchSockets()`);
    return remote;
  }

  test('remote.emit() reaches the client on the other server', async () => {
    const { cluster } = ctx;
    const onB = await cluster.connect(1);
    const other = await cluster.connect(2);

    (await remoteSocketOf(onB)).emit('direct', 'just for you', { n: 1 });

    expect(await waitForEvents(onB, 'direct')).toEqual([['just for you', { n: 1 }]]);
    await cluster.barrier();
    expect(eventsOf(other, 'direct')).toEqual([]);
  });

  test('remote.join() and remote.leave() change the rooms on the owning server', async () => {
    const { cluster } = ctx;
    const onC = await cluster.connect(2);
    const remote = await remoteSocketOf(onC);

    remote.join(['room-x', 'room-y']);
    await waitFor(() => ownSocket(onC).rooms.has('room-x') && ownSocket(onC).rooms.has('room-y'), 5000, 'the join on server C');
    cluster.servers[0].io.to('room-x').emit('in-x');
    await waitForEvents(onC, 'in-x');

    remote.leave('room-x');
    await waitFor(() => !ownSocket(onC).rooms.has('room-x'), 5000, 'the leave on server C');
    expect([...ownSocket(onC).rooms].sort()).toEqual([onC.id, 'room-y'].sort());
  });

  test('remote.disconnect() disconnects the client on the other server', async () => {
    const { cluster } = ctx;
    const onB = await cluster.connect(1);
    const stays = await cluster.connect(2);
    const reason = disconnection(onB);

    (await remoteSocketOf(onB)).disconnect();

    expect(await reason).toBe('io server disconnect');
    expect(stays.connected).toBe(true);
    expect(sortedIds(await cluster.servers[0].io.fetchSockets())).toEqual([stays.id]);
  });
});

describe('cluster-wide socket operations', () => {
  test('socketsJoin() adds the sockets of every server to the room', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();

    cluster.servers[0].io.socketsJoin('joined');

    await waitFor(() => clients.every((c) => ownSocket(c).rooms.has('joined')), 5000, 'socketsJoin on every server');
    expect(sortedIds(await cluster.servers[1].io.in('joined').fetchSockets())).toEqual(clients.map((c) => c.id).sort());
  });

  test('in(room).socketsJoin() only moves the members of the room', async () => {
    const { cluster } = ctx;
    const members = [await cluster.connect(1, { rooms: ['src'] }), await cluster.connect(2, { rooms: ['src'] })];
    const outsider = await cluster.connect(2);

    cluster.servers[0].io.in('src').socketsJoin('dst');

    await waitFor(() => members.every((c) => ownSocket(c).rooms.has('dst')), 5000, 'socketsJoin of the room members');
    expect(sortedIds(await cluster.servers[0].io.in('dst').fetchSockets())).toEqual(members.map((c) => c.id).sort());
    expect(ownSocket(outsider).rooms.has('dst')).toBe(false);
  });

  test('socketsLeave() removes the sockets of every server from the room', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach({ rooms: ['leaving', 'staying'] });

    cluster.servers[0].io.socketsLeave('leaving');

    await waitFor(() => clients.every((c) => !ownSocket(c).rooms.has('leaving')), 5000, 'socketsLeave on every server');
    expect(await cluster.servers[0].io.in('leaving').fetchSockets()).toEqual([]);
    expect(sortedIds(await cluster.servers[0].io.in('staying').fetchSockets())).toEqual(clients.map((c) => c.id).sort());
  });

  test('in(room).disconnectSockets(true) closes the connections of the members on every server', async () => {
    const { cluster } = ctx;
    const members = [await cluster.connect(0, { rooms: ['kick'] }), await cluster.connect(1, { rooms: ['kick'] }), await cluster.connect(2, { rooms: ['kick'] })];
    const stays = await cluster.connect(1);
    const reasons = Promise.all(members.map(disconnection));

    cluster.servers[0].io.in('kick').disconnectSockets(true);

    expect(await reasons).toEqual(['io server disconnect', 'io server disconnect', 'io server disconnect']);
    await waitFor(() => members.every((c) => c.io.engine.readyState === 'closed'), 5000, 'the underlying connections to close');
    expect(stays.connected).toBe(true);
    expect(sortedIds(await cluster.servers[2].io.fetchSockets())).toEqual([stays.id]);
  });
});
