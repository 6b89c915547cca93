// Table names are read as SQL reads them, as the pure-JS adapter (which splices them into its SQL) lets its
// users write them: dot-separated parts, each double-quoted ("" for a quote) or unquoted (folded to lower
// case). So a migrating user's tableName finds the same table, and both kinds of servers share it. A name
// SQL could not read is refused at createAdapter()/new Emitter() (BAD_TABLE_NAME).
const { Pool } = require('pg');
const { Cluster, waitForEvents } = require('./helpers/cluster');
const { createAdapter, Emitter } = require('../lib');

const TABLE_SQL = (name) => `CREATE TABLE IF NOT EXISTS ${name} (
  id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`;
const MIXED = `Mixed Case ${process.pid}`; // needs quotes in SQL
const FOLDED = `folded_${process.pid}`; // what an unquoted Folded_<pid> is

let pool;
beforeAll(async () => {
  pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  await pool.query('CREATE SCHEMA IF NOT EXISTS "Sql Schema"');
  await pool.query(TABLE_SQL(`"${MIXED}"`));
  await pool.query(TABLE_SQL(`"Sql Schema"."${MIXED}"`));
  await pool.query(TABLE_SQL(`Folded_${process.pid}`)); // created by SQL as folded_<pid>
});
afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS "${MIXED}", "Sql Schema"."${MIXED}", ${FOLDED}`);
  await pool.query('DROP SCHEMA IF EXISTS "Sql Schema"');
  await pool.end();
});

const rows = async (table) => (await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;

// Starts a cluster using `tableName`, sends a binary broadcast each way, checks that it went through `table`.
async function broadcastThrough(tableName, table, adapters = ['native', 'native']) {
  const errors = [];
  const cluster = new Cluster({
    channelPrefix: 'tables',
    size: 2,
    adapters,
    adapterOpts: { tableName, errorHandler: (err) => errors.push(`${err.code}: ${err.message}`) },
  });
  try {
    await cluster.start();
    const before = await rows(table);
    const [onA, onB] = await cluster.connectOnEach();
    cluster.servers[0].io.emit('bin', Buffer.from('from 0'));
    cluster.servers[1].io.emit('bin', Buffer.from('from 1'));
    for (const client of [onA, onB]) {
      const got = (await waitForEvents(client, 'bin', 2)).map(([b]) => Buffer.from(b).toString());
      expect(got.sort()).toEqual(['from 0', 'from 1']);
    }
    expect(await rows(table)).toBe(before + 2);
    expect(errors).toEqual([]);
  } finally {
    await cluster.close();
  }
}

describe('table names as SQL reads them', () => {
  test.each([
    ['"socket_io_attachments"', 'socket_io_attachments'],
    ['public.socket_io_attachments', 'socket_io_attachments'],
    ['"public"."socket_io_attachments"', 'socket_io_attachments'],
    ['Socket_IO_Attachments', 'socket_io_attachments'],
    [` public . "socket_io_attachments" `, 'socket_io_attachments'],
    [`"${MIXED}"`, `"${MIXED}"`],
    [`"Sql Schema"."${MIXED}"`, `"Sql Schema"."${MIXED}"`],
    [`Folded_${process.pid}`, FOLDED],
  ])('tableName %s uses the table %s', (tableName, table) => broadcastThrough(tableName, table));

  test('a mixed cluster with the pure-JS adapter shares a quoted table name', async () => {
    await broadcastThrough(`"Sql Schema"."${MIXED}"`, `"Sql Schema"."${MIXED}"`, ['pure', 'native']);
    await broadcastThrough(`"${MIXED}"`, `"${MIXED}"`, ['native', 'pure']);
  });

  test('createTable creates a quoted schema-qualified name', async () => {
    const name = `"Sql Schema"."created ""here"" ${process.pid}"`;
    await pool.query(`DROP TABLE IF EXISTS ${name}`);
    const cluster = new Cluster({ channelPrefix: 'tables', size: 2, adapterOpts: { tableName: name, createTable: true } });
    try {
      await cluster.start();
      const [, onB] = await cluster.connectOnEach();
      cluster.servers[0].io.emit('bin', Buffer.from([1]));
      await waitForEvents(onB, 'bin');
      expect(await rows(name)).toBe(1);
    } finally {
      await cluster.close();
      await pool.query(`DROP TABLE IF EXISTS ${name}`);
    }
  });
});

describe('malformed table names', () => {
  const url = 'postgres://postgres@127.0.0.1:1/postgres';
  const malformed = ['"abc', 'abc"', '"a"b', 'a..b', '.a', 'a.', '""', 'a"b', 'my schema.x', 'a;drop', '1abc', 'a-b',
    'a.b.c.d', '"a".', ' ', 'a\0b', '"a\0b"'];
  const options = ['tableName', 'logTableName', 'sessionTableName'];
  const cases = options.flatMap((option) => malformed.map((name) => [option, name]));

  test.each(cases)('%s = %p → TypeError with code BAD_TABLE_NAME, from createAdapter and new Emitter', (option, name) => {
    for (const make of [() => createAdapter(url, { [option]: name }), () => new Emitter(url, '/', { [option]: name })]) {
      let error;
      try {
        make();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect(error.code).toBe('BAD_TABLE_NAME');
      expect(error.message).toContain(`"${option}"`);
    }
  });
});
