#!/usr/bin/env node
'use strict';
// Soak run (a script, not a test): 2 Socket.IO servers with this adapter, each in its own child process,
// push >= 1,000,000 small messages through PostgreSQL to each other, and the resident memory (RSS) of each
// server process is sampled along the way. Memory should be flat after the warm-up.
//
//   node scripts/soak.js [--messages 1000000] [--window 5000] [--sample 5] [--warmup 0.1]
//
// Server A emits to room "toB" (joined by a client of B), server B to room "toA" (a client of A): every
// message goes A -> PostgreSQL -> B -> client (and the other way round), none is delivered locally.
// The flood is batched with a bounded in-flight window (sent - received by the peer's client <= window).
// Every 1000th message carries a small Buffer, so the attachment-table path is exercised too.
// Uses $DATABASE_URL if set, else a throwaway PostgreSQL (test/helpers/pg-tmp.sh).

const { fork } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

// ------------------------------------------------------------------------------------------------
// Child: one Socket.IO server.

if (process.argv[2] === '--server') {
  const http = require('http');
  const { Server } = require('socket.io');
  const { createAdapter } = require(ROOT);
  const [name, url, prefix] = process.argv.slice(3);
  const target = name === 'A' ? 'toB' : 'toA';
  const errors = {};
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(url, {
      channelPrefix: prefix,
      heartbeatInterval: 1000,
      heartbeatTimeout: 30000,
      cleanupInterval: 10000,
      errorHandler: (err) => {
        errors[err.code] = (errors[err.code] || 0) + 1;
      },
    }),
  });
  io.on('connection', (socket) => socket.join(socket.handshake.auth.room));
  let sent = 0;
  let credit = 0;
  let total = 0;
  let pumping = false;
  const bin = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
  function pump() {
    if (pumping) return;
    pumping = true;
    setImmediate(function step() {
      const end = Math.min(credit, total, sent + 500);
      for (; sent < end; sent++) {
        if (sent % 1000 === 999) io.to(target).emit('m', sent, bin);
        else io.to(target).emit('m', sent);
      }
      if (sent < Math.min(credit, total)) setImmediate(step);
      else pumping = false;
    });
  }
  process.on('message', (msg) => {
    if (msg.credit !== undefined) {
      credit = msg.credit;
      total = msg.total;
      pump();
    } else if (msg.stats) {
      process.send({ stats: { sent, errors, heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss } });
    } else if (msg.close) {
      io.close(() => {
        process.send({ closed: true, errors });
        process.disconnect();
      });
    }
  });
  httpServer.listen(0, '127.0.0.1', () => process.send({ port: httpServer.address().port }));
  return;
}

// ------------------------------------------------------------------------------------------------
// Parent.

const TOTAL = arg('messages', 1000000);
const WINDOW = arg('window', 5000);
const SAMPLE_S = arg('sample', 5);
const WARMUP = arg('warmup', 0.1); // fraction of the messages after which the warm-up RSS is taken
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes) => (bytes / 1048576).toFixed(1);

function rssOf(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

function once(child, key) {
  return new Promise((resolve, reject) => {
    const onMsg = (msg) => {
      if (msg && msg[key] !== undefined) {
        child.off('message', onMsg);
        resolve(msg);
      }
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`server exited (code ${code}) while waiting for "${key}"`)));
  });
}

async function main() {
  const { io: ioClient } = require('socket.io-client');
  let pg = null;
  let url = process.env.DATABASE_URL;
  if (!url) {
    pg = require(path.join(ROOT, 'test', 'helpers', 'pg-tmp')).startPostgres();
    url = pg.url;
  }
  const prefix = `soak_${process.pid}`;
  const perServer = Math.ceil(TOTAL / 2);
  const children = {};
  const clients = {};
  const received = { A: 0, B: 0 }; // messages FROM this server received by the other server's client
  let outOfOrder = 0;
  const samples = [];
  let timer = null;
  try {
    // The attachment table, as the adapter expects it.
    const { Client } = require('pg');
    const admin = new Client({ connectionString: url });
    await admin.connect();
    await admin.query('CREATE TABLE IF NOT EXISTS socket_io_attachments (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)');
    await admin.end();

    for (const name of ['A', 'B']) {
      children[name] = fork(__filename, ['--server', name, url, prefix], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    }
    const ports = {};
    for (const name of ['A', 'B']) ports[name] = (await once(children[name], 'port')).port;
    // The client of B receives what A sends, and the other way round.
    for (const [name, from, room] of [['B', 'A', 'toB'], ['A', 'B', 'toA']]) {
      const c = ioClient(`http://127.0.0.1:${ports[name]}`, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { room } });
      let next = 0;
      c.on('m', (i) => {
        if (i !== next) outOfOrder++;
        next = i + 1;
        received[from]++;
      });
      await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('connect_error', reject); });
      clients[name] = c;
    }
    // Both servers see each other before the flood (a probe through each direction).
    for (const name of ['A', 'B']) children[name].send({ credit: 0, total: perServer });
    await sleep(2000);

    console.log(`soak: ${TOTAL} messages (${perServer} each way), window ${WINDOW}, RSS sampled every ${SAMPLE_S} s`);
    console.log(`soak: server pids A=${children.A.pid} B=${children.B.pid}; RSS before the flood: A ${mb(rssOf(children.A.pid))} MB, B ${mb(rssOf(children.B.pid))} MB`);
    const start = Date.now();
    let warm = null;
    const sample = () => {
      const s = { t: (Date.now() - start) / 1000, done: received.A + received.B, A: rssOf(children.A.pid), B: rssOf(children.B.pid) };
      samples.push(s);
      console.log(`soak: t=${s.t.toFixed(0).padStart(4)} s  delivered ${String(s.done).padStart(8)}  RSS A ${mb(s.A)} MB  B ${mb(s.B)} MB`);
    };
    timer = setInterval(sample, SAMPLE_S * 1000);
    let lastProgress = Date.now();
    let lastDone = 0;
    for (;;) {
      const done = received.A + received.B;
      if (done !== lastDone) { lastDone = done; lastProgress = Date.now(); }
      if (!warm && done >= TOTAL * WARMUP) {
        warm = { done, A: rssOf(children.A.pid), B: rssOf(children.B.pid), t: (Date.now() - start) / 1000 };
        console.log(`soak: warm-up done (${done} messages, ${warm.t.toFixed(1)} s): RSS A ${mb(warm.A)} MB, B ${mb(warm.B)} MB`);
      }
      if (received.A >= perServer && received.B >= perServer) break;
      if (Date.now() - lastProgress > 30000) throw new Error(`no progress for 30 s (delivered A->B ${received.A}, B->A ${received.B})`);
      for (const name of ['A', 'B']) children[name].send({ credit: received[name] + WINDOW, total: perServer });
      await sleep(20);
    }
    const elapsed = (Date.now() - start) / 1000;
    clearInterval(timer);
    timer = null;
    sample();
    const end = samples[samples.length - 1];
    await sleep(1000);
    const stats = {};
    for (const name of ['A', 'B']) {
      children[name].send({ stats: true });
      stats[name] = (await once(children[name], 'stats')).stats;
    }
    const peak = { A: Math.max(...samples.map((s) => s.A)), B: Math.max(...samples.map((s) => s.B)) };
    console.log('');
    console.log(`soak: ${received.A + received.B} messages delivered in ${elapsed.toFixed(1)} s (${Math.round((received.A + received.B) / elapsed)} msg/s), ` +
      `sent A ${stats.A.sent} B ${stats.B.sent}, out of order ${outOfOrder}`);
    for (const name of ['A', 'B']) {
      console.log(`soak: server ${name}: RSS after warm-up ${mb(warm[name])} MB, at the end ${mb(end[name])} MB ` +
        `(${end[name] >= warm[name] ? '+' : ''}${mb(end[name] - warm[name])} MB), peak ${mb(peak[name])} MB, ` +
        `heap used ${mb(stats[name].heap)} MB, errors ${JSON.stringify(stats[name].errors)}`);
    }
    const lost = perServer * 2 - (received.A + received.B);
    if (lost !== 0) console.log(`soak: LOST ${lost} messages`);
    return lost === 0 && outOfOrder === 0 ? 0 : 1;
  } finally {
    if (timer) clearInterval(timer);
    for (const c of Object.values(clients)) c.disconnect();
    await Promise.all(Object.values(children).map(async (child) => {
      if (child.exitCode !== null) return;
      child.send({ close: true });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    }));
    if (pg) pg.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('soak:', err);
    process.exit(2);
  },
);
