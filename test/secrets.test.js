'use strict';
// Connection parameters read as pg reads them, and no password in what is reported.
// - `database` is a plain name (never parsed as a connection string), and with a `connectionString` the
//   database is the one the connection string names, as with pg (checked against pg itself).
// - A password never appears in a reported error: not from a malformed connection string echoed by libpq,
//   not from a connection string used as a database name.

const { Client } = require('pg');
const { Emitter } = require('../lib');
const { waitFor } = require('./helpers/cluster');

jest.setTimeout(30000);

const OTHER_DB = 'sio_secrets_other';
const EQ_DB = 'sio_secrets_eq=1';
const describeErrors = (errs) => errs.map((e) => `${e.code}: ${e.message}`).join('\n  ') || '(none)';

// DATABASE_URL with a password: the real one if it has one, else a made-up one (the server does not ask).
const url = new URL(process.env.DATABASE_URL);
if (!url.password) url.password = 'Sio-Secret-Passw0rd';
const PASSWORD = decodeURIComponent(url.password);
const URL_WITH_PASSWORD = url.toString();
const parts = {
  host: url.hostname.replace(/^\[|\]$/g, ''),
  port: url.port || undefined,
  user: decodeURIComponent(url.username) || undefined,
  password: PASSWORD,
};
const DB = decodeURIComponent(url.pathname.slice(1));

let admin;
beforeAll(async () => {
  admin = new Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  for (const db of [OTHER_DB, EQ_DB]) {
    await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${db}"`);
  }
});
afterAll(async () => {
  if (!admin) return;
  for (const db of [OTHER_DB, EQ_DB]) await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => {});
  await admin.end();
});

let seq = 0;
// The database our connection reaches with `config`, seen in pg_stat_activity; and the errors reported.
async function ourDatabase(config) {
  const app = `sio-secrets-${process.pid}-${++seq}`;
  const errors = [];
  const emitter = new Emitter({ ...config, application_name: app }, '/', {
    channelPrefix: 'secrets',
    errorHandler: (e) => errors.push(e),
    reconnectInitialDelay: 50,
    reconnectMaxDelay: 200,
  });
  try {
    emitter.emit('ping');
    const row = await waitFor(async () => {
      const { rows } = await admin.query('SELECT datname FROM pg_catalog.pg_stat_activity WHERE application_name = $1', [app]);
      return rows[0];
    }, 10000, () => `a connection of ${app} (errors: ${describeErrors(errors)})`);
    return { database: row.datname, errors };
  } finally {
    await emitter.close();
  }
}

// The database pg reaches with `config`.
async function pgDatabase(config) {
  const client = new Client(config);
  await client.connect();
  try {
    return (await client.query('SELECT pg_catalog.current_database() AS db')).rows[0].db;
  } finally {
    await client.end();
  }
}

const noPassword = (errors) => errors.filter((e) => String(e.message).includes(PASSWORD) || String(e.stack).includes(PASSWORD));

describe('database, as pg reads it', () => {
  test('with a connectionString, the database is the one it names (database does not turn it into a name)', async () => {
    const config = { connectionString: URL_WITH_PASSWORD, database: OTHER_DB };
    const expected = await pgDatabase(config);
    expect(expected).toBe(DB);
    const { database, errors } = await ourDatabase(config);
    expect(noPassword(errors)).toEqual([]);
    expect(database).toBe(expected);
  });

  test('a database name containing "=" is a name, not a connection string', async () => {
    const config = { ...parts, database: EQ_DB };
    expect(await pgDatabase(config)).toBe(EQ_DB);
    const { database, errors } = await ourDatabase(config);
    expect(noPassword(errors)).toEqual([]);
    expect(database).toBe(EQ_DB);
  });
});

describe('no password in reported errors', () => {
  // A connection string libpq refuses; resolves to the errors reported once the failure is.
  async function refused(connectionString, password) {
    const errors = [];
    const emitter = new Emitter(connectionString, '/', { channelPrefix: 'secrets', errorHandler: (e) => errors.push(e), reconnectInitialDelay: 50, reconnectMaxDelay: 200 });
    try {
      await waitFor(() => errors.some((e) => e.code === 'CONNECTION_LOST'), 10000, 'the failure to be reported');
    } finally {
      await emitter.close();
    }
    const leaked = errors.filter((e) => `${e.message}\n${e.stack}`.includes(password));
    return { errors, leaked };
  }

  test('a malformed URL that libpq echoes is reported without its password', async () => {
    const password = 'S3cret-ipv6-Passw0rd';
    const { errors, leaked } = await refused(`postgres://someone:${password}@[::1/somedb`, password);
    expect(leaked.map((e) => e.message)).toEqual([]);
    const lost = errors.find((e) => e.code === 'CONNECTION_LOST');
    expect(lost.message).toMatch(/IPv6/); // still says what is wrong
    expect(lost.message).toContain('someone:[redacted]@');
  });

  test('a password holding "@" is not reported, not even the part libpq takes for the host', async () => {
    const password = 'S3cret@ipv6@Passw0rd';
    // libpq ends the user info at the first "@": it looks up the host "ipv6@Passw0rd@[]" and says so.
    const { errors } = await refused(`postgres://someone:${password}@[]/somedb`, password);
    expect(errors.filter((e) => /S3cret|ipv6|Passw0rd/.test(e.message)).map((e) => e.message)).toEqual([]);
    expect(errors.find((e) => e.code === 'CONNECTION_LOST').message).toMatch(/host name/);
  });

  test('a password that libpq quotes as a bad token is reported redacted', async () => {
    const password = 'S3cret%zzPassw0rd';
    const { errors, leaked } = await refused(`postgres://someone:${password}@127.0.0.1:1/somedb`, password);
    expect(leaked.map((e) => e.message)).toEqual([]);
    expect(errors.find((e) => e.code === 'CONNECTION_LOST').message).toMatch(/percent-encoded/);
  });
});
