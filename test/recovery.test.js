// Connection state recovery across servers: a client cut off from server A comes back on server C with
// its id, its rooms and exactly the packets it missed, in order, once.
const { Pool } = require('pg');
const { io: ioClient } = require('socket.io-client');
const { Cluster, waitFor, withTimeout } = require('./helpers/cluster');
const helpers = require('./helpers/recovery');

const TABLES = { logTableName: `csr_log_${process.pid}`, sessionTableName: `csr_sessions_${process.pid}` };

let pool;

const recoverableClient = (cluster, serverIndex, rooms) => helpers.recoverableClient(cluster, serverIndex, rooms);
// Cuts the client off on the server side and waits until the server has stored the session.
const cut = (cluster, client, serverIndex) => helpers.cut(cluster, client, serverIndex, { pool, sessionTable: TABLES.sessionTableName });
const { reconnectTo } = helpers;

// For the describe block it is called in: a cluster of 3 servers with recovery kept `duration` ms, and `pool`.
function useRecoveryCluster(duration) {
  const ctx = { cluster: null };
  beforeAll(async () => {
    pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
    ctx.cluster = new Cluster({
      channelPrefix: 'recovery',
      size: 3,
      adapterOpts: { ...TABLES, createTable: true },
      serverOpts: { connectionStateRecovery: { maxDisconnectionDuration: duration } },
    });
    await ctx.cluster.start();
  });
  afterAll(async () => {
    await ctx.cluster.close();
    await pool.end();
  });
  return ctx;
}

describe('connection state recovery', () => {
  const ctx = useRecoveryCluster(60000);
  const clients = [];
  const track = (c) => (clients.push(c), c);
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  test('a client cut off from A recovers on C with its id, rooms and exactly the missed packets', async () => {
    const client = track(await recoverableClient(ctx.cluster, 0, ['r1']));
    const [A, B, C] = ctx.cluster.servers.map((s) => s.io);
    A.emit('before', 0);
    await waitFor(() => client.got.length === 1, 5000, 'the first packet');
    const id = client.id;

    await cut(ctx.cluster, client, 0);
    B.emit('missed', 1);
    C.to('r1').emit('missed', 2);
    B.to('r2').emit('not-for-me', 3);
    C.except('r1').emit('not-for-me', 4);
    B.emit('missed', 5);
    C.emit('missed', 6);
    // make sure every server has processed the broadcasts before the client comes back
    await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLES.logTableName} WHERE id > $1`, [client._lastOffset])).rows[0].n === 6, 5000, 'the log');

    await reconnectTo(ctx.cluster, client, 2);
    expect(client.recovered).toBe(true);
    expect(client.id).toBe(id);
    await waitFor(() => client.got.length >= 5, 5000, 'the missed packets');
    C.emit('after', 7);
    await waitFor(() => client.got.some(([ev]) => ev === 'after'), 5000, 'a live packet');
    // B's and C's packets each in their own order (the two servers publish concurrently)
    expect(client.got[0]).toEqual(['before', 0]);
    expect(client.got[client.got.length - 1]).toEqual(['after', 7]);
    const missed = client.got.slice(1, -1);
    expect([...missed].sort((a, b) => a[1] - b[1])).toEqual([['missed', 1], ['missed', 2], ['missed', 5], ['missed', 6]]);
    expect(missed.filter(([, n]) => n % 2 === 1)).toEqual([['missed', 1], ['missed', 5]]);
    expect(missed.filter(([, n]) => n % 2 === 0)).toEqual([['missed', 2], ['missed', 6]]);
    expect(C.of('/').adapter.rooms.get('r1').has(id)).toBe(true);
  });

  test('an unknown offset is not recovered', async () => {
    const client = track(await recoverableClient(ctx.cluster, 0));
    ctx.cluster.servers[1].io.emit('x', 1);
    await waitFor(() => client.got.length === 1, 5000, 'a packet');
    const id = client.id;
    await cut(ctx.cluster, client, 0);
    client._lastOffset = '999999999999';
    await reconnectTo(ctx.cluster, client, 1);
    expect(client.recovered).toBe(false);
    expect(client.id).not.toBe(id);
  });

  test('a session restores once: a second restore of it fails', async () => {
    const client = track(await recoverableClient(ctx.cluster, 0));
    ctx.cluster.servers[2].io.emit('x', 1);
    await waitFor(() => client.got.length === 1, 5000, 'a packet');
    await cut(ctx.cluster, client, 0);
    const { _pid: pid, _lastOffset: offset } = client;
    await reconnectTo(ctx.cluster, client, 1);
    expect(client.recovered).toBe(true);

    const copy = track(ioClient(`http://127.0.0.1:${ctx.cluster.servers[2].port}`, {
      transports: ['websocket'], forceNew: true, reconnection: false, auth: { pid, offset },
    }));
    await withTimeout(new Promise((r) => copy.once('connect', r)), 5000, 'connect');
    expect(copy.recovered).toBe(false);
    expect(copy.id).not.toBe(client.id);
  });

  test('two servers broadcasting while a client flaps between servers 100 times: nothing missed or doubled', async () => {
    const client = track(await recoverableClient(ctx.cluster, 0));
    const [, B, C] = ctx.cluster.servers.map((s) => s.io);
    let sent = 0;
    let sending = true;
    const senders = [B, C].map((io, k) => (async () => {
      for (let i = 0; sending; i++) {
        io.emit('seq', `${k}-${i}`);
        sent++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })());
    await waitFor(() => client.got.length > 0, 5000, 'the first packet');
    let at = 0;
    for (let flap = 0; flap < 100; flap++) {
      await cut(ctx.cluster, client, at);
      at = (at + 1) % 3;
      await reconnectTo(ctx.cluster, client, at);
      expect(client.recovered).toBe(true);
    }
    sending = false;
    await Promise.all(senders);
    await waitFor(() => client.got.length >= sent, 10000, () => `all ${sent} packets, got ${client.got.length}`);
    const seen = client.got.map(([, p]) => p);
    expect(new Set(seen).size).toBe(seen.length); // no duplicate
    expect(seen.length).toBe(sent); // nothing missed
    // per sender, in order
    for (const k of [0, 1]) {
      const mine = seen.filter((p) => p.startsWith(`${k}-`)).map((p) => Number(p.slice(2)));
      expect(mine).toEqual([...mine].sort((a, b) => a - b));
    }
  }, 120000);

  // What recovery is for: a server goes away and its clients all come back at once on another one.
  test('200 clients cut off from A reconnecting to C at the same moment: every one recovers its missed packet', async () => {
    const N = 200;
    const clients = await Promise.all(Array.from({ length: N }, () => recoverableClient(ctx.cluster, 0).then(track)));
    const [A, B] = ctx.cluster.servers.map((s) => s.io);
    A.emit('before', 0);
    await waitFor(() => clients.every((c) => c.got.length === 1), 10000, 'the first packet on every client');
    await Promise.all(clients.map((c) => helpers.cut(ctx.cluster, c, 0)));
    const pids = clients.map((c) => c._pid);
    const stored = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLES.sessionTableName} WHERE pid = ANY($1)`, [pids])).rows[0].n;
    await waitFor(async () => (await stored()) === N, 10000, 'every session to be stored');
    B.emit('missed', 1);
    await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLES.logTableName} WHERE id > $1`, [clients[0]._lastOffset])).rows[0].n === 1, 5000, 'the log');

    // A slow database: the restores wait on the session rows until every CONNECT has asked for one.
    const locker = await pool.connect();
    const C = ctx.cluster.servers[2].io.of('/').adapter;
    const restoreSession = C.restoreSession;
    let asked = 0;
    C.restoreSession = function (...args) {
      asked++;
      return restoreSession.apply(this, args);
    };
    try {
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${TABLES.sessionTableName} WHERE pid = ANY($1) FOR UPDATE`, [pids]);
      const back = Promise.all(clients.map((c) => reconnectTo(ctx.cluster, c, 2)));
      await waitFor(() => asked === N, 5000, () => `every client to ask for its session (${asked})`);
      await locker.query('COMMIT');
      await back;
    } finally {
      C.restoreSession = restoreSession;
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }

    expect(clients.filter((c) => !c.recovered).length).toBe(0);
    await waitFor(() => clients.every((c) => c.got.length === 2), 10000, () => `the missed packet on every client (${clients.filter((c) => c.got.length === 2).length})`);
    expect(clients.every((c) => c.got[1][0] === 'missed')).toBe(true);
  }, 60000);

  // A CONNECT waiting for a restore slot, given up by its client (its connection closed), then sent again by
  // the same client: the restore of the one given up must not take the session the client is waiting for.
  test('a client that drops while its CONNECT waits for a restore, then comes back: it recovers', async () => {
    const blockers = await Promise.all(Array.from({ length: 16 }, () => recoverableClient(ctx.cluster, 0).then(track)));
    const client = track(await recoverableClient(ctx.cluster, 0));
    const [A, B] = ctx.cluster.servers.map((s) => s.io);
    A.emit('before', 0);
    await waitFor(() => [...blockers, client].every((c) => c.got.length === 1), 10000, 'the first packet on every client');
    await Promise.all([...blockers, client].map((c) => cut(ctx.cluster, c, 0)));
    B.emit('missed', 1);
    await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLES.logTableName} WHERE id > $1`, [client._lastOffset])).rows[0].n === 1, 5000, 'the log');

    const shared = ctx.cluster.servers[2].io.of('/').adapter.client;
    const C = ctx.cluster.servers[2].io.of('/').adapter;
    const restoreSession = C.restoreSession;
    let asked = 0; // by the client
    C.restoreSession = function (pid, ...rest) {
      if (pid === client._pid) asked++;
      return restoreSession.call(this, pid, ...rest);
    };
    const locker = await pool.connect();
    try {
      // The 16 restores running at once wait on their session rows: the client's CONNECT waits for a slot.
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${TABLES.sessionTableName} WHERE pid = ANY($1) FOR UPDATE`, [[...blockers, client].map((c) => c._pid)]);
      const back = Promise.all(blockers.map((c) => reconnectTo(ctx.cluster, c, 2)));
      await waitFor(() => shared.restores === 16, 5000, 'the 16 restores to run');
      client.io.uri = `http://127.0.0.1:${ctx.cluster.servers[2].port}`;
      client.connect();
      await waitFor(() => asked === 1 && shared.waitingRestores.size === 1, 5000, 'the client\'s CONNECT to wait');
      client.disconnect(); // gives up (its connection closes)...
      const connected = new Promise((r) => client.once('connect', r));
      client.connect(); // ...and asks again, with the same session id and offset
      await waitFor(() => asked === 2, 5000, 'the client to ask again');
      await locker.query('COMMIT');
      await back;
      await withTimeout(connected, 5000, 'reconnect');
    } finally {
      C.restoreSession = restoreSession;
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }

    expect(client.recovered).toBe(true);
    await waitFor(() => client.got.length === 2, 5000, 'the missed packet');
    expect(client.got[1]).toEqual(['missed', 1]);
  }, 60000);

  // Socket.IO closes a connection whose CONNECT is not answered within connectTimeout: a restore still waiting
  // for a slot by then is for a closed connection, and must not take the session its client comes back for.
  test('a client closed by connectTimeout while its CONNECT waits for a restore: it recovers on another server', async () => {
    const blockers = await Promise.all(Array.from({ length: 16 }, () => recoverableClient(ctx.cluster, 0).then(track)));
    const client = track(await recoverableClient(ctx.cluster, 0));
    const [A, B, C] = ctx.cluster.servers.map((s) => s.io);
    A.emit('before', 0);
    await waitFor(() => [...blockers, client].every((c) => c.got.length === 1), 10000, 'the first packet on every client');
    await Promise.all([...blockers, client].map((c) => cut(ctx.cluster, c, 0)));
    B.emit('missed', 1);
    await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLES.logTableName} WHERE id > $1`, [client._lastOffset])).rows[0].n === 1, 5000, 'the log');

    const shared = C.of('/').adapter.client;
    const connectTimeout = C.connectTimeout();
    C.connectTimeout(1000);
    const locker = await pool.connect();
    try {
      // The 16 restores running at once wait on their session rows: the client's CONNECT waits for a slot.
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${TABLES.sessionTableName} WHERE pid = ANY($1) FOR UPDATE`, [[...blockers, client].map((c) => c._pid)]);
      for (const c of blockers) {
        c.io.uri = `http://127.0.0.1:${ctx.cluster.servers[2].port}`;
        c.connect();
      }
      await waitFor(() => shared.restores === 16, 5000, 'the 16 restores to run');
      client.io.uri = `http://127.0.0.1:${ctx.cluster.servers[2].port}`;
      client.connect();
      await waitFor(() => shared.waitingRestores.size === 1, 5000, 'the client\'s CONNECT to wait');
      await waitFor(() => C.engine.clientsCount === 0, 10000, 'Socket.IO to close the connections that joined nothing');
      await locker.query('COMMIT');
      await waitFor(() => shared.restores === 0 && shared.waitingRestores.size === 0, 10000, 'the restores to end');
    } finally {
      C.connectTimeout(connectTimeout);
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }

    await reconnectTo(ctx.cluster, client, 1);
    expect(client.recovered).toBe(true);
    await waitFor(() => client.got.length === 2, 5000, 'the missed packet');
    expect(client.got[1]).toEqual(['missed', 1]);
  }, 60000);
});

describe('connection state recovery: expiry', () => {
  const ctx = useRecoveryCluster(300);

  test('an expired session is not recovered', async () => {
    const client = await recoverableClient(ctx.cluster, 0);
    ctx.cluster.servers[1].io.emit('x', 1);
    await waitFor(() => client.got.length === 1, 5000, 'a packet');
    const id = client.id;
    await cut(ctx.cluster, client, 0);
    await waitFor(
      async () => (await pool.query(`SELECT 1 FROM ${TABLES.sessionTableName} WHERE pid = $1 AND expires_at < now()`, [client._pid])).rowCount === 1,
      5000,
      'the session to expire',
    );
    await reconnectTo(ctx.cluster, client, 2);
    expect(client.recovered).toBe(false);
    expect(client.id).not.toBe(id);
    client.disconnect();
  });
});

// Socket.IO takes any number (its in-memory adapter compares dates with it): one past what 32 bits hold
// must not wrap around to a few seconds, nor Infinity to 0.
describe.each([['Infinity', Infinity], ['2^32 + 1000 ms (about 50 days)', 2 ** 32 + 1000]])(
  'connection state recovery: maxDisconnectionDuration %s',
  (_, duration) => {
    const ctx = useRecoveryCluster(duration);

    test('a client cut off recovers, with the packets it missed, after more than a few seconds', async () => {
      const client = await recoverableClient(ctx.cluster, 0);
      ctx.cluster.servers[1].io.emit('x', 1);
      await waitFor(() => client.got.length === 1, 5000, 'a packet');
      const id = client.id;
      await cut(ctx.cluster, client, 0);
      ctx.cluster.servers[1].io.emit('missed', 2);
      await new Promise((resolve) => setTimeout(resolve, 1500)); // longer than a wrapped-around 1000 ms
      await reconnectTo(ctx.cluster, client, 2);
      expect(client.recovered).toBe(true);
      expect(client.id).toBe(id);
      await waitFor(() => client.got.length === 2, 5000, 'the missed packet');
      expect(client.got).toEqual([['x', 1], ['missed', 2]]);
      client.disconnect();
    });
  },
);
