// The Emitter of this package, and the pure-JS @socket.io/postgres-emitter, publishing to a mixed
// cluster (server 0: pure-JS adapter 0.5, server 1: this package).
const { execFile } = require('child_process');
const { Emitter: PureEmitter } = require('@socket.io/postgres-emitter');
const { Pool } = require('pg');
const { Emitter } = require('../lib');
const { Cluster, waitFor, waitForEvents } = require('./helpers/cluster');

const bytesOf = (v) => Buffer.from(new Uint8Array(v));

describe('Emitter', () => {
  let cluster;
  let emitter;
  const errors = [];

  beforeAll(async () => {
    cluster = new Cluster({ channelPrefix: 'emitter', size: 2, adapters: ['pure', 'native'], namespaces: ['/custom'] });
    await cluster.start();
    emitter = new Emitter(process.env.DATABASE_URL, '/', {
      channelPrefix: cluster.adapterOpts.channelPrefix,
      errorHandler: (err) => errors.push(err),
    });
  });
  afterEach(() => cluster.disconnectClients());
  afterAll(async () => {
    await emitter.close();
    await cluster.close();
  });

  test('emit reaches the clients of both kinds of server, with rooms and except', async () => {
    const [a, b] = [await cluster.connect(0, { rooms: ['vip'] }), await cluster.connect(1)];
    emitter.emit('hello', 'world', 42);
    emitter.to('vip').emit('vip-only', 1);
    emitter.except('vip').emit('not-vip', 2);
    for (const c of [a, b]) expect(await waitForEvents(c, 'hello')).toEqual([['world', 42]]);
    expect(await waitForEvents(a, 'vip-only')).toEqual([[1]]);
    expect(await waitForEvents(b, 'not-vip')).toEqual([[2]]);
    await cluster.barrier();
    expect(b.received.some((e) => e[0] === 'vip-only')).toBe(false);
    expect(a.received.some((e) => e[0] === 'not-vip')).toBe(false);
  });

  test('binary, large and exactly-8000-byte payloads go through the attachment table', async () => {
    const clients = [await cluster.connect(0), await cluster.connect(1)];
    const bytes = Buffer.from([0, 255, 1, 254]);
    emitter.emit('bin', bytes);
    emitter.emit('big', 'z'.repeat(30000));
    // JSON of this message is exactly 8000 bytes: the upstream emitter sends it inline and PostgreSQL refuses it.
    const base = JSON.stringify({ type: 3, data: { packet: { type: 2, data: ['edge', ''], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } }, uid: 'emitter', nsp: '/' });
    emitter.emit('edge', 'e'.repeat(8000 - Buffer.byteLength(base)));
    for (const c of clients) {
      expect(bytesOf((await waitForEvents(c, 'bin'))[0][0])).toEqual(bytes);
      expect((await waitForEvents(c, 'big'))[0][0]).toHaveLength(30000);
      expect((await waitForEvents(c, 'edge'))[0][0]).toHaveLength(8000 - Buffer.byteLength(base));
    }
  });

  test('of() keeps the options and reaches another namespace', async () => {
    const clients = [await cluster.connect(0, { nsp: '/custom' }), await cluster.connect(1, { nsp: '/custom' })];
    const root = await cluster.connect(1);
    emitter.of('/custom').emit('in-custom', 'yes');
    for (const c of clients) expect(await waitForEvents(c, 'in-custom')).toEqual([['yes']]);
    await cluster.barrier();
    expect(root.received.some((e) => e[0] === 'in-custom')).toBe(false);
  });

  test('socketsJoin, socketsLeave and disconnectSockets', async () => {
    const clients = [await cluster.connect(0), await cluster.connect(1)];
    emitter.socketsJoin('team');
    await waitFor(() => cluster.servers.every((s) => s.io.of('/').adapter.rooms.has('team')), 5000, 'both servers to join');
    emitter.to('team').emit('team-msg', 'go');
    for (const c of clients) await waitForEvents(c, 'team-msg');
    emitter.socketsLeave('team');
    await waitFor(() => cluster.servers.every((s) => !s.io.of('/').adapter.rooms.has('team')), 5000, 'both servers to leave');
    const gone = clients.map((c) => new Promise((r) => c.once('disconnect', r)));
    emitter.disconnectSockets(true);
    await Promise.all(gone);
  });

  test('serverSideEmit reaches both servers; acks and reserved names throw', async () => {
    const got = [];
    cluster.servers.forEach((s) => s.io.on('job', (...args) => got.push([s.kind, ...args])));
    emitter.serverSideEmit('job', { id: 7 });
    await waitFor(() => got.length === 2, 5000, 'both servers to get the serverSideEmit');
    expect(got.sort()).toEqual([['native', { id: 7 }], ['pure', { id: 7 }]]);
    expect(() => emitter.serverSideEmit('job', () => {})).toThrow(/not supported/);
    expect(() => emitter.emit('connect')).toThrow(/reserved/);
  });

  test('a publish error goes to errorHandler, never to clients', async () => {
    const failures = [];
    const broken = new Emitter(process.env.DATABASE_URL, '/', {
      channelPrefix: cluster.adapterOpts.channelPrefix,
      tableName: 'no_such_table_here',
      errorHandler: (err) => failures.push(err),
    });
    const client = await cluster.connect(1);
    broken.emit('bin', Buffer.from([1])); // needs the (missing) table
    await waitFor(() => failures.length > 0, 5000, 'the error');
    expect(failures[0].code).toBe('PUBLISH_FAILED');
    expect(failures[0].message).toMatch(/no_such_table_here/);
    await broken.close();
    await cluster.barrier();
    expect(client.received.some((e) => e[0] === 'error' || e[0] === 'bin')).toBe(false);
  });

  test('the pure-JS emitter reaches servers of this package (it sends no nsp)', async () => {
    const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
    const pure = new PureEmitter(pool, '/', { channelPrefix: cluster.adapterOpts.channelPrefix });
    const client = await cluster.connect(1, { rooms: ['r'] });
    pure.emit('from-pure', 1);
    pure.to('r').emit('room-from-pure', Buffer.from([5, 6]));
    expect(await waitForEvents(client, 'from-pure')).toEqual([[1]]);
    expect(bytesOf((await waitForEvents(client, 'room-from-pure'))[0][0])).toEqual(Buffer.from([5, 6]));
    await waitFor(async () => (await pool.query('SELECT 1')) && pool.idleCount === pool.totalCount, 5000, 'pool idle');
    await pool.end();
  });

  test('a script that only emits exits by itself once its message is sent', async () => {
    const client = await cluster.connect(1);
    const script = `const { Emitter } = require(${JSON.stringify(require.resolve('../lib'))});
      new Emitter(process.env.DATABASE_URL, '/', { channelPrefix: ${JSON.stringify(cluster.adapterOpts.channelPrefix)} }).emit('bye', 'from a script');`;
    const exit = new Promise((resolve) => execFile(process.execPath, ['-e', script], { timeout: 15000 }, (err) => resolve(err)));
    expect(await waitForEvents(client, 'bye')).toEqual([['from a script']]);
    expect(await exit).toBeNull(); // exited with code 0, not killed by the timeout
  });

  test('errors of the shared emitter were none', () => {
    expect(errors).toEqual([]);
  });
});
