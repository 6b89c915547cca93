'use strict';
// Relayed broadcasts: a native server hands a received plain broadcast to its clients as the JSON that
// came in (or that the core wrote for an attachment), without parsing and stringifying it in JavaScript
// (README: "Receiving a broadcast"). What clients, outgoing listeners and recovery see must be what they
// see through the pure-JS adapter: these tests compare the two, frame by frame where they can.
const v8 = require('v8');
const vm = require('vm');
const { Pool } = require('pg');
const { io: ioClient } = require('socket.io-client');
const parser = require('socket.io-parser');
const { Emitter: PureEmitter } = require('@socket.io/postgres-emitter');
const { Cluster, waitFor, withTimeout } = require('./helpers/cluster');
const helpers = require('./helpers/recovery');

// A client that records the text of the event frames the server wrote (binary ones: their header) and the
// decoded events.
async function rawClient(server, { nsp = '/', transports = ['websocket'], rooms = [], parser: clientParser } = {}) {
  const client = ioClient(`http://127.0.0.1:${server.port}${nsp}`, {
    transports,
    forceNew: true,
    reconnection: false,
    auth: { rooms },
    ...(clientParser ? { parser: clientParser } : {}),
  });
  client.label = `${server.kind} #${server.index}${nsp}`;
  client.server = server;
  client.frames = [];
  client.got = [];
  client.io.engine.on('packet', (p) => {
    if (p.type === 'message' && typeof p.data === 'string' && /^[25]/.test(p.data)) client.frames.push(p.data); // events, binary events
    else if (p.type === 'message' && typeof p.data !== 'string') client.frames.push(`binary ${Buffer.from(p.data).toString('hex')}`);
  });
  client.onAny((...args) => client.got.push(args));
  await withTimeout(new Promise((resolve, reject) => (client.once('connect', resolve), client.once('connect_error', reject))), 5000, 'connect');
  return client;
}

// Where two lists of frames differ, briefly ('' when they do not): Jest would print them whole.
function framesDiffer(actual, expected) {
  if (actual.length !== expected.length) return `${actual.length} frames, expected ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] === expected[i]) continue;
    let at = 0;
    while (actual[i][at] === expected[i][at]) at++;
    const cut = (s) => JSON.stringify(s.slice(Math.max(0, at - 20), at + 40));
    return `frame ${i} differs at ${at}: ${cut(actual[i])}, expected ${cut(expected[i])}`;
  }
  return '';
}

const got = (client, ev) => client.got.filter((args) => args[0] === ev);
const waitEvent = (clients, ev, n = 1) =>
  waitFor(() => clients.every((c) => got(c, ev).length >= n), 5000, () => `"${ev}" on ${clients.filter((c) => got(c, ev).length < n).length} client(s)`);

// Payloads as applications send them: through Socket.IO, both adapters write the same frames.
const PAYLOADS = [
  ['small', 1, 'two'],
  ['text4k', 'abcd'.repeat(1024)],
  ['big', 'x'.repeat(20000)], // over 8000 bytes: an attachment row (msgpack)
  ['unicode', '\u2028\u2029', 'é☃😀', '\ud800', 'a\udc00z', '\u0000\n"\\/', '\u007f\u0080'],
  ['nested', { a: [1, { b: null }], 10: true, '': '', z: { y: [[], {}] } }, JSON.parse('{"__proto__":{"p":1},"q":2}')],
  ['numbers', 0, -1, 1e21, 1.5e-7, 0.1, 2 ** 53 + 2, -0, 1e300, -5e-324],
  ['plain', [], {}, null, true, false, ''],
  ['bigobj', { s: '\u2028é'.repeat(3000), n: [1.5, -2, 1e21], k: { 1: 'one', b: 'bee' } }],
];

describe('relayed broadcasts in a mixed cluster (A native, B pure-JS, C native)', () => {
  let cluster;
  let pool;
  const clients = [];
  const track = async (promise) => {
    const c = await promise;
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = new Cluster({ channelPrefix: 'relay', size: 3, adapters: ['native', 'pure', 'native'], namespaces: ['/custom'] });
    await cluster.start();
    pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await cluster.close();
    await pool.end();
  });

  test('a native server writes the frames a pure-JS server writes, for broadcasts from either kind', async () => {
    const [A, B, C] = cluster.servers;
    const [onA, onB, onC] = await Promise.all([A, B, C].map((s) => track(rawClient(s))));
    const [cA, cB, cC] = await Promise.all([A, B, C].map((s) => track(rawClient(s, { nsp: '/custom' }))));
    // The reference: for A's broadcasts, what the pure-JS server B writes as a receiver; for B's own, what
    // B writes to its clients as the sender (Socket.IO's encoding, which its receivers repeat).
    for (const [from, nsp, receivers, reference] of [
      [A, '/', [onC], onB],
      [B, '/', [onA, onC], onB],
      [A, '/custom', [cC], cB],
      [B, '/custom', [cA, cC], cB],
    ]) {
      const all = [...receivers, reference];
      const before = all.map((c) => c.frames.length);
      for (const [ev, ...args] of PAYLOADS) {
        from.io.of(nsp).emit(ev, ...args);
        await waitEvent(all, ev, got(reference, ev).length + 1);
      }
      const sent = reference.frames.slice(before[all.length - 1]);
      expect(sent).toHaveLength(PAYLOADS.length);
      receivers.forEach((c, i) => expect(`${from.kind} to ${c.label}: ${framesDiffer(c.frames.slice(before[i]), sent)}`).toBe(`${from.kind} to ${c.label}: `));
    }
  });

  test('rooms, except, volatile and compress keep working', async () => {
    const [A, B, C] = cluster.servers;
    const inRoom = await Promise.all([B, C].map((s) => track(rawClient(s, { rooms: ['r1'] }))));
    const muted = await Promise.all([B, C].map((s) => track(rawClient(s, { rooms: ['r1', 'muted'] }))));
    const outside = await Promise.all([B, C].map((s) => track(rawClient(s))));
    const text = 't'.repeat(3000);
    A.io.to('r1').except('muted').emit('room', text);
    A.io.compress(false).emit('compress', text);
    A.io.to('r1').emit('room2', 1);
    await waitEvent([...inRoom, ...muted], 'room2');
    await waitEvent([...inRoom, ...muted, ...outside], 'compress');
    // Volatile: dropped for a client whose transport is busy writing, so sent once all are writable.
    const transports = [...inRoom, ...muted, ...outside].map((c) => c.server.io.of('/').sockets.get(c.id).conn.transport);
    await waitFor(() => transports.every((t) => t.writable), 5000, 'writable transports');
    A.io.volatile.emit('volatile', text);
    await waitEvent([...inRoom, ...muted, ...outside], 'volatile');
    for (const c of inRoom) expect(got(c, 'room')).toEqual([['room', text]]);
    for (const c of [...muted, ...outside]) expect(got(c, 'room')).toEqual([]);
    for (const c of outside) expect(got(c, 'room2')).toEqual([]);
    expect(framesDiffer(inRoom[1].frames, inRoom[0].frames)).toBe('');
    expect(framesDiffer(outside[1].frames, outside[0].frames)).toBe('');
  });

  test('a polling client gets the frames a websocket client gets', async () => {
    const [A, B, C] = cluster.servers;
    const polling = await Promise.all([B, C].map((s) => track(rawClient(s, { transports: ['polling'] }))));
    const ws = await track(rawClient(C));
    for (const [ev, ...args] of PAYLOADS.slice(0, 4)) {
      A.io.emit(ev, ...args);
      await waitEvent([...polling, ws], ev);
    }
    expect(polling[0].frames).toHaveLength(4);
    expect(framesDiffer(polling[1].frames, polling[0].frames)).toBe('');
    expect(framesDiffer(ws.frames, polling[0].frames)).toBe('');
  });

  test('outgoing listeners see the arguments, as on a pure-JS server', async () => {
    const [A, B, C] = cluster.servers;
    const receivers = await Promise.all([B, C].map((s) => track(rawClient(s))));
    // This test's sockets only (those of earlier tests may still be closing).
    const seen = [B, C].map((s, i) => {
      const list = [];
      s.io.of('/').sockets.get(receivers[i].id).onAnyOutgoing((...args) => list.push(args));
      return list;
    });
    // An attachment with a Date and -0 (msgpack keeps both): not relayed, the listeners see them too.
    const dated = ['dated', new Date(86400000), -0, 'd'.repeat(9000)];
    for (const [ev, ...args] of [...PAYLOADS, dated]) {
      A.io.emit(ev, ...args);
      await waitFor(() => seen.every((list) => list.some((a) => a[0] === ev)), 5000, `the outgoing ${ev}`);
    }
    expect(seen[1]).toEqual(seen[0]);
    const last = seen[1][seen[1].length - 1];
    expect(Object.prototype.toString.call(last[1])).toBe('[object Date]');
  });

  test('binary broadcasts: a native server writes the frames a pure-JS server writes, outgoing listeners see the same', async () => {
    const [A, B, C] = cluster.servers;
    const [onB, onC] = await Promise.all([B, C].map((s) => track(rawClient(s))));
    const seen = [B, C].map((s, i) => {
      const list = [];
      s.io.of('/').sockets.get([onB, onC][i].id).onAnyOutgoing((...args) => list.push(args));
      return list;
    });
    const sent = [
      ['bin1', Buffer.from([0, 1, 255]), 'x'.repeat(10)],
      ['bin2', { nested: Buffer.alloc(9000, 7) }],
      ['bin3', [Buffer.from('a'), { b: Buffer.from('b'), c: [Buffer.alloc(0), null] }], 'tail', 1.5],
      ['bin4', { 10: Buffer.from([10]), a: Buffer.from([1]), 2: [Buffer.from([2])] }],
      ['bin5', new Uint8Array([5, 6]), new Uint8Array([7]).buffer],
      // Data with a "_placeholder" key of its own: not relayed, the same frames all the same.
      ['bin6', { _placeholder: true, num: 0 }, Buffer.from([6])],
    ];
    for (const [ev, ...args] of sent) {
      A.io.emit(ev, ...args);
      await waitEvent([onB, onC], ev);
    }
    expect(framesDiffer(onC.frames, onB.frames)).toBe('');
    expect(onC.frames.filter((f) => f.startsWith('binary'))).toHaveLength(11);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[1].map((args) => args[0])).toEqual(sent.map((args) => args[0]));
    expect(Buffer.isBuffer(seen[1][0][1])).toBe(true);
    expect(got(onC, 'bin3')[0][1][1].c[0].byteLength).toBe(0);
    expect(Buffer.from(got(onC, 'bin2')[0][1].nested)).toEqual(Buffer.alloc(9000, 7));
  });

  test('a hook that reads a received broadcast before it is encoded: its binaries still go as binaries', async () => {
    const [A, B, C] = cluster.servers;
    const [onB, onC] = await Promise.all([B, C].map((s) => track(rawClient(s))));
    // An application's hook on the messages from other servers (e.g. logging each event's name) reads
    // the data of every broadcast before Socket.IO encodes it.
    const hooked = [B, C].map((s) => {
      const adapter = s.io.of('/').adapter;
      const names = [];
      const onMessage = adapter.onMessage;
      adapter.onMessage = function hookedOnMessage(message, offset) {
        if (message.type === 3) names.push(message.data.packet.data[0]);
        return onMessage.call(this, message, offset);
      };
      return { adapter, names };
    });
    try {
      A.io.emit('hooked-bin', Buffer.from([1, 2, 3]), { b: Buffer.alloc(9000, 4) });
      await waitEvent([onB, onC], 'hooked-bin');
      A.io.emit('hooked-text', 'h'.repeat(600));
      await waitEvent([onB, onC], 'hooked-text');
    } finally {
      for (const { adapter } of hooked) delete adapter.onMessage;
    }
    expect(hooked[1].names).toEqual(['hooked-bin', 'hooked-text']);
    expect(hooked[0].names).toEqual(hooked[1].names);
    expect(framesDiffer(onC.frames, onB.frames)).toBe('');
    expect(Buffer.from(got(onC, 'hooked-bin')[0][1])).toEqual(Buffer.from([1, 2, 3]));
    expect(Buffer.from(got(onC, 'hooked-bin')[0][2].b)).toEqual(Buffer.alloc(9000, 4));
  });

  // Notifications written by hand (any role that can connect may NOTIFY): whatever a pure-JS server's
  // clients read, the native servers' clients read too (the frames may differ in spelling).
  const channel = () => `${cluster.adapterOpts.channelPrefix}#/`;
  const notify = (text) => pool.query('SELECT pg_notify($1, $2)', [channel(), text]);
  const broadcastOf = (dataJson, packetExtra = '') =>
    `{"type":3,"data":{"packet":{"type":2,"data":${dataJson}${packetExtra}},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"hand","nsp":"/"}`;

  test('hand-written notifications read the same as through the pure-JS adapter', async () => {
    const receivers = await Promise.all(cluster.servers.map((s) => track(rawClient(s))));
    const cases = [
      [' [ "ws" , 1 ,\n\t{ "a" : [ ] } ] '],
      ['["esc","\\u0041\\/\\b\\f\\n\\r\\t\\"\\\\","\\ud800","\\ud83d\\ude00","\\uDBFF\\uDFFF","\\udc00\\ud800"]'],
      ['["nums",1.0,1E2,1.50,-0,-0.0,-0e3,-1e-400,1e400,-1e400,123456789012345678901234567890,1e-7,5e-324]'],
      ['["nums2",[-0],{"a":1e999}]'],
      ['["dup",{"a":1,"a":2,"b":{"c":1},"b":[3]}]'],
      ['["order",{"b":1,"1":2,"__proto__":{"x":1},"0":3,"toJSON":"t"}]'],
      ['["raw","\u2028\u2029 é 😀"]'],
      [`["deep",${'['.repeat(300)}${']'.repeat(300)}]`],
      ['["first"],"data":["dup-data",2]'],
      ['["extra"]', ',"nsp":"/elsewhere","attachments":3'],
    ];
    for (const [i, [data, extra]] of cases.entries()) {
      await notify(broadcastOf(data, extra));
      await waitFor(() => receivers.every((c) => c.got.length > i), 5000, `hand-written case ${i}`);
    }
    const [onA, onB, onC] = receivers;
    expect(onA.got).toEqual(onB.got);
    expect(onC.got).toEqual(onB.got);
    expect(onB.got).toHaveLength(cases.length);
    // Spot checks of what that is.
    expect(onC.got[2].slice(1, 9)).toEqual([1, 100, 1.5, 0, 0, 0, 0, null]);
    expect(onC.got[8]).toEqual(['dup-data', 2]);
  });

  test('a packet whose data is not an array reaches the clients as it does through the pure-JS adapter', async () => {
    const receivers = await Promise.all(cluster.servers.map((s) => track(rawClient(s))));
    await notify(broadcastOf('{"not":"an array"}'));
    await notify(broadcastOf('"text"'));
    await waitFor(() => receivers.every((c) => c.frames.length >= 1), 5000, 'the frames');
    const [onA, onB, onC] = receivers;
    expect(onB.frames[0]).toBe('2{"not":"an array"}');
    expect(onA.frames).toEqual(onB.frames);
    expect(onC.frames).toEqual(onB.frames);
  });

  test('broadcasts of the pure-JS emitter (no top-level nsp) are relayed', async () => {
    const [A, , C] = cluster.servers;
    const receivers = await Promise.all([A, C].map((s) => track(rawClient(s))));
    const emitterPool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
    try {
      const emitter = new PureEmitter(emitterPool, '/', { channelPrefix: cluster.adapterOpts.channelPrefix });
      const sent = [['e-small', 1], ['e-4k', 'q'.repeat(4000)], ['e-big', 'w'.repeat(20000)]];
      for (const [ev, ...args] of sent) {
        emitter.emit(ev, ...args);
        await waitEvent(receivers, ev);
      }
      for (const c of receivers) expect(framesDiffer(c.frames, sent.map((args) => `2${JSON.stringify(args)}`))).toBe('');
    } finally {
      await emitterPool.end();
    }
  });
});

describe('relayed broadcasts and a server that encodes otherwise', () => {
  // Writes one more argument into every event: a client sees it only if this encoder wrote the packet.
  class MarkingEncoder extends parser.Encoder {
    encode(packet) {
      if (packet.type === parser.PacketType.EVENT) packet = { ...packet, data: [...packet.data, 'marked'] };
      return super.encode(packet);
    }
  }
  let cluster;
  const clients = [];
  beforeAll(async () => {
    cluster = new Cluster({
      channelPrefix: 'relay_parser',
      size: 2,
      serverOpts: { parser: { ...parser, Encoder: MarkingEncoder } },
    });
    await cluster.start();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(() => cluster.close());

  test('a custom parser encodes the broadcasts it receives', async () => {
    const [A, B] = cluster.servers;
    const client = await rawClient(B);
    clients.push(client);
    A.io.emit('small', 1);
    A.io.emit('big', 'b'.repeat(20000));
    A.io.emit('bin', { b: Buffer.from([1, 2]) });
    await waitEvent([client], 'bin');
    expect(client.got).toEqual([['small', 1, 'marked'], ['big', 'b'.repeat(20000), 'marked'], ['bin', { b: expect.anything() }, 'marked']]);
    expect(Buffer.from(client.got[2][1].b)).toEqual(Buffer.from([1, 2]));
  });

  test('an encoder with a replacer, or that writes something else, is used (checked per namespace)', async () => {
    const [A, B] = cluster.servers;
    // Without a custom parser option: the server's encoder replaced before the namespace exists.
    B.io.encoder = new parser.Encoder((key, value) => (typeof value === 'string' && value.startsWith('secret') ? '***' : value));
    const ns = '/late';
    for (const s of [A, B]) s.io.of(ns);
    await waitFor(async () => (await B.io.of(ns).adapter.serverCount()) === 2, 5000, 'the namespace on both servers');
    const client = await rawClient(B, { nsp: ns });
    clients.push(client);
    A.io.of(ns).emit('kept', 'secret-1', { s: 'secret-2' }, 'x'.repeat(3000));
    await waitEvent([client], 'kept');
    expect(client.got).toEqual([['kept', '***', { s: '***' }, 'x'.repeat(3000)]]);
  });
});

describe('relayed broadcasts with connection state recovery', () => {
  const TABLES = { logTableName: `relay_log_${process.pid}`, sessionTableName: `relay_sessions_${process.pid}` };
  let cluster;
  let pool;
  const clients = [];
  beforeAll(async () => {
    pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
    cluster = new Cluster({
      channelPrefix: 'relay_csr',
      size: 3,
      adapterOpts: { ...TABLES, createTable: true },
      serverOpts: { connectionStateRecovery: { maxDisconnectionDuration: 60000 } },
    });
    await cluster.start();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await cluster.close();
    await pool.end();
  });

  // Until `n` packets past the client's last offset are in the recovery log.
  const loggedAfter = (client, n) => waitFor(
    async () => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLES.logTableName} WHERE id > $1`, [client._lastOffset])).rows[0].n === n,
    5000,
    'the log',
  );

  test('live packets carry their offset, outgoing listeners see it, and a recovered client gets what it missed', async () => {
    const [A, B, C] = cluster.servers.map((s) => s.io);
    const client = await helpers.recoverableClient(cluster, 2);
    clients.push(client);
    const frames = [];
    client.io.engine.on('packet', (p) => p.type === 'message' && typeof p.data === 'string' && p.data.startsWith('2') && frames.push(p.data));
    const seen = [];
    C.of('/').sockets.get(client.id).onAnyOutgoing((...args) => seen.push(args));
    const all = [];
    client.onAny((...args) => all.push(args));
    const text = 'k'.repeat(4000);
    const big = 'g'.repeat(20000);
    A.emit('live', text);
    A.emit('live', big);
    A.emit('live', [], {});
    A.emit('bin', Buffer.from([9, 8]));
    await waitFor(() => all.length === 4, 5000, 'the live packets');
    for (const args of all) expect(args[args.length - 1]).toMatch(/^[1-9][0-9]*$/);
    expect(all.map((a) => a.slice(0, -1))).toEqual([['live', text], ['live', big], ['live', [], {}], ['bin', expect.anything()]]);
    expect(Buffer.from(all[3][1])).toEqual(Buffer.from([9, 8]));
    expect(client._lastOffset).toBe(all[3][2]);
    expect(seen.map((a) => a.slice(0, -1))).toEqual(all.map((a) => a.slice(0, -1)));
    expect(seen.map((a) => a[a.length - 1])).toEqual(all.map((a) => a[a.length - 1]));
    all.pop();
    // The frame ends with the offset as Socket.IO writes it.
    expect(frames[2]).toBe(`2${JSON.stringify(all[2])}`);
    expect(frames[0]).toBe(`2${JSON.stringify(all[0])}`);

    await helpers.cut(cluster, client, 2, { pool, sessionTable: TABLES.sessionTableName });
    B.emit('missed', text);
    A.emit('missed', big);
    await loggedAfter(client, 2);
    await helpers.reconnectTo(cluster, client, 1);
    expect(client.recovered).toBe(true);
    await waitFor(() => all.length === 5, 5000, 'the missed packets');
    expect(all.slice(3).map((a) => a.slice(0, 2)).sort((x, y) => x[1].length - y[1].length)).toEqual([['missed', text], ['missed', big]]);
  });
  test('a recovered client gets the binary packets it missed', async () => {
    const [A, , C] = cluster.servers.map((s) => s.io);
    const client = await helpers.recoverableClient(cluster, 2);
    clients.push(client);
    const all = [];
    client.onAny((...args) => all.push(args));
    A.emit('live-bin', Buffer.from([1]), 'w'.repeat(600));
    await waitFor(() => all.length === 1, 5000, 'the live packet');
    await helpers.cut(cluster, client, 2, { pool, sessionTable: TABLES.sessionTableName });
    A.emit('missed-bin', { b: Buffer.from([9, 8]) }, 'x'.repeat(700));
    A.emit('missed-bin', { b: Buffer.alloc(9000, 3) });
    await loggedAfter(client, 2);
    await helpers.reconnectTo(cluster, client, 2);
    expect(client.recovered).toBe(true);
    await waitFor(() => all.length === 3, 5000, 'the missed packets');
    expect(C.of('/').sockets.get(client.id)).toBeDefined();
    const missed = all.slice(1).sort((x, y) => x[1].b.byteLength - y[1].b.byteLength);
    expect(Buffer.from(missed[0][1].b)).toEqual(Buffer.from([9, 8]));
    expect(missed[0][2]).toBe('x'.repeat(700));
    expect(Buffer.from(missed[1][1].b)).toEqual(Buffer.alloc(9000, 3));
    for (const args of missed) expect(args[args.length - 1]).toMatch(/^[1-9][0-9]*$/);
  });
});

describe('the recovery log of this server keeps a relayed packet unparsed', () => {
  const { DeliveredLog } = require('../lib/recovery');
  const { relayPacket, receivedData, relayedJson } = require('../lib/relay');

  test('a restore gets its data parsed, with its offset, as for a parsed packet', () => {
    const log = new DeliveredLog();
    const packet = relayPacket({ type: 2, data: 0 }, '["ev",{"a":[1]},"\\u2028"]');
    log.record('5', receivedData(packet), {});
    log.record('6', ['plain', 1], { rooms: ['r'] });
    // Recording did not read the packet's data (it would go to clients as received).
    expect(relayedJson(packet)).toBe('["ev",{"a":[1]},"\\u2028"]');
    const session = { rooms: ['r'], baseline: 0, snapshotMax: 4, packets: [] };
    expect(log.missed(session, '4')).toEqual([['ev', { a: [1] }, '\u2028', '5'], ['plain', 1, '6']]);
    // Asked again (another client): the same packets.
    expect(log.missed(session, '5')).toEqual([['plain', 1, '6']]);
    expect(log.missed(session, '4')[0]).toEqual(['ev', { a: [1] }, '\u2028', '5']);
  });

  test('it holds the JSON and binaries a restore needs, not the frame bytes nor the data something parsed', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    const log = new DeliveredLog();
    const json = `["ev","${'y'.repeat(4000)}"]`;
    const refs = (() => {
      // A relayed packet of 4 KB (its bytes handed over for the frame) that an outgoing listener read.
      const bytes = Buffer.from(json);
      const packet = relayPacket({ type: 2, data: 0 }, [json, bytes]);
      log.record('5', receivedData(packet), {});
      return [new WeakRef(bytes), new WeakRef(packet.data)];
    })();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(refs.map((ref) => ref.deref())).toEqual([undefined, undefined]);
    const session = { rooms: [], baseline: 0, snapshotMax: 4, packets: [] };
    expect(log.missed(session, '4')).toEqual([['ev', 'y'.repeat(4000), '5']]);
  });
});

describe('the envelopes of relayed broadcasts', () => {
  const { EnvelopeParser } = require('../lib/relay');

  test('a repeated envelope gives fresh objects, as JSON.parse would', () => {
    const parser = new EnvelopeParser();
    const text = '{"type":3,"data":{"packet":{"type":2,"data":0},"opts":{"rooms":["r"],"except":[],"flags":{"volatile":true}}},"uid":"u","nsp":"/","x":{"b":1,"2":2,"__proto__":{"p":[null]}}}';
    const first = parser.parse(text);
    first.data.opts.rooms.push('changed');
    first.data.opts.flags.volatile = false;
    delete first.x.b;
    const second = parser.parse(`${text}`);
    expect(second).toEqual(JSON.parse(text));
    expect(Object.keys(second.x)).toEqual(Object.keys(JSON.parse(text).x));
    expect(Object.getPrototypeOf(second.x)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(second.x, '__proto__').value).toEqual({ p: [null] });
    expect(second.data.opts).not.toBe(first.data.opts);
  });
});

// The websocket frames of relayed broadcasts of 512 bytes and more are built from the core's bytes (lib/relay.js):
// a namespace whose name is not ASCII (its prefix counts in bytes) and frames over 65535 bytes (a 64-bit
// length), with and without perMessageDeflate (engine.io then encodes the packets itself).
describe.each([
  ['without perMessageDeflate', {}],
  ['with perMessageDeflate', { perMessageDeflate: { threshold: 0 } }],
])('relayed frames of any length, %s', (_name, serverOpts) => {
  const NSP = '/é☃😀';
  let cluster;
  const clients = [];
  beforeAll(async () => {
    cluster = new Cluster({ channelPrefix: 'relay_frames', size: 3, adapters: ['native', 'pure', 'native'], namespaces: [NSP], serverOpts });
    await cluster.start();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(() => cluster.close());

  test('a native server writes the frames a pure-JS server writes', async () => {
    const [A, B, C] = cluster.servers;
    for (const nsp of [NSP, '/']) {
      const [onB, onC] = await Promise.all([B, C].map((s) => rawClient(s, { nsp })));
      clients.push(onB, onC);
      const sent = [
        ['a4k', 'abcd'.repeat(1024), { k: '\u007f' }], // ASCII: handed over as Latin-1
        ['t600', 'é'.repeat(600)],
        ['t7000', '☃'.repeat(2600)],
        ['big70k', 'x'.repeat(70000)],
        ['big80k', 'ü'.repeat(40000), { k: '😀'.repeat(100) }],
        ['huge', 'y'.repeat(300000)],
        ['bin', Buffer.alloc(70000, 1), 'z'.repeat(70000)],
      ];
      for (const [ev, ...args] of sent) {
        A.io.of(nsp).emit(ev, ...args);
        await waitEvent([onB, onC], ev);
      }
      expect(onC.got.map((args) => args[0])).toEqual(sent.map((args) => args[0]));
      expect(framesDiffer(onC.frames, onB.frames)).toBe('');
      expect(onC.got).toEqual(onB.got);
    }
  });
});
