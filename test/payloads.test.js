'use strict';
// Payload shapes and sizes across servers: binary, large, near the 8000-byte NOTIFY threshold, multi-byte UTF-8,
// Dates, and binary mixed with JSON. Messages whose JSON is longer than `payloadThreshold` (8000 bytes) or that
// contain binary travel through the attachments table (msgpack), the others inline in the NOTIFY payload.

const { types } = require('util');
const { useCluster, useAttachmentTable, waitForEvents, waitFor } = require('./helpers/cluster');

const TABLE = 'socket_io_attachments_payloads';
const THRESHOLD = 8000;

const attachments = useAttachmentTable(TABLE);

const ctx = useCluster({ channelPrefix: 'payloads', adapterOpts: { tableName: TABLE } });

const attachmentRows = () => attachments.rows();

// Bytes of a received binary value (Buffer, other Uint8Array view or ArrayBuffer).
function bytesOf(value) {
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new Error(`not binary: ${Object.prototype.toString.call(value)}`);
}

// Byte length of the cluster message the adapter publishes for io.emit(ev, ...args) on the main namespace
// (same layout as @socket.io/postgres-adapter: {type, data: {packet, opts}, uid, nsp}, uid = 16 hex chars).
function broadcastMessageBytes(ev, ...args) {
  const message = {
    type: 3,
    data: { packet: { type: 2, data: [ev, ...args] }, opts: { rooms: [], except: [], flags: {} } },
    uid: '0123456789abcdef',
    nsp: '/',
  };
  return Buffer.byteLength(JSON.stringify(message));
}

// A string of ASCII `x` such that the broadcast message of io.emit(ev, string) is exactly `totalBytes` long.
function asciiForMessageBytes(ev, totalBytes) {
  const overhead = broadcastMessageBytes(ev, '');
  return 'x'.repeat(totalBytes - overhead);
}

// io.emit(ev, ...args) from server A; resolves to what the clients on A, B and C received, and how many
// attachment rows the broadcast created.
async function broadcastAndCollect(ev, ...args) {
  const { cluster } = ctx;
  const clients = await cluster.connectOnEach();
  const rowsBefore = await attachmentRows();
  cluster.servers[0].io.emit(ev, ...args);
  const received = [];
  for (const client of clients) received.push((await waitForEvents(client, ev, 1, 10000))[0]);
  return { received, newRows: (await attachmentRows()) - rowsBefore };
}

describe('payloads across servers', () => {
  test('a Buffer arrives as binary with the same bytes on every server', async () => {
    const payload = Buffer.from([0, 1, 2, 253, 254, 255, 0x7b, 0x22]);

    const { received } = await broadcastAndCollect('bin', payload, 'text-after');

    for (const [bin, text] of received) {
      expect(bytesOf(bin).equals(payload)).toBe(true);
      expect(text).toBe('text-after');
    }
  });

  test('a 100 KB string arrives intact on every server', async () => {
    const big = Array.from({ length: 100 * 1024 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');

    const { received, newRows } = await broadcastAndCollect('big', big);

    for (const [text] of received) expect(text).toBe(big);
    expect(newRows).toBe(1);
  });

  test('a large attachment row is stored lz4-compressed (PostgreSQL spends far less CPU than with pglz)', async () => {
    // What the database default would be: the adapter's own session asks for lz4, nobody else's changes.
    expect((await attachments.db.query('SHOW default_toast_compression')).rows[0].default_toast_compression).toBe('pglz');
    const big = 'compressible text '.repeat(3000);

    const { received, newRows } = await broadcastAndCollect('lz4', big);

    for (const [text] of received) expect(text).toBe(big);
    expect(newRows).toBe(1);
    const { rows } = await attachments.db.query(`SELECT pg_catalog.pg_column_compression(payload) AS method FROM ${TABLE} ORDER BY id DESC LIMIT 1`);
    expect(rows[0].method).toBe('lz4');
  });

  test.each([
    ['just under', THRESHOLD - 10, 0],
    ['just over', THRESHOLD + 10, 1],
  ])('a message %s the threshold (%i bytes of JSON) arrives intact', async (_, bytes, expectedRows) => {
    const text = asciiForMessageBytes('edge', bytes);
    expect(broadcastMessageBytes('edge', text)).toBe(bytes);

    const { received, newRows } = await broadcastAndCollect('edge', text);

    for (const [got] of received) expect(got).toBe(text);
    expect(newRows).toBe(expectedRows);
  });

  test.each([
    // [name, unit, repeat]: fewer characters than the threshold, more bytes than it
    ['emoji (4 bytes, 2 UTF-16 units)', '😀', 2100],
    ['CJK (3 bytes, 1 UTF-16 unit)', '漢字', 1400],
    ['mixed accents/CJK/emoji', 'é漢😀a', 900],
  ])('%s over the threshold in bytes but not in characters arrives intact', async (_, unit, repeat) => {
    const text = unit.repeat(repeat);
    expect(text.length).toBeLessThan(THRESHOLD);
    expect(broadcastMessageBytes('utf8', text)).toBeGreaterThan(THRESHOLD);

    const { received, newRows } = await broadcastAndCollect('utf8', text);

    for (const [got] of received) expect(got).toBe(text);
    expect(newRows).toBe(1);
  });

  test('multi-byte UTF-8 under the threshold arrives intact', async () => {
    const text = '😀漢é'.repeat(500);
    expect(broadcastMessageBytes('utf8-small', text)).toBeLessThan(THRESHOLD);

    const { received, newRows } = await broadcastAndCollect('utf8-small', text, { key: '🔑' });

    for (const got of received) expect(got).toEqual([text, { key: '🔑' }]);
    expect(newRows).toBe(0);
  });

  test('Dates in nested objects reach the clients as ISO strings, inline and through the attachments table', async () => {
    const date = new Date('2024-02-29T12:34:56.789Z');
    const small = { when: date, nested: { list: [date, 1] } };
    const large = { when: date, nested: { list: [date, 1] }, padding: 'p'.repeat(THRESHOLD) };
    const iso = date.toISOString();

    const inline = await broadcastAndCollect('date-small', small);
    const attached = await broadcastAndCollect('date-large', large);

    for (const [got] of inline.received) expect(got).toEqual({ when: iso, nested: { list: [iso, 1] } });
    for (const [got] of attached.received) expect(got).toEqual({ when: iso, nested: { list: [iso, 1] }, padding: large.padding });
    expect(inline.newRows).toBe(0);
    expect(attached.newRows).toBe(1);
  });

  test('binary mixed with JSON, nested in arrays and objects, arrives intact', async () => {
    const a = Buffer.from('first');
    const b = Buffer.from([9, 8, 7]);
    const mixed = { list: [1, a, { deep: [b, 'x', null, true] }], label: 'ünïcødé', n: -1.5 };

    const { received } = await broadcastAndCollect('mixed', mixed, [b, 'tail']);

    for (const [obj, arr] of received) {
      expect(obj.label).toBe('ünïcødé');
      expect(obj.n).toBe(-1.5);
      expect(obj.list[0]).toBe(1);
      expect(bytesOf(obj.list[1]).equals(a)).toBe(true);
      expect(bytesOf(obj.list[2].deep[0]).equals(b)).toBe(true);
      expect(obj.list[2].deep.slice(1)).toEqual(['x', null, true]);
      expect(bytesOf(arr[0]).equals(b)).toBe(true);
      expect(arr[1]).toBe('tail');
    }
  });
});

describe('payloads seen by other servers (serverSideEmit)', () => {
  // Records the first arguments of `ev` received by server B.
  async function serverSideEmitToB(ev, ...args) {
    const { servers } = ctx.cluster;
    const got = [];
    servers[1].io.on(ev, (...received) => got.push(received));
    servers[0].io.serverSideEmit(ev, ...args);
    await waitFor(() => got.length, 10000, `server B to receive "${ev}"`);
    return got[0];
  }

  test('a Date arrives as an ISO string inline and as a Date through the attachments table', async () => {
    const date = new Date('2024-02-29T12:34:56.789Z');

    const [inline] = await serverSideEmitToB('sse-date-small', { when: date });
    const [attached] = await serverSideEmitToB('sse-date-large', { when: date, padding: 'p'.repeat(THRESHOLD) });

    expect(inline.when).toBe(date.toISOString());
    // util.types.isDate rather than toBeInstanceOf(Date): a value built outside Jest's sandbox realm (e.g. by a
    // native addon) is a real Date whose constructor is not the sandbox's Date.
    expect(types.isDate(attached.when)).toBe(true);
    expect(attached.when.getTime()).toBe(date.getTime());
  });

  test('a Buffer arrives as a Uint8Array with the same bytes', async () => {
    const payload = Buffer.from([1, 2, 3, 0, 255]);

    const [bin, text] = await serverSideEmitToB('sse-bin', payload, 'ok');

    expect(bin).toBeInstanceOf(Uint8Array);
    expect(bytesOf(bin).equals(payload)).toBe(true);
    expect(text).toBe('ok');
  });
});
