"use strict";
// Payloads of the bench scenarios: the same bytes in every process and for both adapters.
// Strings are pseudo-random printable text (a fixed LCG), so PostgreSQL cannot compress them
// much more than a real application payload.

function text(n, seed) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let x = seed >>> 0;
  let s = "";
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    s += alphabet[x >>> 26];
  }
  return s;
}

function bytes(n, seed) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const cache = new Map();
function payloadFor(scenario) {
  if (!cache.has(scenario)) {
    let p;
    if (scenario === "b4k") p = text(4096, 4);
    else if (scenario === "b20k") p = text(20480, 20);
    else if (scenario === "bin1k") p = bytes(1024, 1);
    cache.set(scenario, p);
  }
  return cache.get(scenario);
}

module.exports = { payloadFor };
