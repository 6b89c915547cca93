// Connection state recovery as a new user turns it on and as a hostile role or client probes it: the recovery
// tables missing, forged offsets, unserializable socket.data, PostgreSQL unreachable, restore floods, a
// foreign lock holder, a session written while the database is away.
const { Pool } = require('pg');
const WebSocket = require('ws');
const { Cluster, waitFor } = require('./helpers/cluster');
const { recoverableClient, cut, reconnectTo } = require('./helpers/recovery');
const { presenceName } = require('../lib/presence');

const PID = process.pid;
const DURATION = 60000;
const serverOpts = { connectionStateRecovery: { maxDisconnectionDuration: DURATION } };

let pool;
beforeAll(() => {
  pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
});
afterAll(() => pool.end());

let tableCounter = 0;
function freshTables() {
  const n = ++tableCounter;
  return { logTableName: `csrt_log_${PID}_${n}`, sessionTableName: `csrt_sessions_${PID}_${n}` };
}

// A cluster whose servers collect what they report (errors[i]) and track their clients.
// createTable: true unless told otherwise (the tests of the upstream set-up leave it out).
async function startCluster({ size = 2, adapterOpts = {}, poolConfig = {}, prefix = 'csrt', createTable = true } = {}) {
  const errors = [];
  const cluster = new Cluster({ channelPrefix: prefix, size: 0, adapterOpts: { createTable, ...adapterOpts }, serverOpts, poolConfig });
  for (let i = 0; i < size; i++) {
    errors.push([]);
    await cluster.addServer({ errorHandler: (err) => errors[i].push(err) });
  }
  if (size > 1) await cluster.waitReady();
  cluster.errors = errors;
  cluster.tracked = [];
  return cluster;
}

async function stop(cluster) {
  for (const c of cluster.tracked) c.disconnect();
  await cluster.close();
}

async function client(cluster, index, rooms = [], auth = {}) {
  const c = await recoverableClient(cluster, index, rooms, auth);
  cluster.tracked.push(c);
  return c;
}

const events = (c, ev) => c.got.filter(([e]) => e === ev).map(([, p]) => p);
const codesOf = (errs) => errs.map((e) => e.code);

describe('recovery tables missing (the upstream set-up: only the attachment table)', () => {
  test('created when the role may create tables, without createTable: broadcasts cross servers, clients recover', async () => {
    const tables = freshTables();
    const cluster = await startCluster({ adapterOpts: tables, createTable: false });
    try {
      const c = await client(cluster, 0);
      const [A, B] = cluster.servers.map((s) => s.io);
      B.emit('b', 1);
      await waitFor(() => events(c, 'b').length === 1, 5000, "B's broadcast on A");
      expect(typeof c._lastOffset).toBe('string');
      await cut(cluster, c, 0, { pool, sessionTable: tables.sessionTableName });
      B.emit('missed', 2);
      A.emit('missed', 3);
      await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${tables.logTableName} WHERE id > $1`, [c._lastOffset])).rows[0].n === 2, 5000, 'the log');
      await reconnectTo(cluster, c, 1);
      expect(c.recovered).toBe(true);
      await waitFor(() => events(c, 'missed').length === 2, 5000, 'the missed packets');
      expect(events(c, 'missed').sort()).toEqual([2, 3]);
      expect(cluster.errors.flat().filter((e) => e.code !== 'RECONNECTED')).toEqual([]);
    } finally {
      await stop(cluster);
    }
  });

  describe('a role that may not create them', () => {
    const role = `csrt_weak_${PID}`;
    const attachments = `csrt_att_${PID}`;
    let warn;
    beforeAll(async () => {
      await pool.query(`DROP ROLE IF EXISTS ${role}`);
      await pool.query(`CREATE ROLE ${role} LOGIN`);
      await pool.query(`CREATE TABLE ${attachments} (id bigserial UNIQUE, created_at timestamptz DEFAULT now(), payload bytea)`);
      await pool.query(`GRANT SELECT, INSERT, DELETE ON ${attachments} TO ${role}`);
      await pool.query(`GRANT USAGE ON SEQUENCE ${attachments}_id_seq TO ${role}`);
    });
    afterAll(async () => {
      await pool.query(`DROP TABLE IF EXISTS ${attachments}`);
      await pool.query(`DROP ROLE IF EXISTS ${role}`);
    });
    beforeEach(() => {
      warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    });
    afterEach(() => warn.mockRestore());

    test('broadcasts still cross servers; one loud report per server names the tables and the DDL', async () => {
      const tables = freshTables();
      const url = new URL(process.env.DATABASE_URL);
      url.username = role;
      const cluster = await startCluster({
        adapterOpts: { ...tables, tableName: attachments },
        poolConfig: { connectionString: url.toString() },
        createTable: false,
      });
      try {
        const [a, b] = [await client(cluster, 0), await client(cluster, 1)];
        const [A, B] = cluster.servers.map((s) => s.io);
        for (let i = 0; i < 5; i++) {
          A.emit('fromA', i);
          B.emit('fromB', i);
        }
        for (const c of [a, b]) {
          await waitFor(() => events(c, 'fromA').length === 5 && events(c, 'fromB').length === 5, 5000, 'every broadcast on both servers');
          expect(events(c, 'fromA')).toEqual([0, 1, 2, 3, 4]);
          expect(events(c, 'fromB')).toEqual([0, 1, 2, 3, 4]);
        }
        for (const errs of cluster.errors) {
          const reports = errs.filter((e) => e.code === 'RECOVERY_UNAVAILABLE');
          expect(reports).toHaveLength(1);
          expect(reports[0].message).toContain(tables.logTableName);
          expect(reports[0].message).toContain(tables.sessionTableName);
          expect(reports[0].message).toContain('CREATE TABLE');
          expect(codesOf(errs)).not.toContain('PUBLISH_FAILED');
        }
        const warned = warn.mock.calls.map((args) => args.join(' ')).filter((m) => m.includes(tables.logTableName));
        expect(warned).toHaveLength(2);
        expect(warned[0]).toContain('CREATE TABLE');
      } finally {
        await stop(cluster);
      }
    });
  });
});

describe('forged notifications', () => {
  let cluster;
  let tables;
  beforeAll(async () => {
    tables = freshTables();
    cluster = await startCluster({ adapterOpts: tables });
  });
  afterAll(() => stop(cluster));

  const forge = (offset, tag) =>
    pool.query('SELECT pg_notify($1, $2)', [
      `${cluster.adapterOpts.channelPrefix}#/`,
      JSON.stringify({
        uid: 'evil',
        type: 3,
        nsp: '/',
        data: { packet: { type: 2, data: ['forged', tag], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } },
        offset,
      }),
    ]);

  test('a huge offset neither stalls a server nor reaches its clients; recovery still exact afterwards', async () => {
    const c = await client(cluster, 0);
    const [A, B] = cluster.servers.map((s) => s.io);
    B.emit('warm', 0);
    await waitFor(() => events(c, 'warm').length === 1, 5000, 'a first packet');
    const before = c._lastOffset;
    await forge('999999999999999999', 1);
    await waitFor(() => events(c, 'forged').length === 1, 5000, 'the forged broadcast');
    expect(c._lastOffset).toBe(before); // the forged offset is not handed to the client
    A.emit('own', 1);
    await waitFor(() => events(c, 'own').length === 1, 5000, "A's own broadcast");
    for (let i = 0; i < 30; i++) B.emit('b', i);
    await waitFor(() => events(c, 'b').length === 30, 5000, () => `B's 30 broadcasts (got ${events(c, 'b').length})`);
    expect(events(c, 'b')).toEqual([...Array(30).keys()]);
    expect(cluster.errors[0].some((e) => e.code === 'BAD_NOTIFICATION' && /offset/.test(e.message))).toBe(true);

    await cut(cluster, c, 0, { pool, sessionTable: tables.sessionTableName });
    B.emit('missed', 1);
    A.emit('missed', 2);
    await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${tables.logTableName} WHERE id > $1`, [c._lastOffset])).rows[0].n === 2, 5000, 'the log');
    await reconnectTo(cluster, c, 0);
    expect(c.recovered).toBe(true);
    await waitFor(() => events(c, 'missed').length === 2, 5000, 'the missed packets');
    B.emit('after', 3);
    await waitFor(() => events(c, 'after').length === 1, 5000, 'a live packet');
    expect(events(c, 'missed').sort()).toEqual([1, 2]);
  });

  test('a replayed (non-monotonic) offset is reported and not handed to clients', async () => {
    const c = await client(cluster, 1);
    const [A] = cluster.servers.map((s) => s.io);
    A.emit('x', 1);
    await waitFor(() => events(c, 'x').length === 1, 5000, 'a packet');
    const first = c._lastOffset;
    A.emit('x', 2);
    await waitFor(() => events(c, 'x').length === 2, 5000, 'a packet');
    const last = c._lastOffset;
    const reported = cluster.errors[1].length;
    await forge(first, 2);
    await waitFor(() => events(c, 'forged').length === 1, 5000, 'the forged broadcast');
    expect(c._lastOffset).toBe(last);
    await waitFor(() => cluster.errors[1].slice(reported).some((e) => e.code === 'BAD_NOTIFICATION' && /offset/.test(e.message)), 5000, 'the report');
    A.emit('x', 3);
    await waitFor(() => events(c, 'x').length === 3, 5000, 'a later packet');
    expect(Number(c._lastOffset)).toBeGreaterThan(Number(last));
  });
});

describe('unserializable socket.data', () => {
  let cluster;
  let tables;
  beforeAll(async () => {
    tables = freshTables();
    cluster = await startCluster({ adapterOpts: tables });
    for (const s of cluster.servers) {
      s.io.on('connection', (socket) => {
        const { kind } = socket.handshake.auth;
        if (kind === 'circular') socket.data.self = socket.data;
        if (kind === 'bigint') socket.data.id = 10n ** 20n;
      });
    }
  });
  afterAll(() => stop(cluster));

  test.each(['circular', 'bigint'])('%s data: reported, the process lives, the client gets a fresh session', async (kind) => {
    const c = await client(cluster, 0, [], { kind });
    cluster.servers[1].io.emit('x', 1);
    await waitFor(() => events(c, 'x').length === 1, 5000, 'a packet');
    const id = c.id;
    const reported = cluster.errors[0].length;
    await cut(cluster, c, 0);
    await waitFor(() => cluster.errors[0].slice(reported).some((e) => e.code === 'RECOVERY_FAILED'), 5000, 'the report');
    await reconnectTo(cluster, c, 1);
    expect(c.recovered).toBe(false);
    expect(c.id).not.toBe(id);
    cluster.servers[0].io.emit('y', 2);
    await waitFor(() => events(c, 'y').length === 1, 5000, 'a later broadcast');
  });
});

describe('PostgreSQL unreachable', () => {
  test('recoverable broadcasts reach the local clients at once', async () => {
    const net = require('net');
    const srv = net.createServer();
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address();
    await new Promise((r) => srv.close(r));
    const cluster = await startCluster({
      size: 1,
      adapterOpts: freshTables(),
      poolConfig: { connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` },
    });
    try {
      const c = await client(cluster, 0);
      cluster.servers[0].io.emit('local', 1);
      cluster.servers[0].io.emit('local', 2);
      await waitFor(() => events(c, 'local').length === 2, 3000, 'the local delivery');
      expect(events(c, 'local')).toEqual([1, 2]);
    } finally {
      await stop(cluster);
    }
  });
});

describe('restore flood', () => {
  let cluster;
  let tables;
  beforeAll(async () => {
    tables = freshTables();
    cluster = await startCluster({ adapterOpts: tables });
  });
  afterAll(() => stop(cluster));

  // One websocket sending `count` CONNECT frames, each asking to restore a session.
  async function flood(port, count, pid) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    await new Promise((resolve, reject) => {
      ws.once('message', resolve);
      ws.once('error', reject);
    });
    ws.answered = 0;
    ws.on('message', (m) => {
      if (String(m).startsWith('40')) ws.answered++;
    });
    for (let i = 0; i < count; i++) ws.send(`40${JSON.stringify({ pid: pid(i), offset: String(1 + i) })}`);
    return ws;
  }

  test('outstanding restores are bounded, malformed pids never reach the database, live delivery goes on', async () => {
    const native = cluster.servers[0].io.of('/').adapter.client.native;
    const original = native.restoreSession;
    let outstanding = 0;
    let most = 0;
    let calls = 0;
    const badPids = [];
    // The addon's methods are read-only on its prototype: shadow it with an own property.
    Object.defineProperty(native, 'restoreSession', { configurable: true, value: function (pid, ...rest) {
      calls++;
      if (!/^[A-Za-z0-9_-]{20}$/.test(pid)) badPids.push(pid);
      outstanding++;
      most = Math.max(most, outstanding);
      return original.call(this, pid, ...rest).finally(() => outstanding--);
    } });
    const c = await client(cluster, 0);
    try {
      const malformed = await flood(cluster.servers[0].port, 300, (i) => `${'x'.repeat(100)}${i}`);
      const valid = await flood(cluster.servers[0].port, 2000, (i) => `aaaaaaaaaaaaaa${String(i).padStart(6, '0')}`);
      const big = 'z'.repeat(20000); // through the attachment table
      cluster.servers[1].io.emit('live', big);
      await waitFor(() => events(c, 'live').length === 1, 10000, 'the live attachment broadcast');
      // Socket.IO itself may close a connection that floods it: wait until each is answered or closed.
      const settled = (ws, n) => ws.answered === n || ws.readyState === WebSocket.CLOSED;
      await waitFor(() => settled(malformed, 300) && settled(valid, 2000), 30000, () => `the flood to be answered (${malformed.answered}, ${valid.answered})`);
      await waitFor(() => outstanding === 0, 20000, 'the restores to settle');
      malformed.terminate();
      valid.terminate();
      expect(badPids).toEqual([]);
      expect(calls).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(64);
    } finally {
      delete native.restoreSession;
    }
    // Recovery still works after the flood.
    cluster.servers[1].io.emit('x', 1);
    await waitFor(() => events(c, 'x').length === 1, 5000, 'a packet');
    await cut(cluster, c, 0, { pool, sessionTable: tables.sessionTableName });
    await reconnectTo(cluster, c, 1);
    expect(c.recovered).toBe(true);
  }, 60000);
});

describe('locks', () => {
  const role = `csrt_nogrant_${PID}`;
  let cluster;
  let tables;
  let other;
  beforeAll(async () => {
    tables = freshTables();
    await pool.query(`DROP ROLE IF EXISTS ${role}`);
    await pool.query(`CREATE ROLE ${role} LOGIN`);
    cluster = await startCluster({ adapterOpts: { ...tables, statementTimeout: 1000 } });
  });
  afterAll(async () => {
    await stop(cluster);
    await pool.query(`DROP ROLE IF EXISTS ${role}`);
  });
  afterEach(async () => {
    if (other) await other.end();
    other = null;
  });

  test('a role without grants cannot stop recoverable broadcasts', async () => {
    const [a, b] = [await client(cluster, 0), await client(cluster, 1)];
    cluster.servers[0].io.emit('x', 0);
    await waitFor(() => events(b, 'x').length === 1, 5000, 'the log table to exist');
    const url = new URL(process.env.DATABASE_URL);
    url.username = role;
    other = new Pool({ connectionString: url.toString(), max: 1 });
    const held = await other.connect();
    try {
      // Whatever lock a role without grants can take: advisory keys (the old commit-order key among them).
      await held.query('SELECT pg_advisory_lock(hashtext($1))', [`"${tables.logTableName}"`]);
      await held.query('SELECT pg_advisory_lock(hashtext($1))', [tables.logTableName]);
      cluster.servers[0].io.emit('x', 1);
      for (const c of [a, b]) await waitFor(() => events(c, 'x').includes(1), 5000, 'the broadcast');
      expect(typeof b._lastOffset).toBe('string');
    } finally {
      held.release(true);
    }
  });

  test('a writer holding the log table: the statement timeout ends the wait, broadcasts still cross servers', async () => {
    const [a, b] = [await client(cluster, 0), await client(cluster, 1)];
    const writer = await pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`LOCK TABLE ${tables.logTableName} IN EXCLUSIVE MODE`);
      const reported = cluster.errors[0].length;
      cluster.servers[0].io.emit('held', 1);
      for (const c of [a, b]) await waitFor(() => events(c, 'held').length === 1, 10000, 'the broadcast');
      expect(cluster.errors[0].slice(reported).map((e) => e.message).join('\n')).toMatch(/statement timeout/);
    } finally {
      await writer.query('ROLLBACK');
      writer.release();
    }
    cluster.servers[0].io.emit('after', 2);
    await waitFor(() => events(b, 'after').length === 1, 5000, 'a later broadcast');
  });
});

describe('session written while the database is away', () => {
  test('a client that drops while the connections are down still resumes', async () => {
    const tables = freshTables();
    const app = `csrt-gate-${PID}`;
    let gate = null; // a pending promise while the database is "away" for the adapter
    let open;
    const cluster = await startCluster({
      adapterOpts: tables,
      poolConfig: (i) => (i === 0 ? { application_name: app, password: () => (gate ? gate.then(() => '') : '') } : {}),
    });
    try {
      const c = await client(cluster, 0);
      cluster.servers[1].io.emit('x', 1);
      await waitFor(() => events(c, 'x').length === 1, 5000, 'a packet');
      gate = new Promise((r) => (open = r));
      const before = cluster.errors[0].length;
      // The publishing session has the configured name, the listening one its quiet-idle presence name.
      const { rows } = await pool.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ($1, $2)',
        [app, presenceName(cluster.adapterOpts.channelPrefix, cluster.servers[0].io.of('/').adapter.uid)],
      );
      expect(rows).toHaveLength(2);
      await waitFor(() => cluster.errors[0].slice(before).filter((e) => e.code === 'CONNECTION_LOST').length === 2, 5000, 'both connections lost');
      await cut(cluster, c, 0);
      cluster.servers[1].io.emit('missed', 2);
      open();
      gate = null;
      await waitFor(
        async () => (await pool.query(`SELECT 1 FROM ${tables.sessionTableName} WHERE pid = $1`, [c._pid])).rowCount === 1,
        10000,
        'the session to be stored',
      );
      await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${tables.logTableName} WHERE id > $1`, [c._lastOffset])).rows[0].n === 1, 5000, 'the log');
      await reconnectTo(cluster, c, 1);
      expect(c.recovered).toBe(true);
      await waitFor(() => events(c, 'missed').length === 1, 5000, 'the missed packet');
      expect(cluster.errors[0].filter((e) => e.code === 'RECOVERY_FAILED')).toEqual([]);
    } finally {
      if (open) open();
      await stop(cluster);
    }
  });
});

describe('rows read as PostgreSQL sends them', () => {
  test('a log table created with a 4-byte id (serial): restores replay exactly the missed packets', async () => {
    const tables = freshTables();
    await pool.query(`CREATE TABLE ${tables.logTableName} (id serial PRIMARY KEY, uid text NOT NULL, nsp text NOT NULL,
      rooms text[] NOT NULL, except_rooms text[] NOT NULL, packet bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    const cluster = await startCluster({ adapterOpts: tables });
    try {
      const c = await client(cluster, 0);
      const [A, B] = cluster.servers.map((s) => s.io);
      B.emit('x', 1);
      await waitFor(() => events(c, 'x').length === 1, 5000, 'a packet');
      await cut(cluster, c, 0, { pool, sessionTable: tables.sessionTableName });
      B.emit('missed', 1);
      A.emit('missed', 2);
      await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM ${tables.logTableName} WHERE id > $1`, [c._lastOffset])).rows[0].n === 2, 5000, 'the log');
      await reconnectTo(cluster, c, 1);
      expect(c.recovered).toBe(true);
      await waitFor(() => events(c, 'missed').length === 2, 5000, 'the missed packets');
      expect(events(c, 'missed').sort()).toEqual([1, 2]);
    } finally {
      await stop(cluster);
    }
  });
});

describe('a client resuming from far back', () => {
  // Broadcasts `count` packets from server 1 while `c` is away (paced: the publish queue holds 10,000),
  // then waits until they are all in the log.
  async function missWhileAway(cluster, tables, c, count) {
    await cut(cluster, c, 0, { pool, sessionTable: tables.sessionTableName });
    const logged = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${tables.logTableName} WHERE id > $1`, [c._lastOffset])).rows[0].n;
    for (let sent = 0; sent < count; ) {
      const n = Math.min(2000, count - sent);
      for (let i = 0; i < n; i++) cluster.servers[1].io.emit('m', sent + i);
      sent += n;
      await waitFor(async () => (await logged()) >= sent, 20000, 'the log');
    }
  }

  async function resumeAfter(count, adapterOpts = {}) {
    const tables = freshTables();
    const cluster = await startCluster({ adapterOpts: { ...tables, ...adapterOpts } });
    try {
      const c = await client(cluster, 0);
      cluster.servers[1].io.emit('first', 0);
      await waitFor(() => events(c, 'first').length === 1, 5000, 'a packet');
      const id = c.id;
      await missWhileAway(cluster, tables, c, count);
      const reported = cluster.errors[1].length;
      await reconnectTo(cluster, c, 1);
      cluster.servers[1].io.emit('live', 1);
      await waitFor(() => events(c, 'live').length === 1, 10000, 'a live packet');
      return { recovered: c.recovered, sameId: c.id === id, got: events(c, 'm').length, reports: cluster.errors[1].slice(reported) };
    } finally {
      await stop(cluster);
    }
  }

  // Any client can do it: connect, remember an early offset, and come back with it. Each restore would
  // read every packet since that offset (up to maxDisconnectionDuration of broadcasts) into memory.
  test('more missed packets than maxRecoveredPackets: a fresh session (reported), never the whole log', async () => {
    const over = await resumeAfter(101, { maxRecoveredPackets: 100 });
    expect(over).toEqual(expect.objectContaining({ recovered: false, sameId: false, got: 0 }));
    expect(over.reports.some((e) => e.code === 'RECOVERY_FAILED' && /more than 100 packets/.test(e.message))).toBe(true);
    const within = await resumeAfter(100, { maxRecoveredPackets: 100 });
    expect(within).toEqual({ recovered: true, sameId: true, got: 100, reports: [] });
  }, 60000);

  test('by default at most 10,000 missed packets are replayed', async () => {
    const over = await resumeAfter(10001);
    expect(over).toEqual(expect.objectContaining({ recovered: false, sameId: false, got: 0 }));
  }, 60000);
});
