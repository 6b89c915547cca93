// search_path hijack (CVE-2018-1058 pattern): a role that may create objects in a schema of the adapter's
// search_path plants functions and operators that match our calls more exactly than pg_catalog's (or, when
// the search_path lists that schema before pg_catalog, just as exactly). Each plant records current_user
// and then does what the real one does. After every kind of statement the adapter sends, nothing planted
// may have run.
const { Pool } = require('pg');
const { io: ioClient } = require('socket.io-client');
const { Cluster, waitFor, waitForEvents, withTimeout } = require('./helpers/cluster');
const { Emitter } = require('../lib');

const DB = `search_path_${process.pid}`;
const HOSTILE = `hostile_${process.pid}`;
const TABLES = { tableName: 'sp_attachments', logTableName: 'sp_log', sessionTableName: 'sp_sessions' };

// A function that records its call, then returns `body` (run with a safe search_path).
const fn = (signature, returns, body) => `CREATE FUNCTION public.${signature} RETURNS ${returns} LANGUAGE sql
  SET search_path = pg_catalog AS $$ INSERT INTO public.hijacks (who, what) VALUES (current_user, '${signature}'); ${body} $$`;
// An operator backed by a recording function.
const operator = (name, left, right, returns, func, body) => [
  fn(`${func}(${left}, ${right})`, returns, body),
  `CREATE OPERATOR public.${name} (LEFTARG = ${left}, RIGHTARG = ${right}, FUNCTION = public.${func})`,
];
const op = (name, left, right, func, body) => operator(name, left, right, 'boolean', func, body);

const PLANTS = [
  // More exact than pg_catalog's: these win with the default search_path.
  fn('nextval(text)', 'bigint', 'SELECT nextval($1::regclass)'),
  fn('pg_advisory_xact_lock(integer)', 'void', 'SELECT pg_advisory_xact_lock($1::bigint)'),
  fn('array_to_json(text[])', 'json', 'SELECT array_to_json($1)'),
  fn('cardinality(text[])', 'integer', 'SELECT cardinality($1)'),
  fn('unnest(text[])', 'SETOF text', 'SELECT unnest($1)'),
  fn('unnest(bytea[])', 'SETOF bytea', 'SELECT unnest($1)'),
  fn('unnest(bigint[])', 'SETOF bigint', 'SELECT unnest($1)'),
  fn('unnest(text[], text[])', 'TABLE (a text, b text)', 'SELECT * FROM ROWS FROM (unnest($1), unnest($2))'),
  fn('unnest(bytea[], text[], text[])', 'TABLE (a bytea, b text, c text)',
    'SELECT * FROM ROWS FROM (unnest($1), unnest($2), unnest($3))'),
  ...op('&&', 'text[]', 'text[]', 'overlap_texts', 'SELECT $1 OPERATOR(pg_catalog.&&) $2'),
  ...operator('||', 'text', 'bigint', 'text', 'cat_text_int8', 'SELECT $1 OPERATOR(pg_catalog.||) $2::text'),
  // As exact as pg_catalog's: these win when the search_path lists public before pg_catalog.
  fn('pg_notify(text, text)', 'void', 'SELECT pg_notify($1, $2)'),
  fn('now()', 'timestamptz', 'SELECT now()'),
  fn('hashtext(text)', 'integer', 'SELECT hashtext($1)'),
  fn('pg_get_serial_sequence(text, text)', 'text', 'SELECT pg_get_serial_sequence($1, $2)'),
  fn('array_to_json(anyarray)', 'json', 'SELECT array_to_json($1)'),
  fn('cardinality(anyarray)', 'integer', 'SELECT cardinality($1)'),
  fn('unnest(anyarray)', 'SETOF anyelement', 'SELECT unnest($1)'),
  fn('max_step(bigint, bigint)', 'bigint', 'SELECT greatest($1, $2)'),
  'CREATE AGGREGATE public.max(bigint) (SFUNC = public.max_step, STYPE = bigint)',
  ...op('=', 'bigint', 'bigint', 'eq_int8', 'SELECT $1 OPERATOR(pg_catalog.=) $2'),
  ...op('=', 'text', 'text', 'eq_text', 'SELECT $1 OPERATOR(pg_catalog.=) $2'),
  ...op('=', 'integer', 'integer', 'eq_int4', 'SELECT $1 OPERATOR(pg_catalog.=) $2'),
  ...op('>', 'bigint', 'bigint', 'gt_int8', 'SELECT $1 OPERATOR(pg_catalog.>) $2'),
  ...op('<', 'timestamptz', 'timestamptz', 'lt_tstz', 'SELECT $1 OPERATOR(pg_catalog.<) $2'),
  ...op('>', 'timestamptz', 'timestamptz', 'gt_tstz', 'SELECT $1 OPERATOR(pg_catalog.>) $2'),
  ...op('&&', 'anyarray', 'anyarray', 'overlap_any', 'SELECT $1 OPERATOR(pg_catalog.&&) $2'),
  ...operator('-', 'timestamptz', 'interval', 'timestamptz', 'minus_tstz', 'SELECT $1 OPERATOR(pg_catalog.-) $2'),
  ...operator('+', 'timestamptz', 'interval', 'timestamptz', 'plus_tstz', 'SELECT $1 OPERATOR(pg_catalog.+) $2'),
  ...operator('||', 'text', 'text', 'text', 'cat_text', 'SELECT $1 OPERATOR(pg_catalog.||) $2'),
];

let admin; // superuser on the main database
let db; // superuser on DB, with a search_path that no plant can touch
let dbUrl;
let savedUrl;

beforeAll(async () => {
  admin = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`DROP ROLE IF EXISTS ${HOSTILE}`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.query(`CREATE ROLE ${HOSTILE}`);
  const url = new URL(process.env.DATABASE_URL);
  url.pathname = `/${DB}`;
  dbUrl = url.toString();
  db = new Pool({ connectionString: dbUrl, max: 2, options: '-c search_path=pg_catalog' });
  db.on('error', () => {}); // DROP DATABASE ... WITH (FORCE) at the end
  await db.query('CREATE TABLE public.hijacks (who text, what text)');
  await db.query('GRANT INSERT ON public.hijacks TO PUBLIC');
  // Not granted by default since PostgreSQL 15; granted to PUBLIC by default up to 14.
  await db.query(`GRANT CREATE ON SCHEMA public TO ${HOSTILE}`);
  const client = await db.connect();
  try {
    await client.query(`SET ROLE ${HOSTILE}`);
    for (const sql of PLANTS) await client.query(sql);
  } finally {
    await client.query('RESET ROLE');
    client.release();
  }
  savedUrl = process.env.DATABASE_URL;
  process.env.DATABASE_URL = dbUrl; // the cluster helper's servers connect to DB
});

afterAll(async () => {
  if (savedUrl) process.env.DATABASE_URL = savedUrl;
  if (db) await db.end();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${HOSTILE}`);
    await admin.end();
  }
});

const count = async (table, where = 'true') =>
  (await db.query(`SELECT pg_catalog.count(*)::int4 AS n FROM public.${table} WHERE ${where}`)).rows[0].n;

async function expectNoHijack() {
  const { rows } = await db.query('SELECT who, what, pg_catalog.count(*)::int4 AS n FROM public.hijacks GROUP BY 1, 2 ORDER BY 2');
  expect(rows.map((r) => `${r.what} ran ${r.n} time(s) as ${r.who}`)).toEqual([]);
}

describe.each([
  ['the default search_path', null],
  ['a search_path listing public before pg_catalog', 'public, pg_catalog'],
])('with %s', (_, searchPath) => {
  beforeAll(async () => {
    await db.query(searchPath ? `ALTER DATABASE ${DB} SET search_path = ${searchPath}` : `ALTER DATABASE ${DB} RESET search_path`);
    for (const t of Object.values(TABLES)) await db.query(`DROP TABLE IF EXISTS public.${t}`);
  });
  let errors;
  beforeEach(() => {
    errors = [];
  });
  afterEach(() => db.query('TRUNCATE public.hijacks'));
  const errorHandler = (err) => errors.push(`${err.code}: ${err.message}`);

  test('plain, batched, binary and large messages, the emitter, the cleanup and the health check run nothing planted', async () => {
    const cluster = new Cluster({
      channelPrefix: 'sp',
      size: 2,
      adapters: ['native', 'native'],
      adapterOpts: { tableName: TABLES.tableName, createTable: true, cleanupInterval: 200, healthCheckInterval: 100, errorHandler },
    });
    try {
      await cluster.start();
      const [, onB] = await cluster.connectOnEach();
      const A = cluster.servers[0].io;
      A.emit('one', 1);
      for (let i = 0; i < 50; i++) A.emit('many', i); // queued together: one batch
      for (let i = 0; i < 3; i++) A.emit('bin', Buffer.from([i]));
      A.emit('big', 'x'.repeat(10000));
      await waitForEvents(onB, 'one');
      expect((await waitForEvents(onB, 'many', 50)).map(([i]) => i)).toEqual([...Array(50).keys()]);
      expect((await waitForEvents(onB, 'bin', 3)).map(([b]) => new Uint8Array(b)[0])).toEqual([0, 1, 2]);
      await waitForEvents(onB, 'big');

      const emitter = new Emitter(dbUrl, '/', { channelPrefix: cluster.adapterOpts.channelPrefix, tableName: TABLES.tableName, errorHandler });
      emitter.emit('from-emitter', 1);
      emitter.emit('from-emitter', Buffer.from([7]));
      await waitForEvents(onB, 'from-emitter', 2);
      await emitter.close();

      // The cleanup: an old row disappears.
      await db.query(`INSERT INTO public.${TABLES.tableName} (payload, created_at) VALUES ('\\x00', '2000-01-01')`);
      await waitFor(async () => (await count(TABLES.tableName, "created_at OPERATOR(pg_catalog.<) '2001-01-01'::pg_catalog.timestamptz")) === 0, 5000, 'the cleanup');
      // The health check on an idle connection.
      await waitFor(
        async () => (await db.query("SELECT 1 FROM pg_catalog.pg_stat_activity WHERE datname OPERATOR(pg_catalog.=) $1 AND application_name OPERATOR(pg_catalog.~~) 'socket.io-postgres-native%' AND query OPERATOR(pg_catalog.=) 'SELECT 1'", [DB])).rowCount > 0,
        5000,
        'a health check',
      );
      await expectNoHijack();
      expect(errors).toEqual([]);
    } finally {
      await cluster.close();
    }
  });

  test('connection state recovery: logged broadcasts, persist, restore, the recovery cleanup run nothing planted', async () => {
    const cluster = new Cluster({
      channelPrefix: 'sp_csr',
      size: 2,
      adapters: ['native', 'native'],
      adapterOpts: { ...TABLES, createTable: true, cleanupInterval: 200, errorHandler },
      serverOpts: { connectionStateRecovery: { maxDisconnectionDuration: 2000 } },
    });
    let client;
    try {
      await cluster.start();
      const [A, B] = cluster.servers.map((s) => s.io);
      client = ioClient(`http://127.0.0.1:${cluster.servers[0].port}`, {
        transports: ['websocket'], forceNew: true, reconnection: false, auth: { rooms: ['r'] },
      });
      client.got = [];
      client.onAny((ev, payload) => client.got.push([ev, payload]));
      await withTimeout(new Promise((r) => client.once('connect', r)), 5000, 'connect');
      B.emit('small', 1);
      B.emit('bin', Buffer.from([1]));
      await waitFor(() => client.got.length === 2, 5000, 'two logged broadcasts');

      // Persist: a recoverable disconnection stores the session.
      const gone = new Promise((r) => client.once('disconnect', r));
      A.of('/').sockets.get(client.id).conn.close();
      await gone;
      await waitFor(async () => (await count(TABLES.sessionTableName)) === 1, 5000, 'the session to be stored');
      B.to('r').emit('missed', 2);
      // (row 0 of the log is the commit-order lock's row, never replayed nor cleaned up)
      await waitFor(async () => (await count(TABLES.logTableName, 'id OPERATOR(pg_catalog.>) 0')) === 3, 5000, 'the missed broadcast to be logged');
      // Restore on the other server: the session and the missed packet.
      client.io.uri = `http://127.0.0.1:${cluster.servers[1].port}`;
      const back = new Promise((r) => client.once('connect', r));
      client.connect();
      await withTimeout(back, 5000, 'reconnect');
      expect(client.recovered).toBe(true);
      await waitFor(() => client.got.some(([ev]) => ev === 'missed'), 5000, 'the missed packet');

      // The recovery cleanup: an expired session and old log rows disappear.
      const gone2 = new Promise((r) => client.once('disconnect', r));
      B.of('/').sockets.get(client.id).conn.close();
      await gone2;
      await waitFor(async () => (await count(TABLES.sessionTableName)) === 1, 5000, 'the session to be stored again');
      await waitFor(async () => (await count(TABLES.sessionTableName)) === 0 && (await count(TABLES.logTableName, 'id OPERATOR(pg_catalog.>) 0')) === 0,
        10000, 'the recovery cleanup');
      await expectNoHijack();
      expect(errors).toEqual([]);
    } finally {
      if (client) client.disconnect();
      await cluster.close();
    }
  });
});
