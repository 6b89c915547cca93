"use strict";
// A cluster message's JSON, written by JSON.stringify as the pure-JS adapter writes it, when the message is
// plain data: the native core then queues that text as it is. Walking the object through N-API instead cost
// more than everything else a small publish does. Whatever is not plain data (binary, a toJSON of its own, a
// BigInt, too deep or large messages, a getter that throws) gets undefined and takes the native encoder, which
// handles, refuses and reports every case.
const types = require("util").types;
const native = require("./native");

const { isAnyArrayBuffer, isBoxedPrimitive } = types;
const { maxNesting } = native;

// What JSON.stringify writes for a boxed primitive, for the native encoder (which cannot tell one from
// an object with N-API alone): a String as its text, a Number as its number, a Boolean as its value, a
// BigInt as the BigInt (refused, as JSON.stringify refuses it); anything else (a boxed Symbol too,
// written as {}) is returned as it is.
function unbox(v) {
  if (!isBoxedPrimitive(v) || types.isSymbolObject(v)) return v;
  if (types.isStringObject(v)) return String(v);
  if (types.isNumberObject(v)) return Number(v);
  if (types.isBooleanObject(v)) return Boolean.prototype.valueOf.call(v);
  return BigInt.prototype.valueOf.call(v);
}
native.setUnboxer(unbox);

const dateToJSON = Date.prototype.toJSON;
// A notification holds less than 8000 bytes: a message with more characters (strings, keys, values) goes to the
// attachment table anyway.
const MAX_CHARS = 8000;
// Past this many, the native encoder writes the text faster than JSON.stringify (about 1.7 ns a character in
// Node 20), and writes the same JSON; not for a boxed String, Number or Boolean, which only JSON.stringify
// writes as its primitive, as the pure-JS adapter and local clients do.
const FAST_CHARS = 2000;

function plainJson(message) {
  const budget = { left: MAX_CHARS, boxed: false };
  try {
    if (!isPlain(message, 0, budget)) return undefined;
    if (MAX_CHARS - budget.left > FAST_CHARS && !budget.boxed) return undefined;
    const json = JSON.stringify(message);
    return typeof json === "string" && json.length < MAX_CHARS ? json : undefined;
  } catch (_) {
    return undefined;
  }
}

// budget.left: characters (strings, keys) and values still allowed; budget.boxed: a boxed primitive was seen.
function isPlain(v, depth, budget) {
  if (typeof v === "string") return (budget.left -= v.length) > 0;
  if (typeof v !== "object" || v === null) return typeof v !== "bigint";
  if (depth >= maxNesting) return false; // the encoder refuses it (or a cycle)
  if (Array.isArray(v)) {
    if ((budget.left -= v.length) <= 0) return false;
    for (let i = 0; i < v.length; i++) if (!isPlain(v[i], depth + 1, budget)) return false;
    return true;
  }
  if (ArrayBuffer.isView(v) || isAnyArrayBuffer(v)) return false;
  // JSON.stringify would call it: only Date's own (the encoder turns dates into the same text).
  if (typeof v.toJSON === "function") return v.toJSON === dateToJSON && v instanceof Date;
  if (isBoxedPrimitive(v)) {
    // Written as its primitive (JSON.stringify's rule), not as an object of its characters.
    budget.boxed = true;
    return (budget.left -= typeof v.length === "number" ? v.length : 1) > 0;
  }
  const keys = Object.keys(v);
  if ((budget.left -= keys.length) <= 0) return false;
  for (let i = 0; i < keys.length; i++) {
    if ((budget.left -= keys[i].length) <= 0 || !isPlain(v[keys[i]], depth + 1, budget)) return false;
  }
  return true;
}

module.exports = { plainJson };
