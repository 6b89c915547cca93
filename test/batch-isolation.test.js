// One bad message never fails the others of its batch. Messages queued together go to PostgreSQL as one
// statement, and PostgreSQL rejects the whole statement when one row fails: every good message must still be
// published, in order, exactly once, and the bad one reported once, naming its channel.
const { Pool } = require('pg');
const { Cluster, listenRaw, waitFor, waitForEvents } = require('./helpers/cluster');
const { openNativeClient } = require('../lib/client');
const { resolveOptions } = require('../lib/options');
const { paramsProvider } = require('../lib/connection');

const message = (data) => ({ type: 9, uid: 'batch-test', nsp: '/', data });

describe('a run of small messages with bad channels (native client)', () => {
  const channel = `batch_${process.pid}`;
  let listener;
  let native;
  const got = [];
  const errors = [];

  beforeAll(async () => {
    listener = await listenRaw(channel, got, (payload) => JSON.parse(payload).data);
    native = openNativeClient(paramsProvider(process.env.DATABASE_URL), resolveOptions({}), {
      listen: false,
      report: (err) => errors.push(err),
    });
  });
  afterAll(async () => {
    if (native) await native.close(1000);
    if (listener) await listener.end();
  });

  test('every good message arrives in order once; a NUL channel is refused at publish, an empty one reported once', async () => {
    const refused = [];
    for (let i = 0; i < 30; i++) {
      // PostgreSQL rejects an empty channel name: the row fails inside the statement.
      if (i === 10) expect(native.publish('', message('nowhere'))).toBeUndefined();
      if (i === 20) refused.push(native.publish(`${channel}\0x`, message('cut')));
      native.publish(channel, message(i));
    }
    native.publish(channel, message('end'));
    await waitFor(() => got.includes('end'), 10000, () => `the last message (got ${JSON.stringify(got)})`);
    expect(got).toEqual([...Array(30).keys(), 'end']);
    expect(refused).toEqual([expect.stringMatching(/NUL/)]);
    await waitFor(() => errors.length > 0, 5000, 'the report of the failed message');
    expect(errors.map((e) => e.code)).toEqual(['PUBLISH_FAILED']);
    expect(errors[0].message).toContain('channel ""');
  });
});

describe('a run of attachments with one row refused by the table (public API)', () => {
  const TABLE = `poison_attachments_${process.pid}`;
  let pool;
  let cluster;
  const errors = [];

  beforeAll(async () => {
    pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
    // A constraint of the user's on their table refuses one of the rows.
    await pool.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(),
      payload bytea CHECK (position('\\x504f49534f4e'::bytea in payload) = 0))`);
    cluster = new Cluster({
      channelPrefix: 'batch',
      size: 2,
      adapterOpts: { tableName: TABLE, errorHandler: (err) => errors.push(err) },
    });
    await cluster.start();
  });
  afterAll(async () => {
    if (cluster) await cluster.close();
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await pool.end();
  });

  test('the other attachments arrive in order once, the refused one is reported once', async () => {
    const [, onB] = await cluster.connectOnEach();
    const A = cluster.servers[0].io;
    // Emitted in one tick: all but the first are queued while the first is in flight, and go as one batch.
    for (let i = 0; i < 20; i++) A.emit('bin', i, Buffer.from(i === 7 ? 'POISON' : 'ok'));
    const expected = [...Array(20).keys()].filter((i) => i !== 7);
    await waitForEvents(onB, 'bin', expected.length, 10000);
    await cluster.barrier();
    expect(onB.received.filter(([ev]) => ev === 'bin').map(([, i]) => i)).toEqual(expected);
    await waitFor(() => errors.length > 0, 5000, 'the report of the refused message');
    expect(errors.map((e) => e.code)).toEqual(['PUBLISH_FAILED']);
    expect(errors[0].message).toContain(`channel "${cluster.adapterOpts.channelPrefix}#/"`);
    expect(errors[0].message).toContain('check constraint');
  });
});
