"use strict";
// A received plain broadcast relayed without decoding and re-encoding it: the native core hands over
// the packet's data already as the JSON Socket.IO writes to clients (binding/core/broadcast_relay.h).
// The packet keeps Socket.IO's broadcast path; its `data` is parsed only when something reads it
// (onAnyOutgoing listeners, user code), and the adapter's _encode writes the JSON as it is.

const RELAY = Symbol("postgres-adapter relayed data");
const EVENT = 2; // socket.io-parser packet types
const BINARY_EVENT = 5;

// A packet whose `data` is the relayed JSON, parsed on first read. `data` is an accessor of the
// prototype (one per instance would cost as much as the parse it saves on small packets), enumerable
// for for..in; not an own field, so the encoder gets a plain copy (encodable). The other fields are
// the received ones.
class RelayedPacket {
  constructor(received, json, bytes, binaries) {
    // bytes: json's UTF-8 bytes, or undefined; binaries: an attachment's, in the order of their
    // placeholders in json (none: []); tail: the arguments appended before anything read the data
    // (the recovery offset); read: the data was parsed (or replaced) since.
    this[RELAY] = { json, bytes, binaries, tail: [], value: undefined, read: false };
    for (const key in received) {
      if (key === "data") continue;
      // A "__proto__" field stays a field, as JSON.parse made it.
      if (key === "__proto__") Object.defineProperty(this, key, { value: received[key], writable: true, enumerable: true, configurable: true });
      else this[key] = received[key];
    }
  }
}
Object.defineProperty(RelayedPacket.prototype, "data", {
  enumerable: true,
  configurable: true,
  get() {
    const state = this[RELAY];
    if (!state.read) {
      state.read = true;
      state.value = parseData(state.json, state.binaries);
      for (const arg of state.tail) state.value.push(arg);
    }
    return state.value;
  },
  set(value) {
    const state = this[RELAY];
    state.read = true;
    state.value = value;
  },
});

// Consecutive broadcasts of one sender mostly share their envelope (type, uid, nsp, rooms, flags):
// it is parsed once, and each message gets fresh objects copied from that parse (three times
// cheaper than JSON.parse), as JSON.parse would have made them.
class EnvelopeParser {
  constructor() {
    this.text = null;
    this.parsed = null;
  }

  parse(text) {
    if (text !== this.text) {
      this.parsed = JSON.parse(text);
      this.text = text;
    }
    return copyJson(this.parsed);
  }
}

function copyJson(value) {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyJson(value[i]);
    return out;
  }
  const out = {};
  for (const key in value) {
    // A "__proto__" field stays a field, as JSON.parse made it.
    if (key === "__proto__") Object.defineProperty(out, key, { value: copyJson(value[key]), writable: true, enumerable: true, configurable: true });
    else out[key] = copyJson(value[key]);
  }
  return out;
}

// The data as Socket.IO's decoder would rebuild it: each {"_placeholder":true,"num":N} object the core
// wrote becomes binaries[N] (the core relays no data with a "_placeholder" key of its own).
function parseData(json, binaries) {
  const data = JSON.parse(json);
  return binaries.length === 0 ? data : withBinaries(data, binaries);
}

function withBinaries(value, binaries) {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = withBinaries(value[i], binaries);
    return value;
  }
  if (value._placeholder === true) return binaries[value.num];
  for (const key of Object.keys(value)) value[key] = withBinaries(value[key], binaries);
  return value;
}

// The packet `received` (its data a placeholder) with the relayed data as its data. wire: the data's
// JSON, or [JSON, its UTF-8 bytes or undefined, ...binaries] (binding/napi/native_client.cc).
function relayPacket(received, wire) {
  return typeof wire === "string"
    ? new RelayedPacket(received, wire, undefined, [])
    : new RelayedPacket(received, wire[0], wire[1], wire.slice(2));
}

// The relayed data, parsed now (the server's encoder is not Socket.IO's default one).
function parseWire(wire) {
  return typeof wire === "string" ? JSON.parse(wire) : parseData(wire[0], wire.slice(2));
}

// The data's JSON with its appended arguments, as JSON.stringify would write the whole array; undefined
// once something read or replaced the data (it may have changed it: the normal path encodes it then).
function relayedJson(packet) {
  const state = packet[RELAY];
  if (state === undefined || state.read) return undefined;
  if (state.tail.length === 0) return state.json;
  const head = state.json.slice(0, -1); // the JSON of an array ends with "]"
  const empty = /^\[\s*$/.test(head);
  const tail = JSON.stringify(state.tail);
  return head + (empty ? "" : ",") + tail.slice(1);
}

// The argument list where socket.io-adapter appends to the data of an unread relayed packet (its
// conditions, e.g. for the recovery offset, stay socket.io-adapter's), or undefined.
function appendTarget(packet) {
  const state = packet[RELAY];
  return state !== undefined && !state.read ? state.tail : undefined;
}

// A fresh parse of the data as received (without appended arguments), or undefined: not relayed.
function receivedData(packet) {
  const state = packet[RELAY];
  return state === undefined ? undefined : () => parseData(state.json, state.binaries);
}

// Does `encoder` write a packet as Socket.IO's default encoder does: "2", the namespace and a comma
// unless "/", then JSON.stringify(data) without replacer? Checked on the server's options (no custom
// parser), on the instance (no replacer) and by encoding samples (a parser that writes anything else,
// msgpack for instance, fails them).
const SAMPLES = [
  { type: EVENT, nsp: "/", data: ["ev", 1, 2.5, null, true, "\u2028\ud800\"\\\n", { a: [{}], toJSON: "x", 10: [] }] },
  { type: EVENT, nsp: "/a,b", data: ["e", { "": "" }] },
];
// With binaries: "5", their count, "-", the rest as for an EVENT with placeholders, then the binaries.
const binarySample = () => ({ type: EVENT, nsp: "/b", data: ["e", [Buffer.from([1])], { x: Buffer.from([2, 3]) }] });
const BINARY_EXPECTED = '52-/b,["e",[{"_placeholder":true,"num":0}],{"x":{"_placeholder":true,"num":1}}]';
function isDefaultJsonEncoder(encoder, server) {
  if (!encoder || typeof encoder.encode !== "function" || encoder.replacer !== undefined) return false;
  if (server && server.opts && server.opts.parser) return false;
  try {
    const plain = SAMPLES.every((packet) => {
      const out = encoder.encode({ ...packet, data: structuredClone(packet.data) });
      return Array.isArray(out) && out.length === 1 && out[0] === expectedString(packet, JSON.stringify(packet.data));
    });
    const out = encoder.encode(binarySample());
    const binary = Array.isArray(out) && out.length === 3 && out[0] === BINARY_EXPECTED &&
      Buffer.from(out[1]).equals(Buffer.from([1])) && Buffer.from(out[2]).equals(Buffer.from([2, 3]));
    return plain && binary;
  } catch (_) {
    return false;
  }
}

function expectedString(packet, dataJson) {
  return `${EVENT}${packet.nsp && packet.nsp !== "/" ? packet.nsp + "," : ""}${dataJson}`;
}

// What Socket.IO's default encoder returns for a relayed packet that nothing has read, or undefined:
// with binaries, a BINARY_EVENT ("5", their count and "-", then as for an EVENT) followed by them.
function encodeRelayed(packet) {
  if (packet.type !== EVENT || packet.id != null) return undefined;
  const json = relayedJson(packet);
  if (json === undefined) return undefined;
  const { binaries } = packet[RELAY];
  if (binaries.length === 0) return [expectedString(packet, json)];
  return [`${BINARY_EVENT}${binaries.length}-${expectedString(packet, json).slice(1)}`, ...binaries];
}

// The packet to hand to the encoder when encodeRelayed gave nothing: socket.io-parser looks for binaries
// in a packet's own fields only (hasBinary), and a relayed packet's data is the prototype's accessor.
function encodable(packet) {
  if (packet[RELAY] === undefined) return packet;
  const { [RELAY]: _state, ...fields } = packet;
  return { ...fields, data: packet.data };
}

// The websocket frame of a relayed packet that nothing has read, from the bytes the core handed over
// (no UTF-8 encoding of the string here), as [header and prefix, bytes]; undefined: none. The bytes
// are the data's JSON: the frame is the engine.io message "4" of encodeRelayed's single string.
function relayedFrame(packet) {
  const state = packet[RELAY];
  if (state === undefined || state.read || state.bytes === undefined || state.tail.length !== 0) return undefined;
  if (packet.type !== EVENT || packet.id != null) return undefined;
  return [frameHead(Buffer.from(`4${expectedString(packet, "")}`), state.bytes.length), state.bytes];
}

// RFC 6455 5.2: a final text frame (0x81), unmasked (server to client), its payload length in 7, 16
// or 64 bits; followed here by the payload's first bytes (`prefix`) since it and the rest form one.
function frameHead(prefix, rest) {
  const n = prefix.length + rest;
  const size = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const head = Buffer.allocUnsafe(size + prefix.length);
  head[0] = 0x81;
  if (size === 2) {
    head[1] = n;
  } else if (size === 4) {
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head[1] = 127;
    head.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    head.writeUInt32BE(n >>> 0, 6);
  }
  prefix.copy(head, size);
  return head;
}

module.exports = {
  relayPacket,
  parseWire,
  appendTarget,
  receivedData,
  isDefaultJsonEncoder,
  encodeRelayed,
  encodable,
  relayedFrame,
  relayedJson,
  EnvelopeParser,
};
