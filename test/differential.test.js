// Differential test: one scripted sequence of operations runs on a reference cluster of 3 pure-JS servers
// (@socket.io/postgres-adapter 0.5), then on clusters with this package's adapter in 1 or 2 of the 3 positions;
// what the clients and the server-side callbacks observe must be the same.
//
// Determinism: the reference run settles each operation with two rounds of barriers from every server (the
// second round leaves after the first arrived, so everything published before it has been committed and
// fetched); a mixed run waits (bounded) until its observation equals the reference's, then settles the same
// way and compares. Events are compared per client and per operation as sorted multisets: the pure-JS adapter
// publishes through a pool, so its messages are not ordered among themselves.
const { Cluster, waitFor } = require('./helpers/cluster');

const DYN = '/dyn-1';
const NSPS = ['/', '/other', DYN];
// [label, server, nsp, rooms]
const CLIENTS = [
  ['c0', 0, '/', ['a']],
  ['c1', 0, '/', ['b']],
  ['c2', 1, '/', ['a', 'b']],
  ['c3', 1, '/', [7]], // a room may be a number
  ['c4', 2, '/', ['a', 7]],
  ['c5', 2, '/', ['c', 8, 'a\ud800b', 'ünï 日本 \u2028']],
  ['o0', 0, '/other', ['a']],
  ['o1', 2, '/other', []],
  ['d0', 0, DYN, ['a']],
  ['d1', 1, DYN, []],
  // HTTP long-polling clients (a relayed packet is written otherwise than on a websocket)
  ['p0', 0, '/', ['b']],
  ['p1', 1, '/', ['a', 7]],
  ['p2', 2, '/', []],
];
const POLLING = new Set(['p0', 'p1', 'p2']);

const tag = Object.prototype.toString;
const hex = (v) => Buffer.from(v.buffer || v, v.byteOffset || 0, v.byteLength).toString('hex');

// A JSON-comparable picture of a value as a user sees it. A Buffer and a Uint8Array look alike here: remote
// binary arrives as a Buffer from this package and as a Uint8Array from @msgpack/msgpack (README: documented).
function norm(v, ids) {
  if (v === undefined) return { $: 'undefined' };
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return { $: '-0' };
    if (!Number.isFinite(v)) return { $: String(v) };
    return v;
  }
  if (typeof v === 'string') return ids && ids.has(v) ? `<id ${ids.get(v)}>` : v;
  if (typeof v === 'bigint') return { $: `${v}n` };
  if (typeof v === 'function') return { $: 'function' };
  if (typeof v === 'symbol') return { $: String(v) };
  if (v === null || typeof v !== 'object') return v;
  const t = tag.call(v);
  if (t === '[object ArrayBuffer]') return { $ab: hex(v) };
  if (t === '[object Uint8Array]') return { $u8: hex(v) };
  if (ArrayBuffer.isView(v) || t === '[object DataView]') return { $view: t, hex: hex(v) };
  if (t === '[object Date]') return { $date: Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString() };
  if (t === '[object Set]') return { $set: [...v].map((x) => norm(x, ids)).sort(cmp) };
  if (t === '[object Map]') return { $map: [...v].map((x) => norm(x, ids)) };
  if (Array.isArray(v)) return Array.from(v, (x) => norm(x, ids));
  const out = {};
  for (const key of Object.keys(v)) out[key] = norm(v[key], ids);
  // (by name: objects made by the addon belong to Node's realm, not to Jest's)
  const proto = Object.getPrototypeOf(v);
  if (proto !== null && !(proto.constructor && proto.constructor.name === 'Object')) out.$proto = proto.constructor && proto.constructor.name;
  return out;
}
const str = (v) => JSON.stringify(v);
const cmp = (a, b) => (str(a) < str(b) ? -1 : str(a) > str(b) ? 1 : 0);

// What a user may compare of a handshake (the port, time and key differ from run to run).
function normHandshake(h, ids) {
  return {
    keys: Object.keys(h).sort(),
    headerKeys: Object.keys(h.headers).sort(),
    types: Object.keys(h).map((k) => typeof h[k]),
    url: h.url.replace(/([?&]t=)[^&]*/, '$1<t>'), // polling's cache buster
    query: norm({ ...h.query, ...(h.query.t ? { t: '<t>' } : {}) }),
    auth: norm(h.auth, ids),
    xdomain: h.xdomain,
    secure: h.secure,
    address: h.address,
    issuedIsNumber: Number.isFinite(h.issued),
    timeIsDate: !Number.isNaN(Date.parse(h.time)),
  };
}

function normSockets(sockets, ids) {
  return sockets
    .map((s) => ({
      id: norm(s.id, ids),
      rooms: [...s.rooms].map((r) => norm(r, ids)).sort(),
      data: norm(s.data, ids),
      handshake: normHandshake(s.handshake, ids),
    }))
    .sort(cmp);
}

const BIN = {
  buf: Buffer.from([0, 1, 2, 253, 254, 255]),
  slice: Buffer.from('hello binary world').subarray(6, 12), // byteOffset != 0
  u8: new Uint8Array([7, 8, 9]),
  i16: new Int16Array([-2, 300]),
  f64: new Float64Array([1.5, -0.25]),
  // An ArrayBuffer sent by a server is not compared: @msgpack/msgpack 2.8 (the pure-JS adapter's) writes it as
  // an empty map, so it arrives as {} (our adapter sends its bytes). A client's ArrayBuffer arrives as a Buffer.
  ab: new Uint8Array([4, 5, 6, 7]),
  empty: Buffer.alloc(0),
};
const WHEN = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
const LONE = 'a\ud800b\udfffc\ud83d\ude00';
const SEPS = 'x\u2028y\u2029z\u0000\u001f"\\/';
const NUMBERS = [0, -0, 1.5, -1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 1e300, 5e-324, NaN, Infinity, -Infinity,
  0.1, 1 / 3, 1e21, 1e-7, 123456789.123, -1.7976931348623157e308, 2 ** 53 - 1, -(2 ** 53) + 1, 255, 256, 65535, 65536, -32, -33, -129, 4294967295];

class Point {
  constructor() {
    this.x = 1;
    this.y = [2];
  }
}
class WithToJSON {
  toJSON() {
    return { replaced: true, when: WHEN };
  }
}
// Values of which JSON.stringify writes something else than their own fields.
function odd() {
  const sparse = [1, , 3];
  const getter = { get g() { return 'got'; }, plain: 1 };
  return [
    new Point(), // 0
    new WithToJSON(), // 1
    { deep: [new WithToJSON()] }, // 2
    new Map([['k', 1]]), // 3
    new Set([1, 2]), // 4
    [Symbol('s'), () => 1, undefined], // 5
    { s: Symbol('s'), f: () => 1, u: undefined, n: null }, // 6
    sparse, // 7
    new Date(NaN), // 8
    [new String('boxed'), new Number(3), new Boolean(false)], // 9
    getter, // 10
    Object.create(null, { bare: { value: 'x', enumerable: true } }), // 11
    { toJSON: 5, k: 1 }, // 12: a toJSON that is not a function
    { '2': 'b', '1': 'a', z: 'z', '-1': 'm', '01': 'o' }, // 13
    Object.assign([1, 2], { extra: 'dropped' }), // 14
    JSON.parse('{"__proto__": {"x": 1}, "y": 2}'), // 15: an own "__proto__" key
    new SharedArrayBuffer(4), // 16: not binary for Socket.IO (JSON: {})
  ];
}
// The ones @msgpack/msgpack (the pure-JS adapter's attachments) writes as JSON would: it calls no toJSON,
// writes a Map, a Set and a boxed primitive as their own (empty) fields, and refuses symbols and functions.
const ODD_IN_MSGPACK = new Set([0, 7, 9, 10, 11, 13, 14]);

// The script. Each op gets ctx = { io(server, nsp), record(key, value), ids } and may await.
const OPS = [
  ['plain broadcast', (c) => {
    c.io(0).emit('e1', 1, 'two', { three: [3] }, null, true, false);
    c.io(1).emit(42, 'a number as the event name');
    c.io(2).emit('', 'an empty event name');
    c.io(0).emit(LONE, SEPS);
  }],
  ['empty and many arguments', (c) => {
    c.io(1).emit('empty');
    c.io(2).emit('many', ...Array.from({ length: 60 }, (_, i) => (i % 2 ? i : `s${i}`)));
    c.io(0).emit('undef', undefined, [undefined, 1], { u: undefined, v: 1 });
  }],
  ['unicode', (c) => {
    c.io(1).emit('u', LONE, SEPS, { [LONE]: SEPS, [SEPS]: LONE }, '€𝄞', '');
  }],
  ['numbers', (c) => c.io(2).emit('n', NUMBERS, { nested: NUMBERS })],
  ['values JSON writes in its own way', (c) => {
    for (const from of [0, 1, 2]) c.io(from).emit('odd', ...odd());
  }],
  ['values JSON writes in its own way, beside binary', (c) => {
    for (const from of [0, 1, 2]) c.io(from).emit('odd-bin', BIN.buf, ...odd().filter((_, i) => ODD_IN_MSGPACK.has(i)));
  }],
  ['numbers beside binary', (c) => c.io(1).emit('n-bin', BIN.u8, NUMBERS, { nested: NUMBERS })],
  ['binary at several depths', (c) => {
    c.io(1).emit('b1', BIN.buf);
    c.io(1).emit('b2', { a: { b: [BIN.u8, { c: BIN.slice }] } }, 'text', BIN.ab);
    c.io(2).emit('b3', [BIN.i16, BIN.f64], BIN.empty);
    c.io(0).emit('b4', [[[[BIN.buf]]]], { deep: [[{ x: [BIN.ab] }]] });
    c.io(1).emit('b6', new BigInt64Array([-1n, 2n]), new Uint8ClampedArray([300, 5]), new Float32Array([0.5]), new DataView(new Uint8Array([9, 8, 7]).buffer, 1, 2));
    // socket.io-client's decoder takes at most 10 binaries a packet (maxAttachments)
    c.io(0).emit('b7', Array.from({ length: 10 }, (_, i) => Buffer.from([i, 255 - i])));
    c.io(2).emit('b5', { [LONE]: BIN.buf, [SEPS]: [SEPS, LONE], '': 0, 'é': { '\u2028': BIN.u8 } });
  }],
  ['dates', (c) => {
    c.io(2).emit('d1', WHEN, { when: WHEN }, [WHEN]);
    c.io(0).emit('d2', WHEN, BIN.buf, { when: [WHEN] });
  }],
  ['large payloads', (c) => {
    c.io(0).emit('big1', 'x'.repeat(9000));
    c.io(1).emit('big2', 'é'.repeat(5000), { k: 'z'.repeat(3000) }, 7);
    c.io(2).emit('big3', Buffer.alloc(20000, 0xab), 'y'.repeat(9000));
    c.io(1).emit('big4', Array.from({ length: 2000 }, (_, i) => ({ i })));
  }],
  ['around the notification size limit', (c) => {
    // JSON of about 7,980 to 8,020 bytes (the pure-JS adapter sends 8,000 bytes and more as an attachment, and
    // PostgreSQL refuses a notification of 8,000 bytes: both sides of that line, with 1- and 2-byte characters)
    // Not what a pure-JS server writes in exactly 8,000 bytes: it sends that inline, PostgreSQL refuses it, and the
    // other servers never see it (README: upstream defects; this package sends it as an attachment).
    const pureJson = (args) => Buffer.byteLength(JSON.stringify({ type: 3, data: { packet: { type: 2, data: args }, opts: { rooms: [], except: [], flags: {} } }, uid: '0123456789abcdef', nsp: '/' }));
    const emit = (from, args) => {
      if (pureJson(args) !== 8000) c.io(from).emit(...args);
    };
    for (let n = 7836; n <= 7872; n += 2) {
      emit(n % 3, ['edge', n, 'e'.repeat(n)]);
      emit((n + 1) % 3, ['edge2', n, 'é'.repeat(n / 2 - 1) + 'x'.repeat(n % 2)]);
    }
    c.io(1).to(Array.from({ length: 800 }, (_, i) => `room-${i}`).concat('a')).emit('many-rooms', 1);
  }],
  ['rooms and except', (c) => {
    c.io(0).to('a').emit('r1', 1);
    c.io(1).to(['a', 'b']).except('c').emit('r2', 2);
    c.io(2).except('a').emit('r3', 3);
    c.io(0).to('a').except('b').emit('r4', 4);
    c.io(1).in('nobody').emit('r5', 5);
    c.io(2).except(['a', 'b']).emit('r6', 6);
    c.io(1).to('b').to('c').emit('r7', Buffer.from([7]));
  }],
  ['unicode rooms', (c) => {
    c.io(0).to('a\ud800b').emit('lone-room', 1);
    c.io(1).to('ünï 日本 \u2028').emit('unicode-room', BIN.buf);
    c.io(2).except('a\ud800b').emit('except-lone-room', 'x'.repeat(9000));
    c.io(0).to('a\udc00b').emit('other-lone-room', 2); // nobody
    c.io(1).to('7').emit('string-7', 3); // nobody: the room is the number 7
  }],
  ['numeric and socket-id rooms', (c) => {
    c.io(0).to(7).emit('num7', 7);
    c.io(1).except(7).emit('not7', 1);
    c.io(2).to([8, 'b']).except(7).emit('num8', BIN.buf);
    c.io(2).to(c.idOf('c2')).emit('private', 'to c2');
    c.io(0).to(c.idOf('c4')).to(c.idOf('c1')).emit('privates', 2);
    c.io(1).except(c.idOf('c0')).except('b').emit('except-id', 3);
  }],
  // One volatile emit per operation: the pure-JS adapter delivers to its own clients only once its NOTIFY is
  // committed, this package at once (README: local delivery never waits for the database), so a volatile
  // packet that follows another one to the same client in the same tick is dropped by Socket.IO here (the
  // transport is still writing), as with Socket.IO's in-memory adapter, and is not there.
  // Even alone, the pure-JS servers sometimes drop a remote volatile packet (seen in the reference run, its
  // cause not chased): whether a client got one is not compared, only that nobody got anything else.
  ['volatile', (c) => c.io(0).volatile.emit('v1', 1)],
  ['volatile, binary, to a room', (c) => c.io(1).to('a').volatile.compress(false).emit('v2', Buffer.from([2]))],
  ['compress(false) and local', (c) => {
    c.io(1).compress(false).emit('cf', 'not compressed');
    c.io(2).local.emit('local', 3);
    c.io(0).timeout(50).emit('timeout-without-ack', 4);
  }],
  ['other namespaces', (c) => {
    c.io(1, '/other').emit('o', 'hi', BIN.buf);
    c.io(2, '/other').to('a').emit('o-room', WHEN);
    c.io(1, DYN).emit('dyn', 'dynamic', { b: BIN.u8 });
    c.io(0, DYN).except('a').emit('dyn-except', 1);
  }],
  ['broadcast with acks from clients of every server', async (c) => {
    for (const [mode, args] of [['echo', [1, 'two', { three: 3 }]], ['echo', [BIN.buf, { n: [BIN.u8] }]], ['bin', []], ['date', []], ['many', []], ['large', []], ['none', []]]) {
      for (const from of [0, 1, 2]) {
        const [err, responses] = await new Promise((resolve) => c.io(from).timeout(3000).emit('q', mode, ...args, (e, r) => resolve([e, r])));
        c.record(`ack ${mode} from ${from}`, { err: err && err.message, responses: norm(responses, c.ids).sort(cmp) });
      }
    }
    const silent = await new Promise((resolve) => c.io(0).timeout(500).emit('q', 'silent', (e, r) => resolve([e, r])));
    c.record('ack with clients that do not answer', { err: silent[0] && silent[0].message, responses: norm(silent[1], c.ids).sort(cmp) });
    const [err, responses] = await new Promise((resolve) => c.io(1).to('b').except('a').timeout(3000).emit('q', 'echo', 'rooms', (e, r) => resolve([e, r])));
    c.record('ack to b except a', { err: err && err.message, responses: norm(responses, c.ids).sort(cmp) });
    const none = await new Promise((resolve) => c.io(2).to('nobody').timeout(3000).emit('q', 'echo', (e, r) => resolve([e, r])));
    c.record('ack to nobody', { err: none[0] && none[0].message, responses: norm(none[1]) });
    const other = await new Promise((resolve) => c.io(0, '/other').timeout(3000).emit('q', 'echo', BIN.ab, (e, r) => resolve([e, r])));
    c.record('ack /other', { err: other[0] && other[0].message, responses: norm(other[1], c.ids).sort(cmp) });
  }],
  ['serverSideEmit with and without ack', async (c) => {
    for (const from of [0, 1, 2]) {
      c.io(from).serverSideEmit('sse', from, LONE, BIN.buf, { when: WHEN, deep: [[BIN.ab]] }, NUMBERS);
      if (!c.attachments) c.io(from).serverSideEmit('sse-odd', ...odd());
      c.io(from).serverSideEmit('sse-plain', from, WHEN, NUMBERS, undefined, [undefined]);
      for (const mode of ['echo', 'bin', 'date', 'multi', 'large', 'nothing']) {
        const [err, responses] = await new Promise((resolve) => c.io(from).serverSideEmit('ssq', mode, from, BIN.u8, WHEN, (e, r) => resolve([e, r])));
        c.record(`sse ack ${mode} from ${from}`, { err: err && err.message, responses: norm(responses, c.ids).sort(cmp) });
      }
      const [err, responses] = await new Promise((resolve) => c.io(from, '/other').serverSideEmit('ssq', 'echo', 'other', (e, r) => resolve([e, r])));
      c.record(`sse ack /other from ${from}`, { err: err && err.message, responses: norm(responses, c.ids).sort(cmp) });
    }
  }],
  ['fetchSockets', async (c) => {
    for (const from of [0, 1, 2]) {
      c.record(`all from ${from}`, normSockets(await c.io(from).fetchSockets(), c.ids));
      c.record(`in a from ${from}`, normSockets(await c.io(from).in('a').fetchSockets(), c.ids));
      c.record(`except a from ${from}`, normSockets(await c.io(from).except('a').fetchSockets(), c.ids));
      c.record(`in b except a from ${from}`, normSockets(await c.io(from).in('b').except('a').fetchSockets(), c.ids));
      c.record(`/other from ${from}`, normSockets(await c.io(from, '/other').fetchSockets(), c.ids));
    }
    c.record('dyn from 0', normSockets(await c.io(0, DYN).fetchSockets(), c.ids));
    c.record('in 7 from 0', normSockets(await c.io(0).in(7).fetchSockets(), c.ids));
    c.record('in a socket id from 1', normSockets(await c.io(1).in(c.idOf('c5')).fetchSockets(), c.ids));
    c.record('with a timeout from 2', normSockets(await c.io(2).timeout(3000).in('b').fetchSockets(), c.ids));
  }],
  ['fetchSockets with large socket.data', async (c) => {
    // 8000 bytes of JSON or more: the pure-JS adapter answers through the attachment table (msgpack).
    for (const [label, server, nsp] of CLIENTS) {
      if (label === 'c0' || label === 'c3') c.io(server, nsp).sockets.get(c.idOf(label)).data.big = 'é'.repeat(4500);
    }
    for (const from of [0, 1, 2]) c.record(`all from ${from}`, normSockets(await c.io(from).fetchSockets(), c.ids));
    for (const [label, server, nsp] of CLIENTS) {
      if (label === 'c0' || label === 'c3') delete c.io(server, nsp).sockets.get(c.idOf(label)).data.big;
    }
  }],
  ['remote sockets: emit, join, leave', async (c) => {
    const sockets = await c.io(0).fetchSockets();
    for (const s of sockets) {
      if (s.data.tag === 'c3' || s.data.tag === 'c4') s.emit('direct', s.data.tag, BIN.buf, WHEN);
      if (s.data.tag === 'c5') s.join(['j-remote', 'j2']);
      if (s.data.tag === 'c2') s.leave('b');
    }
    for (const s of await c.io(1, '/other').fetchSockets()) s.join(['rj', 5]);
    for (const tag of ['c1', 'c3', 'c5']) {
      const s = sockets.find((x) => x.data.tag === tag);
      const [err, responses] = await new Promise((resolve) => s.timeout(3000).emit('q', 'echo', s.data.tag, BIN.u8, (e, r) => resolve([e, r])));
      c.record(`remote ack ${s.data.tag}`, { err: err && err.message, responses: norm(responses, c.ids) });
    }
    for (const [from, nsp] of [[0, '/'], [1, '/other'], [2, DYN]]) c.record(`serverCount ${from} ${nsp}`, await c.io(from, nsp).adapter.serverCount());
    const [err, responses] = await new Promise((resolve) => c.io(1, DYN).serverSideEmit('ssq', 'echo', 'dyn', (e, r) => resolve([e, r])));
    c.record('sse ack on a dynamic namespace', { err: err && err.message, responses: norm(responses, c.ids).sort(cmp) });
  }],
  ['socketsJoin and socketsLeave', (c) => {
    c.io(1).in('a').socketsJoin(['j1', 'j2']);
    c.io(2).except('a').socketsJoin('j3');
    c.io(0).in('c').socketsLeave('c');
    c.io(2, '/other').socketsJoin('oj');
    c.io(0).in(7).socketsJoin(9);
    c.io(1).in(c.idOf('c0')).socketsJoin('by-id');
  }],
  ['emit to joined rooms', (c) => {
    c.io(0).to('j1').emit('j1', 1);
    c.io(1).to('j3').except('j2').emit('j3', 3);
    c.io(2).to('c').emit('c-left', 0);
    c.io(1).to(9).emit('nine', 9);
    c.io(2).to('by-id').emit('by-id', 1);
  }],
  ['disconnectSockets', async (c) => {
    c.io(2).in('j3').except('j-remote').disconnectSockets();
    c.io(1, '/other').in('oj').disconnectSockets(true);
    const [remote] = await c.io(1).in(c.idOf('c0')).fetchSockets();
    remote.disconnect(true);
  }],
  ['a server closes', async (c) => {
    await c.removeServer(2); // its clients are disconnected
    // The others stop counting it (its ADAPTER_CLOSE), then requests wait for one peer only.
    const counts = () => Promise.all([0, 1].flatMap((i) => ['/', '/other'].map((nsp) => c.io(i, nsp).adapter.serverCount())));
    let last;
    await waitFor(async () => (last = await counts()).every((n) => n === 2), 5000).catch(() => {});
    c.record('serverCount', last);
    for (const from of [0, 1]) {
      const [err, responses] = await new Promise((resolve) => c.io(from).serverSideEmit('ssq', 'echo', 'after close', (e, r) => resolve([e, r])));
      c.record(`sse ack from ${from}`, { err: err && err.message, responses: norm(responses, c.ids).sort(cmp) });
      c.record(`fetchSockets from ${from}`, normSockets(await c.io(from).fetchSockets(), c.ids));
      const acks = await new Promise((resolve) => c.io(from).timeout(3000).emit('q', 'echo', 'after close', (e, r) => resolve([e, r])));
      c.record(`broadcast ack from ${from}`, { err: acks[0] && acks[0].message, responses: norm(acks[1], c.ids).sort(cmp) });
    }
  }],
];

// Server-side listeners of the script (every server, '/' and '/other').
function listen(server, seen) {
  for (const nsp of ['/', '/other', DYN]) {
    const io = server.io.of(nsp);
    io.on('sse', (...args) => seen.push([nsp, 'sse', server.index, args]));
    io.on('sse-plain', (...args) => seen.push([nsp, 'sse-plain', server.index, args]));
    io.on('sse-odd', (...args) => seen.push([nsp, 'sse-odd', server.index, args]));
    io.on('ssq', (mode, ...args) => {
      const cb = args.pop();
      seen.push([nsp, 'ssq', server.index, [mode, ...args]]);
      if (mode === 'echo') cb([server.index, ...args]);
      else if (mode === 'bin') cb({ from: server.index, bin: BIN.buf, ab: BIN.ab });
      else if (mode === 'date') cb(WHEN);
      else if (mode === 'multi') cb(server.index, 'second argument');
      else if (mode === 'large') cb({ from: server.index, text: 'x'.repeat(9000), when: WHEN });
      else cb();
    });
  }
}

// A client answers the broadcast 'q' as its first argument says.
function answer(client) {
  client.on('q', (mode, ...args) => {
    const cb = args.pop();
    if (mode === 'echo') cb([client.label, ...args]);
    else if (mode === 'bin') cb({ label: client.label, bin: Buffer.from([1, 2, 3]), nested: [[new Uint8Array([4]).buffer]] });
    else if (mode === 'date') cb(new Date(Date.UTC(2001, 1, 1)));
    else if (mode === 'many') cb(client.label, 2, 3);
    else if (mode === 'large') cb({ label: client.label, text: 'é'.repeat(5000) });
    else if (mode === 'silent') {
      if (client.serverIndex !== 2) cb(client.label);
    }
    else cb();
  });
  client.on('disconnect', (reason) => client.received.push(['$disconnect', reason]));
}

async function startCluster(kinds, prefix, adapterOpts = {}) {
  const cluster = new Cluster({ channelPrefix: prefix, size: 3, adapters: kinds, namespaces: ['/other'], adapterOpts });
  await cluster.start();
  const seen = [];
  for (const server of cluster.servers) {
    server.io.of(/^\/dyn-\d+$/).on('connection', (socket) => {
      socket.data = { server: server.index };
      if (socket.handshake.auth.rooms) socket.join(socket.handshake.auth.rooms);
    });
    listen(server, seen);
  }
  const clients = {};
  const ids = new Map();
  for (const [label, server, nsp, rooms] of CLIENTS) {
    const client = await cluster.connect(server, { nsp, rooms, label, transports: POLLING.has(label) ? ['polling'] : ['websocket'] });
    answer(client);
    clients[label] = client;
    ids.set(client.id, label);
    const socket = cluster.servers[server].io.of(nsp).sockets.get(client.id);
    // What server-side code sees of the packets sent to the socket (the data of a relayed packet is parsed then).
    socket.onAnyOutgoing((...args) => {
      if (args[0] !== '__b') seen.push(['outgoing', label, args]);
    });
    Object.assign(socket.data, {
      tag: label,
      nested: { list: [1, [2, [3, { x: null }]]], text: SEPS, lone: LONE },
      when: WHEN,
      // No binary: the pure-JS adapter answers fetchSockets() with JSON.stringify (a Buffer arrives as
      // {type: 'Buffer', data}, a Date as a string) unless the answer has 8000 bytes or more (msgpack:
      // binary and Dates kept). This package keeps them: not compared.
    });
  }
  // The dynamic namespace exists on servers 0 and 1 (their clients made it); server 2 creates it too.
  cluster.servers[2].io.of(DYN);
  const { waitForClusterReady } = require('./helpers/cluster');
  await waitForClusterReady(cluster.servers, { namespaces: NSPS });
  return { cluster, seen, clients, ids };
}

async function settle(run) {
  for (let round = 0; round < 2; round++) {
    const id = `${round}-${Math.random()}`;
    for (const server of run.cluster.servers) for (const nsp of NSPS) server.io.of(nsp).emit('__b', id, server.index);
    await waitFor(
      () => Object.values(run.clients).every((c) => !c.connected || c.received.filter((e) => e[0] === '__b' && e[1] === id).length === run.cluster.servers.length),
      5000,
      'the barrier',
    );
  }
  // The pure-JS servers have no query running or waiting (their listening client stays checked out): an
  // attachment announced before the barriers has been read (its SELECT was queued when its notification came).
  await waitFor(
    () => run.cluster.servers.every((s) => s.kind !== 'pure' || (s.pool.waitingCount === 0 && s.pool.totalCount - s.pool.idleCount <= 1)),
    5000,
    'the pure-JS servers to be idle',
  );
  // Nothing is being written to any client any more (a volatile packet would be dropped meanwhile).
  await waitFor(
    () => run.cluster.servers.every((server) => NSPS.every((nsp) => [...server.io.of(nsp).sockets.values()].every((s) => !s.connected || s.conn.transport.writable))),
    5000,
    'every transport to be writable',
  );
}

const VOLATILE = new Set([str(['v1', 1]), str(['v2', { $u8: '02' }])]);

// What every client received since `from`, every server's listeners saw, and every socket's rooms.
function observe(run, marks, results) {
  const clients = {};
  for (const [label, client] of Object.entries(run.clients)) {
    clients[label] = {
      connected: client.connected,
      events: client.received.slice(marks.clients[label]).filter((e) => e[0] !== '__b' && !VOLATILE.has(str(norm(e)))).map((e) => norm(e, run.ids)).sort(cmp),
    };
  }
  const rooms = {};
  for (const server of run.cluster.servers) {
    for (const nsp of NSPS) {
      for (const socket of server.io.of(nsp).sockets.values()) rooms[run.ids.get(socket.id)] = [...socket.rooms].map((r) => norm(r, run.ids)).sort();
    }
  }
  const servers = run.seen.slice(marks.seen).map((e) => norm(e, run.ids)).sort(cmp);
  return { clients, servers, rooms, results };
}

async function runOp(run, [, op], reference) {
  const marks = { seen: run.seen.length, clients: {} };
  for (const [label, client] of Object.entries(run.clients)) marks.clients[label] = client.received.length;
  const results = {};
  const ctx = {
    io: (server, nsp = '/') => run.cluster.servers[server].io.of(nsp),
    record: (key, value) => {
      results[key] = value;
    },
    ids: run.ids,
    attachments: run.attachments,
    removeServer: (index) => run.cluster.removeServer(run.cluster.servers[index]),
    idOf: (label) => [...run.ids].find(([, l]) => l === label)[0], // also once disconnected
  };
  await op(ctx);
  if (reference) {
    // Bounded: a difference ends the wait and shows in the comparison.
    await waitFor(() => str(observe(run, marks, results)) === str(reference), 5000, 'the reference observation').catch(() => {});
  }
  await settle(run);
  if (!reference) {
    // The reference settles until a further round of barriers changes nothing (bounded).
    for (let i = 0; i < 5; i++) {
      const before = str(observe(run, marks, results));
      await settle(run);
      if (str(observe(run, marks, results)) === before) break;
    }
  }
  return observe(run, marks, results);
}

async function runScript(kinds, prefix, adapterOpts, ops, attachments) {
  const run = await startCluster(kinds, prefix, adapterOpts);
  run.attachments = attachments;
  const observations = [];
  try {
    for (const op of ops) observations.push(await runOp(run, op, null));
  } finally {
    await run.cluster.close();
  }
  return observations;
}

// What an emitter can do, run by a sender: a pure-JS server with no clients (the reference) or an emitter.
const EMITTER_OPS = [
  ['emit', (s) => {
    s.emit('e', 1, 'two', { three: [3] });
    s.emit('empty');
  }],
  ['unicode, numbers, dates', (s) => s.emit('u', LONE, SEPS, NUMBERS, WHEN, { when: WHEN })],
  ['binary', (s) => {
    s.emit('b', BIN.buf, { deep: [[BIN.u8, BIN.slice]] }, WHEN);
    s.emit('b2', [BIN.i16, BIN.f64], BIN.empty);
  }],
  ['large payloads', (s) => {
    s.emit('big', 'x'.repeat(9000));
    s.emit('big2', 'é'.repeat(5000), { k: 1 });
  }],
  ['values JSON writes in its own way', (s) => s.emit('odd', ...odd())],
  ['rooms', (s) => {
    s.to('a').emit('r1');
    s.to(['a', 'b']).except('c').emit('r2', 2);
    s.except('a').emit('r3', 3);
    s.to(7).except(8).emit('r7', 7);
    s.to('b').compress(false).emit('cf', 'not compressed');
  }],
  ['another namespace', (s) => s.of('/other').to('a').emit('o', BIN.buf, 'other')],
  ['serverSideEmit', (s) => {
    s.serverSideEmit('sse', 1, WHEN, BIN.buf, NUMBERS);
    s.serverSideEmit('sse-plain', LONE, WHEN, { n: NUMBERS });
    s.serverSideEmit('sse-odd', ...odd());
    // @socket.io/postgres-emitter's BroadcastOperator has serverSideEmit too (rooms do not apply to it);
    // a Socket.IO server's has not.
    (s.constructor.name === 'Server' ? s : s.to('a').except('b')).serverSideEmit('sse-plain', 'through to()', WHEN);
  }],
  ['socketsJoin and socketsLeave', (s) => {
    s.in('a').socketsJoin(['ej1', 'ej2']);
    s.except('a').socketsJoin('ej3');
    s.in('c').socketsLeave('c');
    s.in(7).socketsJoin(70);
    s.of('/other').socketsJoin('eo');
  }],
  ['emit to joined rooms', (s) => {
    s.to('ej1').emit('ej1', 1);
    s.to('ej3').except('ej2').emit('ej3', 3);
    s.to(70).emit('seventy');
  }],
  ['disconnectSockets', (s) => {
    s.in('ej3').except(7).disconnectSockets();
    s.of('/other').in('eo').disconnectSockets(true);
  }],
];

const { Emitter } = require('../lib');
const { Emitter: PureEmitter } = require('@socket.io/postgres-emitter');

// The emitter script: on the reference, a 4th pure-JS server (no clients) sends.
async function runEmitterScript(run, sender, references) {
  const observations = [];
  for (let i = 0; i < EMITTER_OPS.length; i++) {
    const [name, op] = EMITTER_OPS[i];
    observations.push(await runOp(run, [name, () => op(sender)], references && references[i]));
  }
  return observations;
}

// payloadThreshold 100: nearly every message goes through the attachment table (msgpack). Not there: values
// @msgpack/msgpack refuses (a symbol, a function: the pure-JS adapter then sends nothing) or writes otherwise
// than JSON.stringify (it calls no toJSON).
const CONFIGS = [
  ['default options', {}, [['native', 'pure', 'native'], ['pure', 'native', 'pure']]],
  ['payloadThreshold 100', { payloadThreshold: 100, attachments: true }, [['native', 'pure', 'native']]],
];

describe.each(CONFIGS)('differential: the same script on pure-JS and mixed clusters, %s', (title, config, mixes) => {
  const { attachments, ...adapterOpts } = config;
  const ops = OPS.filter(([name]) => !(attachments && name === 'values JSON writes in its own way'));
  const prefix = attachments ? 'difft' : 'diff';
  let reference;
  beforeAll(async () => {
    reference = await runScript(['pure', 'pure', 'pure'], `${prefix}ref`, adapterOpts, ops, attachments);
  });

  describe.each(mixes.map((kinds) => [kinds]))('servers %j', (kinds) => {
    let run;
    beforeAll(async () => {
      run = await startCluster(kinds, `${prefix}${kinds.map((k) => k[0]).join('')}`, adapterOpts);
      run.attachments = attachments;
    });
    afterAll(() => run && run.cluster.close());

    test.each(ops.map((op, i) => [op[0], i]))('%s', async (_, i) => {
      const observation = await runOp(run, ops[i], reference[i]);
      expect(observation).toEqual(reference[i]);
    });
  });
});

describe('differential: emitters and a pure-JS server sending alike', () => {
  let reference;
  beforeAll(async () => {
    const run = await startCluster(['pure', 'pure', 'pure'], 'diffemref');
    const sender = await run.cluster.addServer();
    run.cluster.servers.pop(); // not one of the servers the script observes
    try {
      reference = await runEmitterScript(run, sender.io, null);
    } finally {
      await new Promise((resolve) => sender.io.close(() => resolve()));
      await sender.pool.end();
      await run.cluster.close();
    }
  });

  describe.each([
    ['this package\'s Emitter', ['native', 'pure', 'native']],
    ['this package\'s Emitter', ['pure', 'native', 'pure']],
    // The pure-JS emitter's messages have no nsp: the pure-JS adapter drops them (README: upstream defects).
    ['@socket.io/postgres-emitter', ['native', 'native', 'native']],
  ])('%s, servers %j', (kind, kinds) => {
    let run;
    let sender;
    let close;
    beforeAll(async () => {
      run = await startCluster(kinds, `diffem${kinds.map((k) => k[0]).join('')}`);
      const channelPrefix = run.cluster.adapterOpts.channelPrefix;
      if (kind.startsWith('@')) {
        const { Pool } = require('pg');
        const pool = new Pool({ connectionString: process.env.DATABASE_URL });
        sender = new PureEmitter(pool, '/', { channelPrefix });
        // Its of() forgets the options (README: upstream defects): a second emitter instead.
        sender.of = (nsp) => new PureEmitter(pool, nsp, { channelPrefix });
        close = () => pool.end();
      } else {
        sender = new Emitter(process.env.DATABASE_URL, '/', { channelPrefix });
        close = () => sender.close();
      }
    });
    afterAll(async () => {
      if (close) await close();
      if (run) await run.cluster.close();
    });

    test.each(EMITTER_OPS.map((op, i) => [op[0], i]))('%s', async (name, i) => {
      const observation = await runOp(run, [name, () => EMITTER_OPS[i][1](sender)], reference[i]);
      expect(observation).toEqual(reference[i]);
    });
  });
});
