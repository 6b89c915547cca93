"use strict";
// One Socket.IO server of the bench, in its own process (forked by bench/run.js).
//
// env: BENCH_ADAPTER=pure|native|none (none: Socket.IO's in-memory adapter), BENCH_URL (PostgreSQL), BENCH_PREFIX (channelPrefix), BENCH_ID.
// IPC in:  {cmd:"flood", scenario, window} | {cmd:"progress", delivered} | {cmd:"latency", rate, burst, local, ideal}
//          {cmd:"ideal-listen"} | {cmd:"stop"} | {cmd:"probe"} | {cmd:"count", on} | {cmd:"cpu", tag} | {cmd:"close"}
// IPC out: {type:"ready", port} | {type:"progress", count, maxSeq, reordered} | {type:"probe"}
//          {type:"ideal-listening"} | {type:"cpu", tag, usage} | {type:"stopped", sent} | {type:"closed", errors}
const http = require("http");
const { Server } = require("socket.io");
const pg = require("pg");
const { payloadFor } = require("./payloads");
const ideal = require("./ideal");

const kind = process.env.BENCH_ADAPTER;
const url = process.env.BENCH_URL;
const prefix = process.env.BENCH_PREFIX;
const REPORT_MS = 10;

let errors = 0;
let firstError = null;
const adapterOpts = {
  channelPrefix: prefix,
  // Same heartbeat settings for both (the socket.io-adapter defaults, spelled out).
  heartbeatInterval: 5000,
  heartbeatTimeout: 10000,
  errorHandler: (err) => {
    errors++;
    if (!firstError) firstError = String((err && err.message) || err);
  },
};

// Both adapters get the same thing: a pg.Pool (pg's default max of 10 connections). The pure-JS
// adapter queries through it; ours only reads its connection settings and opens its own libpq
// connections.
const pool = new pg.Pool({ connectionString: url });
pool.on("error", () => errors++);
let createAdapter;
if (kind === "pure") createAdapter = require("@socket.io/postgres-adapter").createAdapter;
else if (kind === "native") createAdapter = require("../lib").createAdapter;
else if (kind !== "none") throw new Error(`BENCH_ADAPTER must be pure, native or none, got ${kind}`);

// --recovery: connection state recovery on (ours logs every recoverable broadcast; the pure-JS
// adapter does not support it and behaves as without).
const recovery = process.env.BENCH_RECOVERY === "1";
if (recovery && kind === "native") adapterOpts.createTable = true;
const httpServer = http.createServer();
const io = new Server(httpServer, {
  ...(createAdapter ? { adapter: createAdapter(pool, adapterOpts) } : {}),
  serveClient: false,
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120000 } } : {}),
});

const send = (m) => process.connected && process.send(m);

// ---- receiving side: serverSideEmit deliveries ------------------------------------------
let counting = false;
let count = 0;
let maxSeq = 0;
let reordered = 0;
let lastReported = -1;
io.on("m", (seq) => {
  count++;
  if (seq > maxSeq) maxSeq = seq;
  else reordered++;
});
io.on("probe", () => send({ type: "probe" }));
const reporter = setInterval(() => {
  if (!counting || count === lastReported) return;
  lastReported = count;
  send({ type: "progress", count, maxSeq, reordered });
}, REPORT_MS);

// ---- sending side -------------------------------------------------------------------
let flooding = false;
let scenario = null;
let payload = null;
let windowSize = 1000;
let sent = 0;
let delivered = 0;
let pumpScheduled = false;
let latencyTimer = null;
const CHUNK = 100; // emits per macrotask, so that socket I/O keeps running

function nowMicros() {
  // CLOCK_MONOTONIC: the same clock in every process of this machine.
  return Number(process.hrtime.bigint() / 1000n);
}

function emitOne(seq) {
  if (scenario === "sse") io.serverSideEmit("m", seq);
  else if (payload === undefined) io.emit("b", seq);
  else io.emit("b", seq, payload);
}

function pump() {
  pumpScheduled = false;
  if (!flooding) return;
  let n = 0;
  while (sent - delivered < windowSize && n < CHUNK) {
    emitOne(++sent);
    n++;
  }
  if (sent - delivered < windowSize) schedulePump();
}

function schedulePump() {
  if (pumpScheduled || !flooding) return;
  pumpScheduled = true;
  setImmediate(pump);
}

// The "adapter that costs nothing" (bench/ideal.js), for the floor under the latency rows: the
// sender's connection (A) or the listening one (B, C).
const IDEAL_CHANNEL = `${prefix}#ideal`;
let idealConn = null;
const onIdealError = (err) => {
  errors++;
  if (!firstError) firstError = `bench/ideal.js: ${err.message}`;
};

// `rate` messages/s, emitted `burst` at a time (burst 1: one per timer tick; burst 20: 20 synchronous
// io.emit() calls every 20 ms at 1,000 msg/s). Each message carries its own emit time. local: to this
// server's own clients only (io.local, no adapter hop), for the floor under the latency rows. ideal:
// through bench/ideal.js instead of the adapter.
function startLatency(rate, burst = 1, local = false) {
  const target = idealConn ? { emit: (_ev, ts, seq) => idealConn.notify(`${ts},${seq}`) } : local ? io.local : io;
  const t0 = process.hrtime.bigint();
  sent = 0;
  let bursts = 0;
  latencyTimer = setInterval(() => {
    const due = Math.floor(((Number(process.hrtime.bigint() - t0) / 1e9) * rate) / burst);
    while (bursts < due) {
      bursts++;
      for (let i = 0; i < burst; i++) {
        sent++;
        target.emit("l", nowMicros(), sent);
      }
    }
  }, 1);
}

process.on("message", async (msg) => {
  switch (msg.cmd) {
    case "count":
      counting = msg.on;
      break;
    case "probe":
      io.serverSideEmit("probe");
      io.emit("probe");
      break;
    case "flood":
      scenario = msg.scenario;
      payload = payloadFor(scenario);
      windowSize = msg.window;
      sent = 0;
      delivered = 0;
      flooding = true;
      schedulePump();
      break;
    case "progress":
      if (msg.delivered > delivered) delivered = msg.delivered;
      schedulePump();
      break;
    case "latency":
      if (msg.ideal) idealConn = await ideal.sender(url, IDEAL_CHANNEL, onIdealError);
      startLatency(msg.rate, msg.burst, msg.local);
      break;
    case "ideal-listen":
      idealConn = await ideal.listener(url, IDEAL_CHANNEL, (payload) => {
        const comma = payload.indexOf(",");
        io.local.emit("l", Number(payload.slice(0, comma)), Number(payload.slice(comma + 1)));
      }, onIdealError);
      send({ type: "ideal-listening" });
      break;
    case "stop":
      flooding = false;
      if (latencyTimer) clearInterval(latencyTimer);
      latencyTimer = null;
      send({ type: "stopped", sent });
      break;
    case "cpu":
      send({ type: "cpu", tag: msg.tag, usage: process.cpuUsage(), mem: process.memoryUsage().rss });
      break;
    case "close":
      clearInterval(reporter);
      flooding = false;
      if (latencyTimer) clearInterval(latencyTimer);
      if (idealConn) idealConn.close();
      await new Promise((resolve) => io.close(() => resolve()));
      await pool.end().catch(() => {});
      send({ type: "closed", errors, firstError });
      setTimeout(() => process.exit(0), 50);
      break;
    default:
      break;
  }
});

process.on("disconnect", () => process.exit(0));
process.on("unhandledRejection", (err) => {
  errors++;
  if (!firstError) firstError = String((err && err.message) || err);
});

httpServer.listen(0, "127.0.0.1", () => send({ type: "ready", port: httpServer.address().port }));
