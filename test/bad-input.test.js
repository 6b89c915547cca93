'use strict';
// Bad input from the wire (garbage NOTIFYs and forged attachment rows on our channel) and from the user
// (options, table names, namespace names). Whatever arrives, the adapter reports it through errorHandler
// with a code, skips it, keeps delivering the next good message, and the process does not crash.

const { Client } = require('pg');
const { encode } = require('@msgpack/msgpack');
const { Cluster, waitFor, waitForEvents, waitForClusterReady, eventsOf } = require('./helpers/cluster');
const { createAdapter } = require('../lib');
const { weight } = require('./helpers/reports');

const PREFIX = 'bad_input';
jest.setTimeout(60000);

let raw; // a plain pg client: the "other software" that writes garbage
beforeAll(async () => {
  raw = new Client({ connectionString: process.env.DATABASE_URL });
  await raw.connect();
});
afterAll(async () => {
  if (raw) await raw.end();
});

// A cluster of `size` servers whose errors are collected per server.
async function startCluster(size, adapterOpts = {}, perServer = () => ({})) {
  const cluster = new Cluster({ channelPrefix: PREFIX, size: 0, adapterOpts });
  const errors = [];
  for (let i = 0; i < size; i++) {
    const errs = [];
    errors.push(errs);
    await cluster.addServer({ errorHandler: (err) => errs.push(err), ...perServer(i, errs) });
  }
  await cluster.waitReady();
  return { cluster, errors, channel: `${cluster.adapterOpts.channelPrefix}#/` };
}

const describeErrors = (errs) => errs.map((e) => `${e.code}: ${e.message}`).join('\n  ') || '(none)';

let seq = 0;
// Emits a good message from server `from` and waits until `client` received it; returns how often it came.
async function goodMessageArrives(cluster, from, client) {
  const id = `good-${++seq}`;
  cluster.servers[from].io.emit('good', id);
  await waitFor(
    () => eventsOf(client, 'good').some(([x]) => x === id),
    10000,
    `the good message ${id} from server ${from} to reach client ${client.label}`,
  );
  await cluster.barrier();
  return eventsOf(client, 'good').filter(([x]) => x === id).length;
}

describe('bad notifications on our channel', () => {
  let ctx;
  beforeAll(async () => {
    ctx = await startCluster(2);
  });
  afterAll(async () => {
    if (ctx) await ctx.cluster.close();
  });

  const notify = (payload) => raw.query('SELECT pg_notify($1, $2)', [ctx.channel, payload]);

  // Inserts a forged attachment row and returns its id (as a string, like pg returns bigserial).
  async function forgeRow(bytes) {
    const { rows } = await raw.query('INSERT INTO socket_io_attachments (payload) VALUES ($1) RETURNING id', [bytes]);
    return rows[0].id;
  }

  // Sends something bad, then a good broadcast from A (to B's client) and from B (to A's client): both servers
  // must report `code`, nothing forged reaches a client, and the good messages arrive exactly once.
  async function expectSkipped(code, sendBad) {
    const { cluster, errors } = ctx;
    const [onA, onB] = await cluster.connectOnEach();
    for (const errs of errors) errs.length = 0;

    await sendBad();

    expect(await goodMessageArrives(cluster, 0, onB)).toBe(1);
    expect(await goodMessageArrives(cluster, 1, onA)).toBe(1);
    for (const [i, errs] of errors.entries()) {
      await waitFor(
        () => errs.some((e) => e.code === code),
        5000,
        () => `server ${i} to report ${code}; it reported:\n  ${describeErrors(errs)}`,
      );
      for (const e of errs) {
        expect(e).toBeInstanceOf(Error);
        expect(typeof e.message).toBe('string');
      }
    }
    // Nothing but the good messages and barriers reached the clients.
    for (const client of [onA, onB]) {
      expect(client.received.map((e) => e[0]).filter((ev) => ev !== 'good' && ev !== '__barrier__')).toEqual([]);
    }
    return errors;
  }

  const broadcast = (extra) => ({
    uid: 'emitter',
    nsp: '/',
    type: 3,
    data: { packet: { type: 2, data: ['forged', 'x'], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } },
    ...extra,
  });

  test('a notification that is not JSON → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify('this is {not json'));
  });

  test('an empty notification → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify(''));
  });

  test('a JSON array → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify(JSON.stringify([1, 2, { type: 3 }])));
  });

  test('JSON scalars (a number, a string, null) → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', async () => {
      await notify('42');
      await notify('"hello"');
      await notify('null');
    });
  });

  test('type as a string → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify(JSON.stringify(broadcast({ type: '3' }))));
  });

  test('uid as a number → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify(JSON.stringify(broadcast({ uid: 12345 }))));
  });

  test('no type at all → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify(JSON.stringify({ uid: 'emitter', nsp: '/' })));
  });

  test('JSON nested deeper than any sane message → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify(`{"uid":"emitter","type":3,"data":${'['.repeat(7000)}`));
  });

  test('a BROADCAST without data → MESSAGE_FAILED (only JS can see that shape error)', async () => {
    await expectSkipped('MESSAGE_FAILED', () => notify(JSON.stringify({ uid: 'emitter', nsp: '/', type: 3 })));
  });

  test('a BROADCAST whose opts.rooms is a number → MESSAGE_FAILED', async () => {
    const bad = broadcast();
    bad.data.opts.rooms = 5;
    await expectSkipped('MESSAGE_FAILED', () => notify(JSON.stringify(bad)));
  });

  test('a message naming an unknown namespace → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () => notify(JSON.stringify(broadcast({ nsp: '/no-such-namespace' }))));
  });

  test('attachmentId "abc" → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', () =>
      notify(JSON.stringify({ uid: 'emitter', nsp: '/', type: 3, attachmentId: 'abc' })));
  });

  test('attachmentId of the wrong type (an object, a negative number) → BAD_NOTIFICATION', async () => {
    await expectSkipped('BAD_NOTIFICATION', async () => {
      await notify(JSON.stringify({ uid: 'emitter', type: 3, attachmentId: { id: 1 } }));
      await notify(JSON.stringify({ uid: 'emitter', type: 3, attachmentId: -7 }));
    });
  });

  test('attachmentId of a row that does not exist → ATTACHMENT_MISSING', async () => {
    await expectSkipped('ATTACHMENT_MISSING', () =>
      notify(JSON.stringify({ uid: 'emitter', nsp: '/', type: 3, attachmentId: '999999999999' })));
  });

  test('attachmentId of a row deleted before it is fetched → ATTACHMENT_MISSING', async () => {
    await expectSkipped('ATTACHMENT_MISSING', async () => {
      // Insert, notify and delete in one transaction: the row is gone when the notification is delivered.
      await raw.query('BEGIN');
      try {
        const id = await forgeRow(Buffer.from(encode(broadcast())));
        await notify(JSON.stringify({ uid: 'emitter', type: 3, attachmentId: id }));
        await raw.query('DELETE FROM socket_io_attachments WHERE id = $1', [id]);
        await raw.query('COMMIT');
      } catch (err) {
        await raw.query('ROLLBACK');
        throw err;
      }
    });
  });

  const forged = (bytes) => async () => {
    const id = await forgeRow(bytes);
    await notify(JSON.stringify({ uid: 'emitter', type: 3, attachmentId: id }));
  };

  test('a forged attachment row holding corrupt msgpack → BAD_ATTACHMENT', async () => {
    // 0xc1 is "never used" in the msgpack spec.
    await expectSkipped('BAD_ATTACHMENT', forged(Buffer.from([0x82, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xc1, 0xc1])));
  });

  test('a forged attachment row holding truncated msgpack → BAD_ATTACHMENT', async () => {
    const full = Buffer.from(encode(broadcast()));
    await expectSkipped('BAD_ATTACHMENT', forged(full.subarray(0, full.length - 5)));
  });

  test('a forged attachment row with trailing bytes after the message → BAD_ATTACHMENT', async () => {
    await expectSkipped('BAD_ATTACHMENT', forged(Buffer.concat([Buffer.from(encode(broadcast())), Buffer.from([0x01])])));
  });

  test('an empty attachment row and a NULL payload → BAD_ATTACHMENT / ATTACHMENT_MISSING, no crash', async () => {
    const errors = await expectSkipped('BAD_ATTACHMENT', forged(Buffer.alloc(0)));
    for (const errs of errors) errs.length = 0;
    await expectSkipped('ATTACHMENT_MISSING', forged(null));
  });

  test('msgpack nested 100000 deep → BAD_ATTACHMENT, not a stack overflow', async () => {
    const deep = Buffer.alloc(100001, 0x91); // fixarray of 1, 100000 times
    deep[deep.length - 1] = 0xc0; // nil
    await expectSkipped('BAD_ATTACHMENT', forged(deep));
  });

  test('msgpack maps nested 100000 deep → BAD_ATTACHMENT', async () => {
    // {"a": {"a": ... nil}}
    const parts = [];
    for (let i = 0; i < 100000; i++) parts.push(0x81, 0xa1, 0x61);
    parts.push(0xc0);
    await expectSkipped('BAD_ATTACHMENT', forged(Buffer.from(parts)));
  });

  test('a msgpack map with non-string keys (nil, array, binary) → BAD_ATTACHMENT', async () => {
    await expectSkipped('BAD_ATTACHMENT', async () => {
      await forged(Buffer.from([0x82, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x03, 0xc0, 0x01]))(); // {type: 3, nil: 1}
      await forged(Buffer.from([0x82, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x03, 0x90, 0x01]))(); // {type: 3, []: 1}
      await forged(Buffer.from([0x82, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x03, 0xc4, 0x01, 0x61, 0x01]))(); // bin key
    });
  });

  test('a msgpack map with only integer keys (no "type") → BAD_ATTACHMENT', async () => {
    await expectSkipped('BAD_ATTACHMENT', forged(Buffer.from([0x82, 0x01, 0xa1, 0x61, 0x02, 0xa1, 0x62])));
  });

  test('msgpack that is not a map (an array, a string) → BAD_ATTACHMENT', async () => {
    await expectSkipped('BAD_ATTACHMENT', async () => {
      await forged(Buffer.from(encode([3, 'x'])))();
      await forged(Buffer.from(encode('hello')))();
    });
  });

  test('a forged attachment with "type" as a string → BAD_ATTACHMENT', async () => {
    await expectSkipped('BAD_ATTACHMENT', forged(Buffer.from(encode(broadcast({ type: '3' })))));
  });

  test('a forged attachment holding a BROADCAST without data → MESSAGE_FAILED', async () => {
    await expectSkipped('MESSAGE_FAILED', forged(Buffer.from(encode({ uid: 'emitter', nsp: '/', type: 3 }))));
  });

  test('a burst of every kind of garbage at once: every good message after it still arrives once', async () => {
    const { cluster, errors } = ctx;
    const [onA, onB] = await cluster.connectOnEach();
    for (const errs of errors) errs.length = 0;
    const deep = Buffer.alloc(100001, 0x91);
    deep[deep.length - 1] = 0xc0;
    for (let i = 0; i < 20; i++) {
      await notify(`garbage ${i}`);
      await notify(JSON.stringify({ uid: 'emitter', type: 3, attachmentId: 'abc' }));
      await forged(deep)();
      await forged(Buffer.from([0xc1]))();
    }
    for (let i = 0; i < 5; i++) {
      expect(await goodMessageArrives(cluster, 0, onB)).toBe(1);
      expect(await goodMessageArrives(cluster, 1, onA)).toBe(1);
    }
    for (const errs of errors) {
      // Rate-limited: a summary stands for the reports it suppressed.
      const reported = () => errs.reduce((n, e) => n + weight(e), 0);
      await waitFor(() => reported() >= 80, 10000, () => `80 reports (got ${reported()})`);
      expect(new Set(errs.map((e) => e.code))).toEqual(new Set(['BAD_NOTIFICATION', 'BAD_ATTACHMENT']));
    }
  });
});

describe('an errorHandler that throws', () => {
  test('does not break delivery nor crash the process', async () => {
    let thrown = 0;
    const ctx = await startCluster(2, {}, () => ({
      errorHandler: (err) => {
        thrown += weight(err); // rate-limited: a summary stands for the reports it suppressed
        throw new Error('errorHandler exploded');
      },
    }));
    try {
      const { cluster, channel } = ctx;
      const [onA, onB] = await cluster.connectOnEach();
      for (let i = 0; i < 5; i++) {
        await raw.query('SELECT pg_notify($1, $2)', [channel, 'not json at all']);
        await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ uid: 'emitter', type: 3, attachmentId: '999999999998' })]);
        expect(await goodMessageArrives(cluster, 0, onB)).toBe(1);
        expect(await goodMessageArrives(cluster, 1, onA)).toBe(1);
      }
      await waitFor(() => thrown >= 20, 5000, () => `the throwing errorHandler to be called 20 times (got ${thrown})`);
      // Binary (attachment) messages still go through too.
      cluster.servers[0].io.emit('bin', Buffer.from([1, 2, 3]));
      const [[bin]] = await waitForEvents(onB, 'bin');
      expect([...bin]).toEqual([1, 2, 3]);
    } finally {
      await ctx.cluster.close();
    }
  });
});

describe('options validation', () => {
  const url = 'postgres://postgres@127.0.0.1:1/postgres';
  const wrong = [
    ['uid', 42], ['uid', ''],
    ['channelPrefix', 7], ['channelPrefix', ''], ['channelPrefix', 'a\0b'],
    ['tableName', {}], ['tableName', ''],
    ['logTableName', 5], ['logTableName', ''], ['sessionTableName', null], ['sessionTableName', ''],
    ['payloadThreshold', '8000'], ['payloadThreshold', -1], ['payloadThreshold', 1.5], ['payloadThreshold', NaN],
    ['cleanupInterval', '30000'], ['cleanupInterval', -5],
    ['heartbeatInterval', '5000'], ['heartbeatInterval', 0],
    ['heartbeatTimeout', null], ['heartbeatTimeout', Infinity],
    ['requestsTimeout', 'soon'],
    ['errorHandler', 'console.error'], ['errorHandler', {}],
    ['createTable', 'yes'], ['createTable', 1],
    ['maxPublishQueue', 0], ['maxPublishQueue', '10'],
    ['closeTimeout', '1'], ['closeTimeout', -1],
    ['reconnectInitialDelay', 'fast'], ['reconnectInitialDelay', 0],
    ['reconnectMaxDelay', '10s'], ['reconnectMaxDelay', []],
    ['connectTimeout', NaN], ['connectTimeout', true],
    ['healthCheckInterval', true], ['healthCheckInterval', -1],
    ['readyTimeout', '5s'], ['readyTimeout', -1], ['discoveryWindow', 0.5], ['discoveryWindow', null],
    ['responseTimeout', '1s'], ['responseTimeout', -1],
    ['statementTimeout', '1000'], ['statementTimeout', -1],
    ['quietIdle', 'yes'], ['quietIdle', 1],
    ['maxRecoveredPackets', '100'], ['maxRecoveredPackets', -1], ['maxRecoveredPackets', 2 ** 32],
  ];
  test.each(wrong)('%s = %p → TypeError naming the option', (name, value) => {
    const attempt = () => createAdapter(url, { [name]: value });
    expect(attempt).toThrow(TypeError);
    expect(attempt).toThrow(new RegExp(`"${name}"`));
  });

  test('every documented option is validated', () => {
    const documented = require('fs')
      .readFileSync(require.resolve('../lib/index.d.ts'), 'utf8')
      .split('export interface PostgresAdapterOptions')[1]
      .split('}\n')[0]
      .match(/^\s+(\w+)\?:/gm)
      .map((m) => m.trim().replace('?:', ''));
    expect(documented.length).toBeGreaterThan(10);
    expect(documented.filter((name) => !wrong.some(([n]) => n === name))).toEqual([]);
  });

  test('reconnectMaxDelay below reconnectInitialDelay → TypeError', () => {
    expect(() => createAdapter(url, { reconnectInitialDelay: 500, reconnectMaxDelay: 100 })).toThrow(/reconnectMaxDelay/);
  });

  test('a channelPrefix whose channel exceeds 63 bytes → TypeError naming it', () => {
    expect(() => createAdapter(url, { channelPrefix: 'p'.repeat(62) })).toThrow(TypeError);
    expect(() => createAdapter(url, { channelPrefix: 'é'.repeat(31) })).toThrow(/channelPrefix/);
  });

  test('a uid over 256 characters (peers would refuse its messages) → TypeError naming it', () => {
    expect(() => createAdapter(url, { uid: 'u'.repeat(257) })).toThrow(/uid/);
    expect(() => createAdapter(url, { uid: 'u'.repeat(257) })).toThrow(TypeError);
  });

  test('options that are not an object → TypeError', () => {
    expect(() => createAdapter(url, 'opts')).toThrow(TypeError);
    expect(() => createAdapter(url, [1])).toThrow(TypeError);
  });

  test('a bad connection source → TypeError naming what is wrong', () => {
    expect(() => createAdapter(null)).toThrow(TypeError);
    expect(() => createAdapter(42)).toThrow(TypeError);
    expect(() => createAdapter({ port: 'abc' })).toThrow(/port/);
    expect(() => createAdapter({ host: 5 })).toThrow(/host/);
    expect(() => createAdapter({ password: 5 })).toThrow(/password/);
    expect(() => createAdapter({ ssl: 'yes' })).toThrow(/ssl/);
  });
});

describe('table names with quotes, spaces, dots and unicode', () => {
  const TABLE_SQL = `CREATE TABLE IF NOT EXISTS "my schema"."we""ird tablé" (
    id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`;

  test('a schema-qualified weird table name works for binary broadcasts', async () => {
    await raw.query('CREATE SCHEMA IF NOT EXISTS "my schema"');
    await raw.query(TABLE_SQL);
    const before = (await raw.query('SELECT count(*)::int AS n FROM "my schema"."we""ird tablé"')).rows[0].n;
    const ctx = await startCluster(2, { tableName: '"my schema"."we""ird tablé"' }); // as SQL reads it
    try {
      const { cluster, errors } = ctx;
      const [onA, onB] = await cluster.connectOnEach();
      cluster.servers[0].io.emit('bin', Buffer.from('from A'), 'é');
      cluster.servers[1].io.emit('bin', Buffer.from('from B'), 'é');
      // io.emit() reaches the local client too: each client gets both, one of them through the table.
      for (const client of [onA, onB]) {
        const got = (await waitForEvents(client, 'bin', 2)).map(([b, s]) => `${Buffer.from(b).toString()}/${s}`);
        expect(got.sort()).toEqual(['from A/é', 'from B/é']);
      }
      const after = (await raw.query('SELECT count(*)::int AS n FROM "my schema"."we""ird tablé"')).rows[0].n;
      expect(after).toBeGreaterThanOrEqual(before + 2);
      expect(errors.flat().map((e) => `${e.code}: ${e.message}`)).toEqual([]);
    } finally {
      await ctx.cluster.close();
    }
  });

  test('createTable: true creates a weird schema-qualified table and uses it', async () => {
    await raw.query('CREATE SCHEMA IF NOT EXISTS "my schema"');
    await raw.query(`DROP TABLE IF EXISTS "my schema"."créé ""par"" l'adapter; x"`);
    const ctx = await startCluster(2, { tableName: `"my schema"."créé ""par"" l'adapter; x"`, createTable: true });
    try {
      const { cluster, errors } = ctx;
      const [, onB] = await cluster.connectOnEach();
      cluster.servers[0].io.emit('bin', Buffer.from([9, 8, 7]));
      const [[bin]] = await waitForEvents(onB, 'bin');
      expect([...bin]).toEqual([9, 8, 7]);
      const { rows } = await raw.query(`SELECT count(*)::int AS n FROM "my schema"."créé ""par"" l'adapter; x"`);
      expect(rows[0].n).toBeGreaterThanOrEqual(1);
      expect(errors.flat().map((e) => `${e.code}: ${e.message}`)).toEqual([]);
    } finally {
      await ctx.cluster.close();
      await raw.query(`DROP TABLE IF EXISTS "my schema"."créé ""par"" l'adapter; x"`);
    }
  });
});

describe('namespace names and the 63-byte channel limit', () => {
  let ctx;
  beforeAll(async () => {
    ctx = await startCluster(2);
  });
  afterAll(async () => {
    if (ctx) await ctx.cluster.close();
  });

  // A namespace can be created by a client (dynamic namespaces): io.of() must not throw. The namespace is
  // refused (its clients get a connect_error) and reported.
  test('io.of(name) reports a clear BAD_NAMESPACE error when the channel would exceed 63 bytes', async () => {
    const io = ctx.cluster.servers[0].io;
    const errs = ctx.errors[0];
    const before = errs.length;
    expect(() => io.of(`/${'n'.repeat(80)}`)).not.toThrow();
    // Bytes, not characters: 2-byte characters overflow sooner.
    const room = 63 - Buffer.byteLength(`${ctx.cluster.adapterOpts.channelPrefix}#/`);
    const accented = `/${'é'.repeat(Math.ceil(room / 2) + 1)}`;
    expect(() => io.of(accented)).not.toThrow();
    const reported = errs.slice(before);
    expect(reported.map((e) => e.code)).toEqual(['BAD_NAMESPACE', 'BAD_NAMESPACE']);
    for (const e of reported) expect(e.message).toMatch(/63 bytes/);
    await expect(ctx.cluster.connect(0, { nsp: accented })).rejects.toThrow('Invalid namespace');
  });

  test('a namespace whose channel is exactly 63 bytes works, and the server still works after a refused one', async () => {
    const { cluster } = ctx;
    const room = 63 - Buffer.byteLength(`${cluster.adapterOpts.channelPrefix}#/`);
    const name = `/${'x'.repeat(room)}`;
    expect(Buffer.byteLength(`${cluster.adapterOpts.channelPrefix}#${name}`)).toBe(63);
    const before = ctx.errors[0].length;
    cluster.servers[0].io.of(`${name}y`);
    expect(ctx.errors[0].slice(before).map((e) => e.code)).toEqual(['BAD_NAMESPACE']);
    expect(ctx.errors[0][before].message).toMatch(/63 bytes/);
    for (const s of cluster.servers) s.io.of(name);
    await waitForClusterReady(cluster.servers, { namespaces: [name] });
    const onB = await cluster.connect(1, { nsp: name });
    cluster.servers[0].io.of(name).emit('edge', 'ok');
    expect(await waitForEvents(onB, 'edge')).toEqual([['ok']]);
    const onB2 = await cluster.connect(1);
    expect(await goodMessageArrives(cluster, 0, onB2)).toBe(1);
  });
});
