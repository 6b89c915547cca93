'use strict';
// What a broadcast puts in its notification is what the pure-JS adapter puts there: JSON.stringify of the
// cluster message (lib/plain-json.js hands that text to the core for plain data; anything else takes the native
// encoder). Checked byte for byte on the wire, and by what remote clients receive next to local ones.

const { useCluster, useAttachmentTable, listenRaw, waitFor, waitForEvents } = require('./helpers/cluster');

const TABLE = 'socket_io_attachments_publish_json';
const THRESHOLD = 5000; // under the default (8000): the JSON path must honour the option

const attachments = useAttachmentTable(TABLE);

const ctx = useCluster({ channelPrefix: 'pjson', size: 2, adapterOpts: { tableName: TABLE, payloadThreshold: THRESHOLD } });

const attachmentRows = () => attachments.rows();

// The first notification on the main namespace's channel that contains `marker`, as text, sent while `fn` runs.
async function notificationDuring(fn, marker) {
  const got = [];
  const raw = await listenRaw(`${ctx.cluster.adapterOpts.channelPrefix}#/`, got);
  try {
    await fn();
    await waitFor(() => got.some((p) => p.includes(marker)), 10000, `a notification containing ${marker}`);
    return got.find((p) => p.includes(marker));
  } finally {
    await raw.end();
  }
}

describe('the JSON of a published message', () => {
  test('is JSON.stringify of the cluster message, byte for byte, for awkward plain values', async () => {
    const { cluster } = ctx;
    const args = [
      'quote " backslash \\ controls \u0000\u0007\b\f\n\r\t\u001f line sep \u2028 para sep \u2029',
      'lone \ud800 surrogates \udfff and a pair 😀',
      [-0, 0.1, 1e21, 1e-7, 2 ** 53, -(2 ** 53) - 2, NaN, Infinity, -Infinity],
      { u: undefined, f() {}, s: Symbol('s'), list: [undefined, () => 1, Symbol('t')], n: null, t: true },
      { 2: 'b', 1: 'a', z: 'z', 10: 'c' },
      { when: new Date('2024-02-29T12:34:56.789Z'), never: new Date(NaN) },
      [[[[['deep']]]]],
    ];
    const payload = await notificationDuring(async () => cluster.servers[0].io.emit('awkward', ...args), '"awkward"');
    // The envelope as sent (its key order included), with the arguments as the application passed them.
    const sent = JSON.parse(payload);
    expect(sent.data.packet.data[0]).toBe('awkward');
    sent.data.packet.data = ['awkward', ...args];
    expect(payload).toBe(JSON.stringify(sent));
  });

  test('a boxed string, number or boolean reaches remote clients as the local client gets it', async () => {
    const { cluster } = ctx;
    const local = await cluster.connect(0);
    const remote = await cluster.connect(1);
    // The second one is long enough for the native encoder to write it if it were all plain strings.
    const long = 'x'.repeat(900);
    cluster.servers[0].io.emit('boxed', new String('ab'), { n: new Number(1.5), b: new Boolean(false) });
    cluster.servers[0].io.emit('boxed', new String(long), 'y'.repeat(2500));

    const fromLocal = await waitForEvents(local, 'boxed', 2);
    expect(fromLocal).toEqual([['ab', { n: 1.5, b: false }], [long, 'y'.repeat(2500)]]);
    expect(await waitForEvents(remote, 'boxed', 2)).toEqual(fromLocal);
  });

  test('a boxed primitive with own fields (a Number subclass, an own valueOf) in a large message: remote clients get it as the local one', async () => {
    const { cluster } = ctx;
    const local = await cluster.connect(0);
    const remote = await cluster.connect(1);
    class Money extends Number {
      constructor(v) {
        super(v);
        this.currency = 'EUR';
      }
    }
    const tuned = new Number(3);
    tuned.valueOf = () => 7; // JSON.stringify writes ToNumber of it: 7
    const tagged = Object.assign(new String(''), { tag: 't' });
    // Over the notification limit: the native encoder writes it.
    cluster.servers[0].io.emit('owned', new Money(5), tuned, tagged, Object.assign(new Boolean(true), { b: 1 }), 'y'.repeat(9000));

    const fromLocal = await waitForEvents(local, 'owned', 1);
    expect(fromLocal).toEqual([[5, 7, '', true, 'y'.repeat(9000)]]);
    expect(await waitForEvents(remote, 'owned', 1)).toEqual(fromLocal);
  });

  test('a boxed string, number or boolean beside binary reaches remote clients as the local client gets it', async () => {
    const { cluster } = ctx;
    const local = await cluster.connect(0);
    const remote = await cluster.connect(1);
    // Socket.IO writes the objects of a binary packet field by field: a boxed primitive as its own fields.
    cluster.servers[0].io.emit('boxed-bin', Buffer.from([1, 2]), new String('ab'), { n: new Number(1.5), b: new Boolean(false) });

    const fromLocal = await waitForEvents(local, 'boxed-bin', 1);
    expect(fromLocal[0].slice(1)).toEqual([{ 0: 'a', 1: 'b' }, { n: {}, b: {} }]);
    expect(await waitForEvents(remote, 'boxed-bin', 1)).toEqual(fromLocal);
  });

  test('typed arrays, a DataView and an ArrayBuffer reach remote clients as binary, as they reach local ones', async () => {
    const { cluster } = ctx;
    const local = await cluster.connect(0);
    const remote = await cluster.connect(1);
    const lengths = (args) => args.map((a) => (ArrayBuffer.isView(a) || a instanceof ArrayBuffer ? a.byteLength : `not binary: ${JSON.stringify(a)}`));

    cluster.servers[0].io.emit('typed', new Float32Array([1.5]), new DataView(new ArrayBuffer(2)), new ArrayBuffer(3));

    const [fromLocal] = await waitForEvents(local, 'typed');
    expect(lengths(fromLocal)).toEqual([4, 2, 3]);
    const [fromRemote] = await waitForEvents(remote, 'typed');
    expect(lengths(fromRemote)).toEqual([4, 2, 3]);
  });

  test('the adapter option payloadThreshold decides which messages go through the attachments table', async () => {
    const { cluster } = ctx;
    const remote = await cluster.connect(1);
    const rowsBefore = await attachmentRows();

    cluster.servers[0].io.emit('size', 'x'.repeat(50));
    cluster.servers[0].io.emit('size', 'y'.repeat(THRESHOLD));

    const got = await waitForEvents(remote, 'size', 2, 10000);
    expect(got).toEqual([['x'.repeat(50)], ['y'.repeat(THRESHOLD)]]);
    expect((await attachmentRows()) - rowsBefore).toBe(1);
  });
});

// In a child process, whose memory is its own: messages queued while PostgreSQL is unreachable each hold their
// JSON, not the room for 3 bytes a character it was read into (50,000 queued 1,900-character messages).
test('a queued JSON message holds its own bytes while PostgreSQL is unreachable', async () => {
  const script = `
    const net = require('net');
    const { Emitter } = require(${JSON.stringify(require.resolve('../lib'))});
    (async () => {
      const dead = net.createServer();
      await new Promise((r) => dead.listen(0, '127.0.0.1', r));
      const port = dead.address().port;
      await new Promise((r) => dead.close(r));
      let down;
      const lost = new Promise((r) => (down = r));
      const emitter = new Emitter({ host: '127.0.0.1', port, user: 'nobody', database: 'nothing' }, '/', {
        maxPublishQueue: 50000, reconnectInitialDelay: 60000, reconnectMaxDelay: 60000, closeTimeout: 0,
        errorHandler: (e) => { if (e.code === 'CONNECTION_LOST') down(); },
      });
      await lost;
      const N = 50000, text = 'x'.repeat(1900);
      global.gc();
      const base = process.memoryUsage().rss;
      for (let i = 0; i < N; i++) emitter.emit('m', i, text);
      global.gc();
      const held = process.memoryUsage().rss - base;
      const json = JSON.stringify({ uid: 'emitter', type: 3, data: { packet: { type: 2, data: ['m', N, text], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } }, nsp: '/' }).length;
      console.log(JSON.stringify({ held, json, n: N, depth: emitter.stats().queue.depth }));
      await emitter.close();
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const { stdout, stderr } = await new Promise((resolve) => {
    require('child_process').execFile(process.execPath, ['--expose-gc', '-e', script], { env: process.env, timeout: 120000 },
      (err, out, errOut) => resolve({ stdout: out, stderr: err ? `${err.code ?? err.signal} ${errOut}` : errOut }));
  });
  expect(stderr).toBe('');
  const { held, json, n, depth } = JSON.parse(stdout);
  expect(depth).toBe(n);
  // Each queued message: its JSON and a little bookkeeping; an AddressSanitizer run adds its quarantine.
  const allowance = /libasan/.test(process.env.LD_PRELOAD ?? '') ? 256 * 2 ** 20 : 0;
  expect(held).toBeLessThan(1.6 * n * json + allowance);
});
