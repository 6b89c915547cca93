"use strict";
// A received plain broadcast relayed without decoding and re-encoding it: the native core hands over
// the packet's data already as the JSON Socket.IO writes to clients (binding/core/broadcast_relay.h).
// The packet keeps Socket.IO's broadcast path; its `data` is parsed only when something reads it
// (onAnyOutgoing listeners, user code), and the adapter's _encode writes the JSON as it is.

const RELAY = Symbol("postgres-adapter relayed data");
const EVENT = 2; // socket.io-parser packet type

// A packet whose `data` is the relayed JSON, parsed on first read. `data` is an accessor of the
// prototype (one per instance would cost as much as the parse it saves on small packets), enumerable
// so that for..in (socket.io-parser's hasBinary) sees it; the other fields are the received ones.
class RelayedPacket {
  constructor(received, json) {
    // tail: the arguments appended before anything read the data (the recovery offset); read: the
    // data was parsed (or replaced) since.
    this[RELAY] = { json, tail: [], value: undefined, read: false };
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
      state.value = JSON.parse(state.json);
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

// The packet `received` (its data a placeholder) with the relayed JSON as its data.
function relayPacket(received, json) {
  return new RelayedPacket(received, json);
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
  return state === undefined ? undefined : () => JSON.parse(state.json);
}

// Does `encoder` write a packet as Socket.IO's default encoder does: "2", the namespace and a comma
// unless "/", then JSON.stringify(data) without replacer? Checked on the server's options (no custom
// parser), on the instance (no replacer) and by encoding samples (a parser that writes anything else,
// msgpack for instance, fails them).
const SAMPLES = [
  { type: EVENT, nsp: "/", data: ["ev", 1, 2.5, null, true, "\u2028\ud800\"\\\n", { a: [{}], toJSON: "x", 10: [] }] },
  { type: EVENT, nsp: "/a,b", data: ["e", { "": "" }] },
];
function isDefaultJsonEncoder(encoder, server) {
  if (!encoder || typeof encoder.encode !== "function" || encoder.replacer !== undefined) return false;
  if (server && server.opts && server.opts.parser) return false;
  try {
    return SAMPLES.every((packet) => {
      const out = encoder.encode({ ...packet, data: structuredClone(packet.data) });
      return Array.isArray(out) && out.length === 1 && out[0] === expectedString(packet, JSON.stringify(packet.data));
    });
  } catch (_) {
    return false;
  }
}

function expectedString(packet, dataJson) {
  return `${EVENT}${packet.nsp && packet.nsp !== "/" ? packet.nsp + "," : ""}${dataJson}`;
}

// What Socket.IO's default encoder returns for a relayed packet that nothing has read, or undefined.
function encodeRelayed(packet) {
  if (packet.type !== EVENT || packet.id != null) return undefined;
  const json = relayedJson(packet);
  return json === undefined ? undefined : [expectedString(packet, json)];
}

module.exports = { relayPacket, appendTarget, receivedData, isDefaultJsonEncoder, encodeRelayed, relayedJson, EnvelopeParser };
