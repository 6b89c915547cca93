'use strict';
// A SQL_ASCII database stores whatever bytes it is given. A listening session that asks for UTF-8 gets each
// notification checked on the way out, and one payload that is not UTF-8 (any role may NOTIFY) fails in its
// backend and ends the session: every server would go deaf, again and again. What a user sees here: the bad
// notification arrives with U+FFFD for the bad byte, the listening connection stays up, broadcasts keep arriving
// (non-ASCII text and namespaces included).
const { Client } = require('pg');
const { Cluster, waitFor } = require('./helpers/cluster');
const { describeErrors, count, addServerOn } = require('./helpers/faults');

jest.setTimeout(30000);

const url = () => process.env.DATABASE_URL;

describe('a SQL_ASCII database', () => {
  const dbname = `sql_ascii_${process.pid}`;
  let admin;
  let raw;
  let cluster;
  const errors = [[], []];
  beforeAll(async () => {
    admin = new Client({ connectionString: url() });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbname} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`);
    const ascii = url().replace(/\/[^/]*$/, `/${dbname}`);
    cluster = new Cluster({ channelPrefix: 'sql_ascii', size: 0, namespaces: ['/日本'] });
    for (const errs of errors) await addServerOn(cluster, ascii, { errorHandler: (e) => errs.push(e) });
    await cluster.waitReady();
    raw = new Client({ connectionString: ascii, client_encoding: 'SQL_ASCII' });
    await raw.connect();
  });
  afterAll(async () => {
    if (raw) await raw.end();
    if (cluster) await cluster.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`);
    await admin.end();
  });

  test('a notification that is not UTF-8 arrives with U+FFFD for the bad byte; the servers keep listening', async () => {
    const [, onB] = await cluster.connectOnEach();
    const channel = `${cluster.adapterOpts.channelPrefix}#/`;
    // {"uid":"x","type":3,... with a lone 0xff byte in a string: valid JSON bytes, not UTF-8.
    const bad = Buffer.concat([Buffer.from('{"uid":"evil","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["bad","'), Buffer.from([0xff]),
      Buffer.from('"]},"opts":{"rooms":[],"except":[],"flags":{}}}}')]);
    await raw.query("SELECT pg_catalog.pg_notify($1, pg_catalog.convert_from($2::pg_catalog.bytea, 'SQL_ASCII'))", [channel, bad]);
    cluster.servers[0].io.emit('after', 'é☃');
    await waitFor(() => onB.received.some((e) => e[0] === 'after'), 10000, () => `the next broadcast; server 1 got:\n  ${describeErrors(errors[1])}`);
    expect(onB.received.find((e) => e[0] === 'after')).toEqual(['after', 'é☃']);
    for (const errs of errors) expect(count(errs, 'CONNECTION_LOST')).toBe(0);
    // Delivered with U+FFFD for the byte, as any text that is not UTF-8 (JavaScript strings cannot hold it).
    const got = onB.received.find((e) => e[0] === 'bad');
    expect(got).toEqual(['bad', '\ufffd']);
  });

  test('a namespace with a non-ASCII name works', async () => {
    const [, onB] = await Promise.all([cluster.connect(0, { nsp: '/日本' }), cluster.connect(1, { nsp: '/日本' })]);
    await waitFor(() => {
      cluster.servers[0].io.of('/日本').emit('hi', '日本');
      return onB.received.some((e) => e[0] === 'hi');
    }, 10000, 'a broadcast on /日本');
    expect(onB.received.find((e) => e[0] === 'hi')).toEqual(['hi', '日本']);
    for (const errs of errors) expect(count(errs, 'LISTEN_FAILED')).toBe(0);
  });
});
