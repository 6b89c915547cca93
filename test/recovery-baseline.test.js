'use strict';
// Connection state recovery while the listening connection comes back: a broadcast that another server commits
// after our re-LISTEN took effect but before the listener read its baseline (the log's highest id) must still
// reach the clients that stayed connected, and a client restored meanwhile, once each; and a forged offset in
// that window must not make a restore skip rows. The races are driven deterministically with locks held by
// plain pg clients.
const { Pool } = require('pg');
const { Cluster, waitFor } = require('./helpers/cluster');
const { recoverableClient, cut, reconnectTo } = require('./helpers/recovery');
const { presenceName } = require('../lib/presence');

const PID = process.pid;
const APP_B = `csrb-b-${PID}`;

let pool;
let gate = null; // a pending promise while server A may not connect
const clients = [];

const events = (c, ev) => c.got.filter(([e]) => e === ev).map(([, p]) => p);

// A backend matching `where` (on pg_stat_activity) waits for a heavyweight lock.
const waitingOnLock = (where, params, what) =>
  waitFor(async () => (await pool.query(
    `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ${where}`, params)).rowCount > 0, 5000, what);

beforeAll(() => {
  pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 6 });
});
afterAll(() => pool.end());
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

async function startCluster(size, tables) {
  const errors = [];
  const cluster = new Cluster({
    channelPrefix: 'csrb',
    size: 0,
    // statementTimeout: the race below keeps statements blocked for a moment.
    adapterOpts: { ...tables, createTable: true, statementTimeout: 30000, reconnectInitialDelay: 50 },
    serverOpts: { connectionStateRecovery: { maxDisconnectionDuration: 60000 } },
    // B's publishing session is found by its name; A's connections wait for `gate` when it is set.
    poolConfig: (i) => (i === 1 ? { application_name: APP_B } : { password: () => (gate ? gate.then(() => '') : '') }),
  });
  for (let i = 0; i < size; i++) {
    errors.push([]);
    await cluster.addServer({ errorHandler: (err) => errors[i].push(err) });
  }
  if (size > 1) await cluster.waitReady();
  cluster.errors = errors;
  return cluster;
}

const unexpected = (errs) => errs.map((e) => e.code).filter((code) => code !== 'CONNECTION_LOST' && code !== 'RECONNECTED');

// Resolves once a client's restore has been asked of `adapter` (its statement is then queued).
function restoreAsked(adapter) {
  return new Promise((resolve) => {
    const restoreSession = adapter.restoreSession.bind(adapter);
    adapter.restoreSession = (...args) => {
      const result = restoreSession(...args);
      resolve();
      return result;
    };
  });
}

async function killListener(cluster, index) {
  const listening = presenceName(cluster.adapterOpts.channelPrefix, cluster.servers[index].io.of('/').adapter.uid);
  const killed = await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [listening]);
  expect(killed.rowCount).toBe(1);
}

// Another server (B) commits a broadcast after A's listening connection came back and LISTENed again, but
// before A read its baseline: B's transaction waits for the log's row 0 (a plain client holds it), a
// queued ACCESS EXCLUSIVE lock then holds A's baseline read, and they are released in that order. B has not
// broadcast before, so A checks its first offset against the log, behind the baseline read. `meanwhile` runs
// while A's baseline read waits.
async function broadcastRacingReListen(cluster, tables, meanwhile = async () => {}) {
  const holder = await pool.connect();
  const locker = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`UPDATE ${tables.logTableName} SET created_at = 'infinity' WHERE id = 0`);
    cluster.servers[1].io.emit('live', 1);
    await waitingOnLock('application_name = $1', [APP_B], "B's broadcast to wait for row 0");
    await locker.query('BEGIN');
    const locked = locker.query(`LOCK TABLE ${tables.logTableName} IN ACCESS EXCLUSIVE MODE`);
    await waitingOnLock("query LIKE 'LOCK TABLE %'", [], 'the table lock to queue behind B');

    // A's listening connection is lost; it comes back, LISTENs again and waits to read its baseline.
    await killListener(cluster, 0);
    await waitingOnLock("query LIKE 'SELECT coalesce(pg_catalog.max(id), 0) FROM %'", [], "A's baseline read after its re-LISTEN");
    await meanwhile();

    // B commits now, after A's LISTEN took effect; A's baseline read sees B's row.
    await holder.query('COMMIT');
    await locked;
    await locker.query('COMMIT');
  } finally {
    await holder.query('ROLLBACK').catch(() => {});
    await locker.query('ROLLBACK').catch(() => {});
    holder.release();
    locker.release();
  }
}

// A's listening connection is killed and kept down (`gate`, until `open()`) while B broadcasts 'gone': A is
// never notified of it. Resolves with its log id, `open`, and how many errors A had reported before.
async function broadcastWhileListenerDown(cluster, tables) {
  let open;
  gate = new Promise((resolve) => (open = resolve));
  const lost = cluster.errors[0].length;
  await killListener(cluster, 0);
  await waitFor(() => cluster.errors[0].slice(lost).some((e) => e.code === 'CONNECTION_LOST'), 5000, "A's listening connection lost");
  const B = cluster.servers[1].io;
  B.emit('gone', 1);
  const logged = async () => (await pool.query(`SELECT max(id)::int AS id FROM ${tables.logTableName} WHERE uid = $1`, [B.of('/').adapter.uid])).rows[0].id;
  await waitFor(async () => (await logged()) !== null, 5000, "B's broadcast logged");
  return { gone: await logged(), open, lost };
}

describe('a broadcast racing the re-LISTEN', () => {
  let n = 0;
  let cluster;
  let tables;
  beforeEach(async () => {
    tables = { logTableName: `csrb_log_${PID}_${++n}`, sessionTableName: `csrb_sessions_${PID}_${n}` };
    cluster = await startCluster(2, tables);
  });
  afterEach(() => cluster.close());

  // The log's row 0 exists from here on (B has still not broadcast).
  async function warm(clientsOnA) {
    cluster.servers[0].io.emit('warm', 0);
    await waitFor(() => clientsOnA.every((c) => events(c, 'warm').length === 1), 5000, 'a first packet');
  }

  test('a broadcast committed between the re-LISTEN and the baseline read reaches a connected client once', async () => {
    const c = await recoverableClient(cluster, 0);
    clients.push(c);
    await warm([c]);
    await broadcastRacingReListen(cluster, tables);

    cluster.servers[1].io.emit('after', 2); // B's packets reach A in order: 'live' is in before this one
    await waitFor(() => events(c, 'after').length === 1, 10000, 'a later packet from B');
    expect(c.connected).toBe(true);
    expect(c.got.map(([ev]) => ev)).toEqual(['warm', 'live', 'after']);
    expect(unexpected(cluster.errors[0])).toEqual([]);
  });

  test('and a client restored on that server meanwhile gets it once too', async () => {
    const c = await recoverableClient(cluster, 0);
    const back = await recoverableClient(cluster, 0);
    clients.push(c, back);
    await warm([c, back]);
    await cut(cluster, back, 0, { pool, sessionTable: tables.sessionTableName });

    // `back` resumes on A while A's baseline read waits: its restore runs on A's listening connection right
    // after the baseline read, before the check of B's offset.
    const asked = restoreAsked(cluster.servers[0].io.of('/').adapter);
    let reconnected;
    await broadcastRacingReListen(cluster, tables, async () => {
      reconnected = reconnectTo(cluster, back, 0);
      await asked;
    });
    await reconnected;
    expect(back.recovered).toBe(true);

    cluster.servers[1].io.emit('after', 2);
    await waitFor(() => [c, back].every((x) => events(x, 'after').length === 1), 10000, 'a later packet from B');
    expect(c.got.map(([ev]) => ev)).toEqual(['warm', 'live', 'after']);
    expect(back.got.map(([ev]) => ev)).toEqual(['warm', 'live', 'after']);
    expect(unexpected(cluster.errors[0])).toEqual([]);
  });
  test('a forged offset waiting for its check does not make a restore skip what it must replay', async () => {
    const [A, B] = cluster.servers.map((s) => s.io);
    const back = await recoverableClient(cluster, 0);
    clients.push(back);
    await warm([back]);
    await cut(cluster, back, 0, { pool, sessionTable: tables.sessionTableName });

    // A's listening connection is down while B broadcasts: A is never notified of it, only a restore replays it.
    const { gone, open } = await broadcastWhileListenerDown(cluster, tables);

    const locker = await pool.connect(); // holds A's baseline read after its re-LISTEN
    let reconnected;
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${tables.logTableName} IN ACCESS EXCLUSIVE MODE`);
      open();
      gate = null;
      await waitingOnLock("query LIKE 'SELECT coalesce(pg_catalog.max(id), 0) FROM %'", [], "A's baseline read after its re-LISTEN");
      // `back` resumes on A: its restore comes right after the baseline read, before the check of the forgery below.
      const asked = restoreAsked(A.of('/').adapter);
      reconnected = reconnectTo(cluster, back, 0);
      await asked;
      // Anyone may NOTIFY: an offset the log has, but not from this sender, from a session not checked yet.
      const forged = { uid: 'evil', type: 3, nsp: '/', data: { packet: { type: 2, data: ['forged', 1], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } } };
      await pool.query('SELECT pg_notify($1, $2)', [`${cluster.adapterOpts.channelPrefix}#/`, JSON.stringify({ ...forged, offset: String(gone) })]);
      await locker.query('COMMIT');
    } finally {
      if (gate) open();
      gate = null;
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }
    await reconnected;
    expect(back.recovered).toBe(true);

    B.emit('after', 2);
    await waitFor(() => events(back, 'after').length === 1, 10000, 'a later packet from B');
    expect(back.got.map(([ev]) => ev).filter((ev) => ev !== 'forged')).toEqual(['warm', 'gone', 'after']);
    await waitFor(() => cluster.errors[0].some((e) => e.code === 'BAD_NOTIFICATION' && /forged/.test(e.message)), 5000, 'the forgery reported');
  });

  // PostgreSQL makes a commit visible, releases its locks, and only then signals the listening sessions: on a busy
  // machine A's re-LISTEN, its baseline read and a restore can all run in between, so the notification of a
  // broadcast the restore replayed reaches A after it. Sent here by hand once the restore is done (B's own
  // notification of it never came: A was not listening then).
  test('a notification that reaches A after a restore replayed its broadcast still reaches the clients that stayed', async () => {
    const B = cluster.servers[1].io;
    const c = await recoverableClient(cluster, 0);
    const back = await recoverableClient(cluster, 0);
    clients.push(c, back);
    await warm([c, back]);
    await cut(cluster, back, 0, { pool, sessionTable: tables.sessionTableName });

    const { gone, open, lost } = await broadcastWhileListenerDown(cluster, tables);
    open();
    gate = null;
    await waitFor(() => cluster.errors[0].slice(lost).some((e) => e.code === 'RECONNECTED'), 10000, "A's listening connection back");

    await reconnectTo(cluster, back, 0);
    expect(back.recovered).toBe(true);
    await waitFor(() => events(back, 'gone').length === 1, 5000, "'gone' replayed to the restored client");

    const late = { uid: B.of('/').adapter.uid, type: 3, nsp: '/', data: { packet: { type: 2, data: ['gone', 1], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } } };
    await pool.query('SELECT pg_notify($1, $2)', [`${cluster.adapterOpts.channelPrefix}#/`, JSON.stringify({ ...late, offset: String(gone) })]);
    B.emit('after', 2);
    await waitFor(() => [c, back].every((x) => events(x, 'after').length === 1), 10000, 'a later packet from B');
    expect(c.got.map(([ev]) => ev)).toEqual(['warm', 'gone', 'after']);
    expect(back.got.map(([ev]) => ev)).toEqual(['warm', 'gone', 'after']);
    expect(unexpected(cluster.errors[0])).toEqual([]);
  });
});
