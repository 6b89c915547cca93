// Interop of the native codecs (exports._codec) with JSON.* and @msgpack/msgpack 2.8.
const path = require('path');
const msgpack = require('@msgpack/msgpack');

const addon = require(process.env.PGADAPTER_BINARY || path.join(__dirname, '../build/Release/pgadapter.node'));
const codec = addon._codec;

// Jest runs tests in a vm context, so objects the addon creates (Date, Error, Object) come from
// another realm than this file's globals: no instanceof / prototype identity checks on them.
const isDate = (v) => Object.prototype.toString.call(v) === '[object Date]';

// Comparable form: binary (Buffer or Uint8Array) -> {bin: hex}, Date -> {date: ms}.
function norm(v) {
  if (ArrayBuffer.isView(v)) return { bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (isDate(v)) return { date: v.getTime() };
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = norm(v[k]);
    return o;
  }
  return v;
}

// Asserts fn throws an Error (of any realm) whose name and message match.
function expectThrow(fn, name = 'Error', message = /./) {
  let caught;
  try { fn(); } catch (e) { caught = e; }
  expect(Object.prototype.toString.call(caught)).toBe('[object Error]');
  expect(caught.name).toBe(name);
  expect(caught.message).toMatch(message);
}

const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

const big = 'x'.repeat(70000) + 'é😀' + '\u2028'.repeat(1000);
const clusterBroadcast = {
  type: 3,
  data: {
    packet: { type: 2, data: ['chat message', { text: 'héllo 👋', n: 42, nested: [1, [2, [3, { deep: true }]]] }, Buffer.from([1, 2, 3])] },
    opts: { rooms: ['room-1', 'room-2'], except: [], flags: { volatile: false, local: undefined } },
  },
  uid: 'db9411325bb3b6f5',
  nsp: '/',
};

const msgpackValues = {
  clusterBroadcast,
  heartbeat: { type: 2, uid: 'abc', nsp: '/' },
  fetchResponse: {
    type: 6,
    data: { requestId: 'r1', sockets: [{ id: 's1', handshake: { time: new Date(1704164645678).toString(), issued: 1704164645678 }, rooms: ['s1'], data: {} }] },
    uid: 'u', nsp: '/admin',
  },
  unicode: { s: 'ünïcödé 中文 עברית', emoji: '😀👨‍👩‍👧‍👦🏳️‍🌈', ctrl: '\u0000\u0001\u001f\u007f' },
  strings: ['', 'a'.repeat(31), 'a'.repeat(32), 'a'.repeat(255), 'a'.repeat(256), 'a'.repeat(65535), 'a'.repeat(65536), big],
  buffers: [Buffer.alloc(0), Buffer.alloc(255, 7), Buffer.alloc(256, 8), Buffer.alloc(65536, 9), Buffer.alloc(70000, 1)],
  typedArrays: [new Uint8Array([1, 2, 3]), new Int16Array([-1, 2]), new Float64Array([1.5]), new Uint8Array(new ArrayBuffer(8), 2, 3)],
  dates: [new Date(0), new Date(1704164645678), new Date(-1), new Date(-123456789), new Date(-62167219200001),
    new Date(253402300800000), new Date(4294967295000), new Date(4294967296000), new Date(17179869184000), new Date(8.64e15), new Date(-8.64e15)],
  ints: [0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, Number.MAX_SAFE_INTEGER,
    -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, Number.MIN_SAFE_INTEGER],
  floats: [0.1, -0.5, 1.5, 1e300, -1e-300, 5e-324, Number.MAX_VALUE, 2 ** 53, -(2 ** 53), 2 ** 64, NaN, Infinity, -Infinity, -0],
  nulls: { a: null, b: undefined, c: [undefined, null, 1] },
  nested: { a: [{ b: [{ c: [[[]]] }, {}] }], m: { '': 1, '1': 2, 'key with space': 3, __proto__x: 4 } },
  booleans: [true, false],
  topUndefined: undefined,
  topNull: null,
  topString: 'hello',
  topNumber: 3.25,
  bigArray: Array.from({ length: 70000 }, (_, i) => i),
  bigMap: Object.fromEntries(Array.from({ length: 70000 }, (_, i) => ['k' + i, i])),
};

describe('msgpack interop with @msgpack/msgpack', () => {
  for (const [name, v] of Object.entries(msgpackValues)) {
    test(name, () => {
      const js = msgpack.encode(v, { maxDepth: 1000 });
      const ours = codec.toMsgpack(v);
      expect(Buffer.isBuffer(ours)).toBe(true);
      expect(hex(ours)).toBe(hex(js));
      const reference = norm(msgpack.decode(js));
      expect(norm(codec.fromMsgpack(Buffer.from(js)))).toEqual(reference);
      expect(norm(msgpack.decode(ours))).toEqual(reference);
    });
  }

  test('decoded types: Buffer for bin, Date for timestamps, -0 stays 0', () => {
    const out = codec.fromMsgpack(msgpack.encode({ b: new Uint8Array([5]), d: new Date(-1), z: -0 }));
    expect(Buffer.isBuffer(out.b)).toBe(true);
    expect(isDate(out.d)).toBe(true);
    expect(out.d.getTime()).toBe(-1);
    expect(Object.is(out.z, 0)).toBe(true);
  });

  test('ext types other than -1 decode like ExtData', () => {
    const bytes = Buffer.from('c703058a0b0c', 'hex');
    const js = msgpack.decode(bytes);
    const ours = codec.fromMsgpack(bytes);
    expect(ours.type).toBe(js.type);
    expect(hex(ours.data)).toBe(hex(js.data));
  });

  test('timestamp forms from other encoders (64-bit with nanoseconds, 96-bit)', () => {
    for (const h of ['d6ff00000001', 'd7ff000003e800000001', 'c70cff0000000000000000ffffffff', 'c70cff3b9ac9ff0000000000000000']) {
      const bytes = Buffer.from(h, 'hex');
      expect(codec.fromMsgpack(bytes).getTime()).toBe(msgpack.decode(bytes).getTime());
    }
  });

  test('integer map keys become strings', () => {
    const bytes = Buffer.from('8205a178ffa179', 'hex');
    expect(codec.fromMsgpack(bytes)).toEqual(msgpack.decode(bytes));
  });

  test('map keys with NUL, lone surrogates, digits or non-ASCII arrive exactly as sent (msgpack and JSON)', () => {
    const keys = ['a\u0000b', '\u0000', 'x\ud800', '\udc00', '7', '01', 'é中😀', ''];
    const obj = Object.fromEntries(keys.map((k, i) => [k, i]));
    for (const out of [codec.fromMsgpack(codec.toMsgpack(obj)), codec.fromJson(codec.toJson(obj))]) {
      expect(Object.keys(out)).toEqual(Object.keys(obj));
      expect(out).toEqual(obj);
    }
  });

  test('one limit of 2^21 values (array elements and object keys) for encoding and decoding', () => {
    const most = 2 ** 21;
    const bytes = codec.toMsgpack({ a: new Array(most - 1).fill(0) }); // the key "a" counts too
    expect(codec.fromMsgpack(bytes).a).toHaveLength(most - 1);
    expect(() => codec.toMsgpack({ a: new Array(most).fill(0) })).toThrow(expect.objectContaining({ code: 'ENCODE_FAILED' }));
    // A row claiming more than it holds is refused from its header, before anything is built.
    expect(() => codec.fromMsgpack(Buffer.from([0xdd, 0, 0x20, 0, 1]))).toThrow(/more than 2097152 values/);
  });

  test('__proto__ keys become own properties, never the prototype', () => {
    const out = codec.fromMsgpack(Buffer.from('81a95f5f70726f746f5f5f81a17801', 'hex'));
    const objectPrototype = Object.getPrototypeOf(codec.fromJson('{}'));
    expect(Object.getPrototypeOf(out)).toBe(objectPrototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    const parsed = codec.fromJson('{"__proto__":{"polluted":1}}');
    expect(Object.getPrototypeOf(parsed)).toBe(objectPrototype);
    expect(parsed.polluted).toBeUndefined();
    expect(parsed).toEqual(JSON.parse('{"__proto__":{"polluted":1}}'));
    expect({}.polluted).toBeUndefined();
  });

  test('every truncation of a message throws a catchable Error', () => {
    const bytes = codec.toMsgpack(clusterBroadcast);
    for (let n = 0; n < bytes.length; n++) {
      expectThrow(() => codec.fromMsgpack(bytes.subarray(0, n)), 'Error', /Truncated/);
    }
    expect(() => codec.fromMsgpack(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/Extra 1 byte/);
  });

  test('garbage, bad keys, bad timestamps and huge claimed sizes throw', () => {
    for (const h of ['c1', '81c001', '819001', 'd5ff0000', 'ddffffffff', 'dfffffffff', 'c6ffffffff', 'c9ffffffff05', 'dbffffffff']) {
      expectThrow(() => codec.fromMsgpack(Buffer.from(h, 'hex')));
    }
  });

  test('random bytes never crash', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    const base = codec.toMsgpack(clusterBroadcast);
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(base);
      for (let k = 0; k < 3; k++) b[rnd() % b.length] = rnd() & 255;
      try { codec.fromMsgpack(b.subarray(0, rnd() % (b.length + 1))); } catch (e) { expect(e.name).toBe('Error'); }
    }
  });

  test('100000 levels of nesting throw instead of crashing', () => {
    const deep = Buffer.concat([Buffer.alloc(100000, 0x91), Buffer.from([1])]);
    expect(() => codec.fromMsgpack(deep)).toThrow(/nested too deeply/);
    let v = 1;
    for (let i = 0; i < 100000; i++) v = [v];
    expectThrow(() => codec.toMsgpack(v), 'TypeError', /too deeply nested/);
    const circular = { a: 1 };
    circular.self = circular;
    expect(() => codec.toMsgpack(circular)).toThrow('Message is too deeply nested or circular');
  });

  test('invalid Date encodes as nil (documented divergence: @msgpack/msgpack writes epoch 0)', () => {
    expect(hex(codec.toMsgpack(new Date(NaN)))).toBe('c0');
  });
});

class Point {
  constructor(x, y) { this.x = x; this.y = y; }
  get sum() { return this.x + this.y; }
  norm() { return Math.hypot(this.x, this.y); }
}
class Money {
  constructor(c) { this.cents = c; }
  toJSON(key) { return { amount: this.cents / 100, key }; }
}

function jsonValues() {
  const inherited = Object.create({ inheritedEnumerable: 1 });
  inherited.own = 2;
  const withSymbol = { a: 1, [Symbol('s')]: 2 };
  const nonEnumerable = Object.defineProperty({ visible: 1 }, 'hidden', { value: 2, enumerable: false });
  const sparse = [1, , 3]; // holes on purpose
  sparse[6] = 7;
  const arrWithProps = [1, 2];
  arrWithProps.extra = 'ignored';
  return [
    null, true, false, 0, -0, 1, -1, 0.1, 1e21, 1e-7, 1.5e-7, 123456789012345680000, 5e-324, 1.7976931348623157e308,
    Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, 2 ** 64, NaN, Infinity, -Infinity, 1e-6, 0.000001234,
    '', 'plain', 'quote " backslash \\ slash /', '\b\f\n\r\t', '\u0000\u0001\u0002\u001e\u001f\u007f\u0080',
    '\u2028\u2029', 'é中😀👨‍👩‍👧', big,
    [], {}, [undefined, () => 1, Symbol('x'), null], { a: undefined, b: () => 1, c: Symbol('y'), d: null },
    sparse, arrWithProps, { b: 1, 2: 'two', 1: 'one', a: 2 },
    new Date(0), new Date(1704164645678), new Date(-1), new Date(-62198755200000), new Date(253402300800000),
    new Date(8.64e15), new Date(NaN), { when: new Date(NaN) },
    { toJSON() { return 'custom'; } }, { nested: { toJSON(k) { return 'key=' + k; } } }, [{ toJSON(k) { return k; } }],
    { toJSON() { return undefined; } }, { a: { toJSON() { return undefined; } } },
    { toJSON() { return { toJSON() { return 'not called twice'; } }; } },
    new Point(1, 2), new Money(1234), inherited, withSymbol, nonEnumerable,
    Buffer.from('hi'), { buf: Buffer.from([0, 255]) },
    new Map([[1, 2]]), new Set([1]), /re/g, new Error('e'),
    clusterBroadcast, msgpackValues.fetchResponse, msgpackValues.nested,
  ];
}

describe('toJson matches JSON.stringify', () => {
  test('representative values', () => {
    for (const v of jsonValues()) {
      // JSON.stringify gives undefined (not a string) where toJson writes null.
      expect([v, codec.toJson(v)]).toEqual([v, JSON.stringify(v) ?? 'null']);
    }
  });

  test('top-level undefined and functions give null', () => {
    expect(codec.toJson(undefined)).toBe('null');
    expect(codec.toJson(() => 1)).toBe('null');
  });

  test('random doubles', () => {
    const buf = new DataView(new ArrayBuffer(8));
    let seed = 42;
    const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0);
    const values = [];
    for (let i = 0; i < 20000; i++) {
      buf.setUint32(0, rnd());
      buf.setUint32(4, rnd());
      values.push(buf.getFloat64(0));
      values.push(Math.random() * 10 ** ((rnd() % 60) - 30));
      values.push((rnd() % 2000000) / 1000 - 1000);
    }
    const ours = codec.toJson(values);
    expect(ours).toBe(JSON.stringify(values));
  });

  test('BigInt throws like JSON.stringify', () => {
    expectThrow(() => codec.toJson({ a: 1n }), 'TypeError', /^Do not know how to serialize a BigInt$/);
    expect(() => JSON.stringify({ a: 1n })).toThrow(TypeError);
  });

  test('errors thrown by toJSON propagate', () => {
    expect(() => codec.toJson({ toJSON() { throw new RangeError('boom'); } })).toThrow(RangeError);
    expect(codec.toJson([1])).toBe('[1]');
  });

  test('lone surrogates are kept, as JSON.stringify escapes them (and a real U+FFFD stays one)', () => {
    for (const s of ['a\ud800b', '\udfff', 'x\ud83d', '\ud83d\ude00\udc00', 'a\ufffdb\ud800', 'y'.repeat(300) + '\udbff']) {
      expect(codec.toJson(s)).toBe(JSON.stringify(s));
      expect(codec.toJson({ [s]: [s] })).toBe(JSON.stringify({ [s]: [s] }));
    }
  });
});

describe('strings of every length class the encoder reads them by', () => {
  // Up to 251 bytes, strings go through a stack buffer, up to 64 Ki UTF-16 units through room for 3 bytes a
  // unit, longer ones are measured first; JSON escapes are found 64 bytes at a time.
  const fills = ['a', 'é', '☃', '😀', '\ud800', '"', '\n'];
  const lengths = [0, 1, 63, 64, 65, 84, 85, 86, 127, 128, 129, 251, 252, 253, 65535, 65536, 65537, 70000];
  test.each(fills)('filled with %j, each length with a special character at its start, middle and end', (fill) => {
    for (const units of lengths) {
      const body = fill.repeat(Math.ceil(units / fill.length)).slice(0, units);
      for (const s of [body, `"${body}`, body.slice(0, units >> 1) + '\\' + body.slice(units >> 1), `${body}\ud83d`, `${body}é`]) {
        expect(codec.toJson(s)).toBe(JSON.stringify(s));
        // @msgpack/msgpack writes U+FFFD for a lone surrogate past 200 characters (README); ours keeps it.
        if (s.length > 200 && !s.isWellFormed()) expect(codec.fromMsgpack(codec.toMsgpack(s))).toBe(s);
        else expect(hex(codec.toMsgpack(s))).toBe(hex(msgpack.encode(s)));
      }
    }
  });

  // In a child process, whose memory is its own. One 64 Ki-unit string, shared 2000 times then 16385
  // times (1 GiB and 64 KiB: over the limit): each copy the encoder keeps may take the string's bytes,
  // not the 3 bytes a unit it may write into, or the 1 GiB limit would let a message take 3 GiB.
  test('a message of many 64 Ki-unit strings holds their bytes, and past 1 GiB is refused (ENCODE_FAILED) within about 1 GiB', async () => {
    const binary = process.env.PGADAPTER_BINARY || path.join(__dirname, '../build/Release/pgadapter.node');
    const script = `
      const codec = require(${JSON.stringify(binary)})._codec;
      const s = 'x'.repeat(65536);
      const rss = () => process.memoryUsage().rss;
      let base = rss(), during = 0;
      codec.toMsgpack([...new Array(2000).fill(s), { toJSON() { during = rss(); return 0; } }]);
      const held = during - base;
      base = rss();
      let code = null;
      try { codec.toMsgpack(new Array(16385).fill(s)); } catch (e) { code = e.code; }
      const peak = process.resourceUsage().maxRSS * 1024 - base;
      console.log(JSON.stringify({ held, peak, code }));
    `;
    const { stdout, stderr } = await new Promise((resolve) => {
      require('child_process').execFile(process.execPath, ['-e', script], { env: process.env, timeout: 120000 },
        (err, out, errOut) => resolve({ stdout: out, stderr: err ? `${err.code ?? err.signal} ${errOut}` : errOut }));
    });
    expect(stderr).toBe('');
    const { held, peak, code } = JSON.parse(stdout);
    expect(code).toBe('ENCODE_FAILED');
    const data = 2000 * 65536;
    expect(held).toBeLessThan(1.5 * data);
    expect(peak).toBeLessThan(1.5 * 2 ** 30);
  });
});

describe('fromJson matches JSON.parse', () => {
  test('parses what JSON.stringify writes', () => {
    for (const v of jsonValues()) {
      const text = JSON.stringify(v);
      if (text === undefined) continue;
      expect(codec.fromJson(text)).toEqual(JSON.parse(text));
    }
  });

  test('hand-written inputs', () => {
    const inputs = [
      ' { "a" : [ 1 , 2 ] } ', '"\\u0041\\u00e9\\ud83d\\ude00\\/"', '"\\ud800"', '"\\udc00\\ud800"', '{"\\ud800":"\\udfff\\ud83d\\ude00"}', '1e400', '-1e400',
      '1e-400', '12345678901234567890', '9007199254740993', '-9007199254740991', '0.1', '1E2', '1.0', '-0.0e5',
      '{"a":1,"b":2,"a":3}', '[[[[]]]]', '"\\u2028"', '{"":""}', '\t\r\n null \t\r\n',
    ];
    for (const t of inputs) {
      expect([t, codec.fromJson(t)]).toEqual([t, JSON.parse(t)]);
    }
    expect(Object.is(codec.fromJson('-0'), -0)).toBe(true);
    expect(Object.keys(codec.fromJson('{"b":1,"a":2,"b":3}'))).toEqual(['b', 'a']);
  });

  test('malformed JSON throws a catchable Error', () => {
    const bad = ['', ' ', '[1,]', '{"a":1,}', '01', '1.', '.5', '+1', '-', 'tru', 'nul', '[1] x', '{a:1}', "'x'",
      '"\u0001"', '"\\x"', '"\\u12g4"', '"abc', '[', '{"a"', 'NaN', '[1 2]', 'undefined', '\ufeff{}'];
    for (const t of bad) {
      expect(() => JSON.parse(t)).toThrow();
      expectThrow(() => codec.fromJson(t));
    }
  });

  test('100000 levels of nesting throw instead of crashing', () => {
    expect(() => codec.fromJson('['.repeat(100000) + ']'.repeat(100000))).toThrow(/nested too deeply/);
    expectThrow(() => codec.fromJson('{"a":'.repeat(100000)), 'Error', /nested too deeply/);
    let v = {};
    for (let i = 0; i < 100000; i++) v = { v };
    expect(() => codec.toJson(v)).toThrow('Message is too deeply nested or circular');
    expect(codec.fromJson('[1]')).toEqual([1]); // still usable afterwards
  });
});
