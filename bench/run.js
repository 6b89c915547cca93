#!/usr/bin/env node
"use strict";
// Benchmark: this native adapter ("native") against @socket.io/postgres-adapter ("pure"), same
// machine, same run, same PostgreSQL. See bench/README.md.
//
//   npm run bench                # full run (~6 min on 2 cores)
//   npm run bench -- --quick     # ~1 min
//   options: --rounds=N --duration=MS --warmup=MS --window=N --only=sse,small,b4k,b20k,bin1k,latency,burst,local,localburst,ideal,idealburst
//            --adapters=pure,native --no-ceiling --cpu-prof (servers write .cpuprofile files to bench/results/prof)
//            --recovery (servers run with connectionStateRecovery: the cost of logging every broadcast)
//            --no-write (do not touch bench/results)
//            --storage=external|main|extended (experiment: storage of the attachments' payload column)
//            --perf=send|recv (perf record -g the sending / a receiving server during each measured window,
//                              with node --perf-basic-prof; files in bench/results/prof)
//
// Each run: 3 Socket.IO servers (bench/server.js), each in its own process, one socket.io-client per
// receiving server (bench/clients.js, one process). Server A sends; B and C receive. Floods keep at
// most --window messages in flight (A emits up to `window` ahead of the slowest receiver's highest
// sequence number, reported through IPC every 10 ms), so the rate is what is delivered.
const { fork, execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const pg = require("pg");

const ROOT = path.join(__dirname, "..");
const RESULTS = path.join(__dirname, "results");

// ---- options -------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name, def) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const QUICK = flag("quick");
const CFG = {
  mode: QUICK ? "quick" : "full",
  rounds: Number(opt("rounds", QUICK ? 1 : 2)),
  latencyRounds: Number(opt("latency-rounds", opt("rounds", QUICK ? 1 : 3))), // latency is the noisiest
  warmupMs: Number(opt("warmup", QUICK ? 1000 : 1500)),
  durationMs: Number(opt("duration", QUICK ? 2000 : 4000)),
  window: opt("window", null) === null ? null : Number(opt("window")), // default: per scenario
  latencyRate: 1000,
  ceilingSeconds: QUICK ? 1.5 : 3,
  scenarios: opt("only", "sse,small,b4k,b20k,bin1k,latency,burst,local,localburst,ideal,idealburst").split(","),
  adapters: opt("adapters", "pure,native").split(","),
  ceiling: !flag("no-ceiling"),
  cpuProf: flag("cpu-prof"),
  write: !flag("no-write"),
  perf: opt("perf", null),
  recovery: process.argv.includes("--recovery"), // servers with connectionStateRecovery (what it costs)
  storage: opt("storage", null), // experiment: ALTER TABLE ... ALTER COLUMN payload SET STORAGE <x> (external: no compression)
};

const SCENARIOS = {
  // The window caps a flood at about window / 10 ms (the progress period): 1,000 would cap the native
  // serverSideEmit flood near 100,000 msg/s, while 3,000 slows the pure-JS one (its pool's queue
  // grows). Each adapter gets the one that serves it best (bench/README.md, caveats).
  sse: { title: "small serverSideEmit flood", receivers: "servers", window: { pure: 1000, native: 3000 } },
  small: { title: "small broadcast (io.emit)", receivers: "clients", window: 1000 },
  b4k: { title: "4 KB broadcast", receivers: "clients", window: 500 },
  b20k: { title: "20 KB broadcast (attachment)", receivers: "clients", window: 200 },
  bin1k: { title: "1 KB binary broadcast (attachment)", receivers: "clients", window: 500 },
  // Latency: A emits at a fixed rate, each message with its emit time; measured after the same warm-up
  // as the floods, at the same rate (the pure-JS pool opens its connections lazily).
  latency: { title: "latency at 1,000 msg/s", receivers: "clients", latency: true, burst: 1 },
  burst: { title: "latency at 1,000 msg/s in bursts of 20", receivers: "clients", latency: true, burst: 20 },
  // The other part of the floor: B and C emit to their own client (io.local), no adapter, no PostgreSQL.
  local: { title: "Socket.IO alone: io.local.emit on B/C at 1,000 msg/s", receivers: "clients", latency: true, burst: 1, local: "latency" },
  localburst: { title: "Socket.IO alone: io.local.emit on B/C at 1,000 msg/s in bursts of 20", receivers: "clients", latency: true, burst: 20, local: "burst" },
  // The whole floor, measured in place: A -> PostgreSQL -> B/C -> client through bench/ideal.js (raw
  // NOTIFY written to a socket, raw notifications read from one and io.local.emit), servers without an
  // adapter. What an adapter that cost nothing would show, on the same shared cores.
  ideal: { title: "adapter that costs nothing (bench/ideal.js) at 1,000 msg/s", receivers: "clients", latency: true, burst: 1, ideal: "latency" },
  idealburst: { title: "adapter that costs nothing (bench/ideal.js) at 1,000 msg/s in bursts of 20", receivers: "clients", latency: true, burst: 20, ideal: "burst" },
};
for (const s of CFG.scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}`);

const ADAPTER_NAME = { pure: "@socket.io/postgres-adapter", native: "socket.io-postgres-native" };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(...a);

// ---- child processes -----------------------------------------------------------------------
class Child {
  constructor(file, env, execArgv = []) {
    this.proc = fork(path.join(__dirname, file), [], {
      env: { ...process.env, ...env },
      execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.handlers = new Set();
    this.exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.on("message", (m) => {
      for (const h of [...this.handlers]) h(m);
    });
  }
  send(m) {
    if (this.proc.connected) this.proc.send(m);
  }
  on(fn) {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }
  next(type, timeoutMs = 15000, pred = () => true) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off();
        reject(new Error(`timeout waiting for "${type}" from ${this.proc.pid}`));
      }, timeoutMs);
      const off = this.on((m) => {
        if (m.type === type && pred(m)) {
          clearTimeout(t);
          off();
          resolve(m);
        }
      });
    });
  }
  request(msg, type, timeoutMs) {
    const p = this.next(type, timeoutMs, (m) => msg.tag === undefined || m.tag === msg.tag);
    this.send(msg);
    return p;
  }
  async close(timeoutMs = 5000) {
    let result = null;
    try {
      result = await this.request({ cmd: "close" }, "closed", timeoutMs);
    } catch (_) {
      /* killed below */
    }
    const done = await Promise.race([this.exited.then(() => true), sleep(2000).then(() => false)]);
    if (!done) this.proc.kill("SIGKILL");
    await this.exited;
    return result;
  }
}

// ---- PostgreSQL CPU (/proc) ----------------------------------------------------------------
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch (_) {
    return 100;
  }
})();

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch (_) {
    return null;
  }
}

// Total CPU ms of the cluster: postmaster (incl. its reaped children) + live children.
function pgCpuMs(dataDir) {
  if (!dataDir) return null;
  let pid;
  try {
    pid = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch (_) {
    return null;
  }
  const pm = readStat(pid);
  if (!pm) return null;
  let ticks = pm.utime + pm.stime + pm.cutime + pm.cstime;
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(d);
    if (st && st.ppid === pid) ticks += st.utime + st.stime;
  }
  return (ticks * 1000) / CLK_TCK;
}

// Jiffies of the whole machine, busy and total (/proc/stat "cpu" line).
function systemBusy() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] || 0);
  return { busy: total - idle, total };
}

// ---- statistics ----------------------------------------------------------------------------
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const cpuMs = (a, b) => (b.user - a.user + b.system - a.system) / 1000;

// ---- one run: one scenario, one adapter ----------------------------------------------------
let runCounter = 0;
async function runOne(ctx, scenario, adapter) {
  const runIdx = ++runCounter;
  const sc = SCENARIOS[scenario];
  await ctx.db.query(`TRUNCATE ${ctx.table}`);
  const prefix = `bench${process.pid}r${runIdx}${adapter}`;
  // The `ideal` scenarios' servers have no adapter at all: no listening session of theirs is woken by
  // each NOTIFY (PostgreSQL wakes every listening session of the database, whatever its channels).
  const env = { BENCH_ADAPTER: sc.ideal ? "none" : adapter, BENCH_URL: ctx.url, BENCH_PREFIX: prefix, BENCH_RECOVERY: CFG.recovery ? "1" : "0" };
  // One profile per server, named by its role (Node 20 does not expand a pid in --cpu-prof-name).
  const execArgvOf = (i) => {
    const args = CFG.cpuProf
      ? ["--cpu-prof", `--cpu-prof-dir=${path.join(RESULTS, "prof")}`, `--cpu-prof-name=${scenario}-${adapter}-r${runIdx}-${"ABC"[i]}.cpuprofile`]
      : [];
    if (CFG.perf) args.push("--perf-basic-prof-only-functions", "--interpreted-frames-native-stack");
    return args;
  };
  const servers = [0, 1, 2].map((i) => new Child("server.js", { ...env, BENCH_ID: String(i) }, execArgvOf(i)));
  const result = { scenario, adapter, run: runIdx };
  try {
    const ports = (await Promise.all(servers.map((s) => s.next("ready")))).map((m) => m.port);
    const clients = ctx.clients;
    await clients.request({ cmd: "connect", ports: [ports[1], ports[2]] }, "connected");

    // Receivers: B and C themselves (serverSideEmit) or the client of each (broadcasts).
    const recv = [{ count: 0, maxSeq: 0, reordered: 0 }, { count: 0, maxSeq: 0, reordered: 0 }];
    const receiverOf = (child, i) => (sc.receivers === "servers" ? child === servers[i + 1] : child === clients);
    const offs = [];

    // Wait until both receivers get what A sends (LISTEN is set up asynchronously).
    const probed = new Set();
    if (sc.receivers === "servers") {
      servers.slice(1).forEach((s, i) => offs.push(s.on((m) => m.type === "probe" && probed.add(i))));
    } else {
      offs.push(clients.on((m) => m.type === "probe" && probed.add(m.i)));
    }
    // The ideal path is ready once B's and C's LISTEN ran (there is no adapter to probe through).
    if (sc.ideal) await Promise.all(servers.slice(1).map((s) => s.request({ cmd: "ideal-listen" }, "ideal-listening")));
    const t0 = Date.now();
    while (probed.size < 2 && !sc.ideal) {
      if (Date.now() - t0 > 20000) throw new Error("receivers never got the probe (adapter not working?)");
      servers[0].send({ cmd: "probe" });
      await sleep(100);
    }
    await sleep(100);

    // Progress: relay the slowest receiver's highest sequence number to the sender.
    let relayed = 0;
    const onProgress = (i, m) => {
      recv[i] = { count: m.count, maxSeq: m.maxSeq, reordered: m.reordered };
      const low = Math.min(recv[0].maxSeq, recv[1].maxSeq);
      if (low > relayed) {
        relayed = low;
        servers[0].send({ cmd: "progress", delivered: low });
      }
    };
    if (sc.receivers === "servers") {
      servers.slice(1).forEach((s, i) => offs.push(s.on((m) => m.type === "progress" && onProgress(i, m))));
      servers[1].send({ cmd: "count", on: true });
      servers[2].send({ cmd: "count", on: true });
    } else {
      offs.push(clients.on((m) => m.type === "progress" && onProgress(m.i, m)));
      clients.send({ cmd: "count", on: true });
    }
    void receiverOf;

    const emitters = sc.local ? servers.slice(1) : [servers[0]];
    if (sc.latency) for (const e of emitters) e.send({ cmd: "latency", rate: CFG.latencyRate, burst: sc.burst, local: !!sc.local, ideal: !!sc.ideal });
    else servers[0].send({ cmd: "flood", scenario, window: CFG.window || (typeof sc.window === "number" ? sc.window : sc.window[adapter]) });
    await sleep(CFG.warmupMs);
    if (sc.latency) clients.send({ cmd: "record", on: true });

    const snapshot = async (tag) => {
      const [a, b, c] = await Promise.all([
        servers[0].request({ cmd: "cpu", tag }, "cpu"),
        servers[1].request({ cmd: "cpu", tag }, "cpu"),
        clients.request({ cmd: "cpu", tag }, "cpu"),
      ]);
      return { t: process.hrtime.bigint(), send: a.usage, recv: b.usage, clients: c.usage, rss: [a.mem, b.mem], pg: pgCpuMs(ctx.dataDir), counts: recv.map((r) => r.count) };
    };
    const s0 = await snapshot("s0");
    let perfProc = null;
    if (CFG.perf) {
      const target = servers[CFG.perf === "recv" ? 1 : 0].proc.pid;
      fs.mkdirSync(path.join(RESULTS, "prof"), { recursive: true });
      const out = path.join(RESULTS, "prof", `perf-${scenario}-${adapter}-${CFG.perf}-r${runIdx}.data`);
      perfProc = require("child_process").spawn("perf", ["record", "-F", "1999", "-g", "-p", String(target), "-o", out], { stdio: "ignore" });
      result.perfData = out;
    }
    await sleep(CFG.durationMs);
    const s1 = await snapshot("s1");
    if (perfProc) {
      perfProc.kill("SIGINT");
      await new Promise((r) => perfProc.once("exit", r));
    }
    let samples = null;
    if (sc.latency) {
      clients.send({ cmd: "record", on: false });
      samples = (await clients.request({ cmd: "samples" }, "samples")).samples;
    }
    const sent = Math.min(...(await Promise.all(emitters.map((e) => e.request({ cmd: "stop" }, "stopped")))).map((m) => m.sent));

    // Drain: everything sent should arrive. Wait while it still makes progress (at most 10 s).
    let lastTotal = -1;
    let lastMove = Date.now();
    const tDrain = Date.now();
    while (Math.min(recv[0].count, recv[1].count) < sent && Date.now() - tDrain < 10000 && Date.now() - lastMove < 1000) {
      await sleep(20);
      if (recv[0].count + recv[1].count !== lastTotal) {
        lastTotal = recv[0].count + recv[1].count;
        lastMove = Date.now();
      }
    }

    const secs = Number(s1.t - s0.t) / 1e9;
    const delivered = s1.counts.map((c, i) => c - s0.counts[i]);
    const msgs = mean(delivered);
    const per1k = (x) => (msgs > 0 && x !== null ? (x * 1000) / msgs : null);
    Object.assign(result, {
      seconds: secs,
      rate: msgs / secs, // per receiving server
      ratePerReceiver: delivered.map((d) => d / secs),
      sendCpuPer1k: per1k(cpuMs(s0.send, s1.send)),
      recvCpuPer1k: per1k(cpuMs(s0.recv, s1.recv)),
      // Both clients together (identical work for both adapters), per 1,000 messages delivered to each.
      clientsCpuPer1k: per1k(cpuMs(s0.clients, s1.clients)),
      pgCpuPer1k: s0.pg === null || s1.pg === null ? null : per1k(s1.pg - s0.pg),
      sendCpuPct: (cpuMs(s0.send, s1.send) / (secs * 1000)) * 100,
      recvCpuPct: (cpuMs(s0.recv, s1.recv) / (secs * 1000)) * 100,
      pgCpuPct: s0.pg === null || s1.pg === null ? null : ((s1.pg - s0.pg) / (secs * 1000)) * 100,
      rssMB: s1.rss.map((x) => Math.round(x / 1048576)),
      sent,
      received: recv.map((r) => r.count),
      lost: recv.map((r) => sent - r.count),
      reordered: recv.map((r) => r.reordered),
    });
    if (samples) {
      samples.sort((a, b) => a - b);
      result.latency = {
        n: samples.length,
        p50: percentile(samples, 50) / 1000,
        p99: percentile(samples, 99) / 1000,
        max: samples[samples.length - 1] / 1000,
      };
      result.samples = samples;
    }
    for (const off of offs) off();
    clients.send({ cmd: "count", on: false });
    await clients.request({ cmd: "disconnect" }, "disconnected");
  } catch (err) {
    result.error = err.message;
  } finally {
    const closed = await Promise.all(servers.map((s) => s.close()));
    result.adapterErrors = closed.reduce((n, c) => n + ((c && c.errors) || 0), 0);
    const first = closed.find((c) => c && c.firstError);
    if (first) result.firstAdapterError = first.firstError;
  }
  return result;
}

// ---- aggregation and reports ---------------------------------------------------------------
function aggregate(runs) {
  const ok = runs.filter((r) => !r.error);
  if (!ok.length) return { error: runs.map((r) => r.error).join("; ") };
  const avg = (k) => mean(ok.map((r) => r[k]).filter((x) => x !== null && x !== undefined));
  const out = {
    runs: ok.length,
    rate: avg("rate"),
    sendCpuPer1k: avg("sendCpuPer1k"),
    recvCpuPer1k: avg("recvCpuPer1k"),
    clientsCpuPer1k: avg("clientsCpuPer1k"),
    pgCpuPer1k: avg("pgCpuPer1k"),
    sendCpuPct: avg("sendCpuPct"),
    recvCpuPct: avg("recvCpuPct"),
    pgCpuPct: avg("pgCpuPct"),
    lost: ok.reduce((n, r) => n + r.lost.reduce((a, b) => a + Math.max(0, b), 0), 0),
    reordered: ok.reduce((n, r) => n + r.reordered.reduce((a, b) => a + b, 0), 0),
    adapterErrors: runs.reduce((n, r) => n + (r.adapterErrors || 0), 0),
  };
  if (ok[0].samples) {
    const all = ok.flatMap((r) => r.samples).sort((a, b) => a - b);
    out.latency = { n: all.length, p50: percentile(all, 50) / 1000, p99: percentile(all, 99) / 1000, max: all[all.length - 1] / 1000 };
  }
  return out;
}

const ratio = (a, b) => (a === null || b === null || a === undefined || b === undefined || !b ? null : a / b);
const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? "–" : x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
const fmtR = (x) => (x === null || x === undefined ? "–" : x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`);

function tables(summary, ceiling) {
  const L = [];
  L.push("| scenario | pure msg/s | native msg/s | ratio | send CPU ms/1k pure | native | ratio | recv CPU ms/1k pure | native | ratio | PG CPU ms/1k pure | native | ratio |");
  L.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const s of CFG.scenarios) {
    const p = summary[s].pure || {};
    const n = summary[s].native || {};
    const name = SCENARIOS[s].title;
    L.push(
      `| ${name} | ${fmt(p.rate)} | ${fmt(n.rate)} | ${fmtR(ratio(n.rate, p.rate))} | ` +
        `${fmt(p.sendCpuPer1k, 1)} | ${fmt(n.sendCpuPer1k, 1)} | ${fmtR(ratio(n.sendCpuPer1k, p.sendCpuPer1k))} | ` +
        `${fmt(p.recvCpuPer1k, 1)} | ${fmt(n.recvCpuPer1k, 1)} | ${fmtR(ratio(n.recvCpuPer1k, p.recvCpuPer1k))} | ` +
        `${fmt(p.pgCpuPer1k, 1)} | ${fmt(n.pgCpuPer1k, 1)} | ${fmtR(ratio(n.pgCpuPer1k, p.pgCpuPer1k))} |`,
    );
  }
  for (const s of CFG.scenarios.filter((x) => SCENARIOS[x].latency)) {
    const pl = (summary[s].pure || {}).latency || {};
    const nl = (summary[s].native || {}).latency || {};
    const floor = ceiling && ceiling.latency && ceiling.latency[s];
    L.push("");
    L.push(`| ${SCENARIOS[s].title} (${SCENARIOS[s].local ? "B/C emit → their own client" : "A emit → client of B/C"}) | pure | native | ratio | PostgreSQL alone |`);
    L.push("|---|--:|--:|--:|--:|");
    for (const k of ["p50", "p99", "max"]) {
      L.push(`| ${k} (ms) | ${fmt(pl[k], 2)} | ${fmt(nl[k], 2)} | ${fmtR(ratio(nl[k], pl[k]))} | ${floor ? fmt(floor[k], 2) : "–"} |`);
    }
    L.push(`| samples | ${fmt(pl.n)} | ${fmt(nl.n)} | | ${floor ? fmt(floor.samples) : ""} |`);
  }
  if (ceiling && ceiling.latency) {
    L.push("");
    L.push(
      "PostgreSQL alone (bench/notify_latency): NOTIFY → receipt on 3 LISTENing libpq connections, same rate and bursts " +
        "(one transaction per burst), same warm-up, no Node.js: the floor under the latency rows.",
    );
    // The floor for an adapter costing nothing: PostgreSQL alone + Socket.IO alone (its `local` scenario).
    for (const [localName, sc] of Object.entries(SCENARIOS).filter(([, x]) => x.local)) {
      const target = sc.local;
      const pgFloor = ceiling.latency[target];
      const local = summary[localName] && ((summary[localName].native || {}).latency || (summary[localName].pure || {}).latency);
      const row = summary[target] && summary[target].native && summary[target].pure;
      if (!pgFloor || !local || !row || !row.latency || !summary[target].pure.latency) continue;
      const floor = pgFloor.p50 + local.p50;
      L.push("");
      L.push(
        `Floor of "${SCENARIOS[target].title}" (p50): PostgreSQL alone ${fmt(pgFloor.p50, 2)} ms + Socket.IO alone ` +
          `(\`${localName}\` row) ${fmt(local.p50, 2)} ms = ${fmt(floor, 2)} ms for an adapter that cost nothing; measured: ` +
          `pure-JS ${fmt(summary[target].pure.latency.p50, 2)} ms, native ${fmt(summary[target].native.latency.p50, 2)} ms. ` +
          `The best ratio possible here is about ${fmt(floor / summary[target].pure.latency.p50, 2)}.`,
      );
    }
  }
  // The floor measured in place (the `ideal` rows): the best ratio any adapter could reach in this run.
  for (const [idealName, sc] of Object.entries(SCENARIOS).filter(([, x]) => x.ideal)) {
    const target = sc.ideal;
    const lat = (name, adapter) => summary[name] && summary[name][adapter] && summary[name][adapter].latency;
    const floors = ["pure", "native"].map((a) => lat(idealName, a)).filter(Boolean);
    const pure = lat(target, "pure");
    const native = lat(target, "native");
    if (floors.length === 0 || !pure || !native) continue;
    const floor = (k) => floors.reduce((sum, f) => sum + f[k], 0) / floors.length;
    L.push("");
    L.push(
      `Floor of "${SCENARIOS[target].title}" measured in place (\`${idealName}\` row, both runs' mean): p50 ${fmt(floor("p50"), 2)} ms, ` +
        `p99 ${fmt(floor("p99"), 2)} ms; measured: pure-JS ${fmt(pure.p50, 2)} / ${fmt(pure.p99, 2)} ms, native ${fmt(native.p50, 2)} / ` +
        `${fmt(native.p99, 2)} ms. The best ratios possible here are about ${fmt(floor("p50") / pure.p50, 2)} (p50) and ` +
        `${fmt(floor("p99") / pure.p99, 2)} (p99); native is at ${fmt(native.p50 / pure.p50, 2)} and ${fmt(native.p99 / pure.p99, 2)}.`,
    );
  }
  L.push("");
  L.push("| CPU while running (% of one core) | pure send | native send | pure recv | native recv | pure PG | native PG | clients ms/1k pure | native |");
  L.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const s of CFG.scenarios) {
    const p = summary[s].pure || {};
    const n = summary[s].native || {};
    L.push(`| ${SCENARIOS[s].title} | ${fmt(p.sendCpuPct)} | ${fmt(n.sendCpuPct)} | ${fmt(p.recvCpuPct)} | ${fmt(n.recvCpuPct)} | ${fmt(p.pgCpuPct)} | ${fmt(n.pgCpuPct)} | ${fmt(p.clientsCpuPer1k, 1)} | ${fmt(n.clientsCpuPer1k, 1)} |`);
  }
  if (ceiling && ceiling.pipelined) {
    L.push("");
    const c = ceiling.pipelined.notificationsPerSec;
    L.push(
      `NOTIFY ceiling of this PostgreSQL (bench/notify_ceiling, one sender, pipeline mode, ${ceiling.pipelined.batch} per sync, ` +
        `${ceiling.pipelined.inflight} syncs in flight, ${ceiling.pipelined.payloadBytes}-byte payloads): **${fmt(c)} notifications/s**` +
        (ceiling.roundTrip ? `; one per round trip (1 per sync, 1 in flight): ${fmt(ceiling.roundTrip.notificationsPerSec)}/s.` : "."),
    );
    L.push("");
    L.push("| small messages, fraction of the ceiling | pure | native |");
    L.push("|---|--:|--:|");
    for (const s of ["sse", "small"]) {
      if (!summary[s]) continue;
      const p = summary[s].pure || {};
      const n = summary[s].native || {};
      L.push(`| ${SCENARIOS[s].title} | ${fmt(p.rate ? (100 * p.rate) / c : null, 1)}% | ${fmt(n.rate ? (100 * n.rate) / c : null, 1)}% |`);
    }
  }
  return L.join("\n");
}

// Issue #12 targets, ours / pure-JS.
function targets(summary) {
  const T = [];
  const tp = { sse: 10, bin1k: 10, small: 6, b4k: 4, b20k: 4 };
  const get = (s, a, k) => summary[s] && summary[s][a] && summary[s][a][k];
  for (const [s, want] of Object.entries(tp)) {
    if (!summary[s]) continue;
    const r = ratio(get(s, "native", "rate"), get(s, "pure", "rate"));
    T.push({ target: `throughput ${SCENARIOS[s].title} >= ${want}x`, value: r, ok: r !== null && r >= want });
  }
  for (const s of Object.keys(tp)) {
    if (!summary[s]) continue;
    const rs = ratio(get(s, "native", "sendCpuPer1k"), get(s, "pure", "sendCpuPer1k"));
    T.push({ target: `send CPU/1k ${SCENARIOS[s].title} <= 0.25`, value: rs, ok: rs !== null && rs <= 0.25 });
    const rr = ratio(get(s, "native", "recvCpuPer1k"), get(s, "pure", "recvCpuPer1k"));
    T.push({ target: `recv CPU/1k ${SCENARIOS[s].title} <= 0.33`, value: rr, ok: rr !== null && rr <= 0.33 });
  }
  const latencyTargets = { latency: { p50: 0.6, p99: 0.5 }, burst: { p50: 0.4, p99: 0.4 } };
  for (const [s, want] of Object.entries(latencyTargets)) {
    if (!summary[s]) continue;
    const pl = (summary[s].pure || {}).latency || {};
    const nl = (summary[s].native || {}).latency || {};
    for (const [k, max] of Object.entries(want)) {
      const r = ratio(nl[k], pl[k]);
      T.push({ target: `${SCENARIOS[s].title} ${k} <= ${max}`, value: r, ok: r !== null && r <= max });
    }
  }
  return T;
}

// Hand-written SVG: ratios (native / pure) per scenario on a log2 axis.
function chart(summary, machine) {
  const series = [
    { key: "rate", label: "throughput (higher is better)", color: "#2b7bb9" },
    { key: "sendCpuPer1k", label: "send CPU / msg", color: "#e08a1e" },
    { key: "recvCpuPer1k", label: "recv CPU / msg", color: "#d4b21b" },
    { key: "pgCpuPer1k", label: "PostgreSQL CPU / msg", color: "#8a63b8" },
    { key: "p50", label: "p50 latency", color: "#e8766a" },
    { key: "p99", label: "p99 latency", color: "#c0392b" },
  ];
  const groups = CFG.scenarios.filter((s) => !SCENARIOS[s].local && !SCENARIOS[s].ideal).map((s) => {
    const p = summary[s].pure || {};
    const n = summary[s].native || {};
    const vals = {};
    for (const { key } of series) {
      if (key === "p50" || key === "p99") vals[key] = ratio(n.latency && n.latency[key], p.latency && p.latency[key]);
      else if (key === "rate" && SCENARIOS[s].latency) vals[key] = null; // fixed rate
      else vals[key] = ratio(n[key], p[key]);
    }
    return { s, label: { latency: "latency @1k/s", burst: "bursts of 20" }[s] || s, vals };
  });
  const W = 900;
  const H = 440;
  const m = { l: 60, r: 20, t: 50, b: 110 };
  const minE = -5; // 1/32
  const maxE = 5; // 32
  const y = (v) => {
    const e = Math.max(minE, Math.min(maxE, Math.log2(v)));
    return m.t + ((maxE - e) / (maxE - minE)) * (H - m.t - m.b);
  };
  const gw = (W - m.l - m.r) / groups.length;
  const bw = Math.min(22, (gw - 16) / series.length);
  const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">socket.io-postgres-native / @socket.io/postgres-adapter (ratio, log scale)</text>`);
  o.push(`<text x="${W / 2}" y="38" text-anchor="middle" fill="#555">${esc(machine)}</text>`);
  for (let e = minE; e <= maxE; e++) {
    const yy = y(2 ** e);
    o.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}" stroke="${e === 0 ? "#000" : "#ddd"}" stroke-width="${e === 0 ? 1.5 : 1}"/>`);
    o.push(`<text x="${m.l - 6}" y="${yy + 4}" text-anchor="end">${e >= 0 ? 2 ** e : `1/${2 ** -e}`}</text>`);
  }
  groups.forEach((g, gi) => {
    const x0 = m.l + gi * gw + (gw - bw * series.length) / 2;
    series.forEach((se, si) => {
      const v = g.vals[se.key];
      if (v === null || v === undefined || !(v > 0)) return;
      const x = x0 + si * bw;
      const y1 = y(1);
      const yv = y(v);
      o.push(`<rect x="${x.toFixed(1)}" y="${Math.min(y1, yv).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${Math.max(1, Math.abs(yv - y1)).toFixed(1)}" fill="${se.color}"><title>${esc(se.label)}: ${v.toFixed(2)}x</title></rect>`);
      o.push(`<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(v >= 1 ? yv - 3 : yv + 11).toFixed(1)}" text-anchor="middle" font-size="9">${v >= 10 ? v.toFixed(0) : v.toFixed(1)}</text>`);
    });
    o.push(`<text x="${(m.l + gi * gw + gw / 2).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${esc(g.label)}</text>`);
  });
  series.forEach((se, i) => {
    const lx = m.l + (i % 3) * 260;
    const ly = H - m.b + 44 + Math.floor(i / 3) * 18;
    o.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${se.color}"/><text x="${lx + 18}" y="${ly}">${esc(se.label)}</text>`);
  });
  o.push(`<text x="${m.l}" y="${H - 12}" fill="#555">Above 1: throughput is higher. Below 1: CPU per message / latency is lower. Both are better for the native adapter.</text>`);
  o.push("</svg>");
  return o.join("\n") + "\n";
}

function machineInfo(pgVersion) {
  let cpu = os.cpus()[0] ? os.cpus()[0].model : "unknown CPU";
  cpu = cpu.replace(/\s+/g, " ").trim();
  return {
    cpu,
    cores: os.cpus().length,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: pgVersion,
    line: `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}, ${pgVersion.split(" on ")[0]}`,
  };
}

function gitState() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "lib", "binding", "CMakeLists.txt"], { cwd: ROOT, encoding: "utf8" }).trimEnd();
    const addon = path.join(ROOT, "build", "Release", "pgadapter.node");
    return { head, dirty: dirty ? dirty.split("\n") : [], addon: process.env.PGADAPTER_BINARY || addon,
      addonMtime: fs.existsSync(addon) ? fs.statSync(addon).mtime.toISOString() : null };
  } catch (_) {
    return null;
  }
}

// The servers load a private copy of the addon, so that a rebuild of build/Release during the
// run (others work in this tree) cannot break or change it halfway. PGADAPTER_BINARY wins.
let sourceState = null;
function snapshotAddon() {
  if (process.env.PGADAPTER_BINARY) return;
  const src = path.join(ROOT, "build", "Release", "pgadapter.node");
  const dir = path.join(ROOT, "build-bench");
  fs.mkdirSync(dir, { recursive: true });
  const dst = path.join(dir, `pgadapter-${process.pid}.node`);
  for (let attempt = 0; ; attempt++) {
    try {
      fs.copyFileSync(src, dst);
      execFileSync(process.execPath, ["-e", `require(${JSON.stringify(dst)})`], { stdio: "ignore" });
      break;
    } catch (err) {
      if (attempt >= 20) throw new Error(`cannot load ${src} (being rebuilt?): ${err.message}`);
      execFileSync("sleep", ["1"]);
    }
  }
  process.env.PGADAPTER_BINARY = dst;
  process.on("exit", () => fs.rmSync(dst, { force: true }));
  log(`using a copy of build/Release/pgadapter.node (${fs.statSync(src).mtime.toISOString()})`);
}

// ---- NOTIFY ceiling ------------------------------------------------------------------------
function ceilingTool() {
  const bin = path.join(ROOT, "build-bench", "notify_ceiling");
  const built = (name, source) =>
    fs.existsSync(name) && fs.statSync(name).mtimeMs >= fs.statSync(path.join(__dirname, source)).mtimeMs;
  if (!built(bin, "notify_ceiling.cc") || !built(path.join(path.dirname(bin), "notify_latency"), "notify_latency.cc")) {
    log("building bench/notify_ceiling ...");
    execFileSync("bash", [path.join(__dirname, "build-ceiling.sh"), bin], { stdio: ["ignore", "ignore", "inherit"] });
  }
  return bin;
}

function runCeiling(url) {
  const bin = ceilingTool();
  const run = (tool, args) => JSON.parse(execFileSync(tool, [url, ...args.map(String)], { encoding: "utf8" }));
  const out = {
    pipelined: run(bin, [CFG.ceilingSeconds, 100, 4, 100]),
    roundTrip: run(bin, [Math.min(2, CFG.ceilingSeconds), 1, 1, 100]),
  };
  // The latency floor: the same rate, bursts, warm-up and measured time as each latency scenario.
  const latencyTool = path.join(path.dirname(bin), "notify_latency");
  for (const s of CFG.scenarios.filter((x) => SCENARIOS[x].latency && !SCENARIOS[x].local && !SCENARIOS[x].ideal)) {
    out.latency = out.latency || {};
    out.latency[s] = run(latencyTool, [CFG.durationMs / 1000, CFG.latencyRate, SCENARIOS[s].burst, 3, CFG.warmupMs / 1000]);
  }
  return out;
}

// ---- main ----------------------------------------------------------------------------------
async function main() {
  const started = Date.now();
  let pgtmp = null;
  let url = process.env.DATABASE_URL;
  let dataDir = process.env.PGDATA || null;
  if (!url) {
    const { startPostgres } = require(path.join(ROOT, "test", "helpers", "pg-tmp"));
    pgtmp = startPostgres();
    url = pgtmp.url;
    dataDir = path.join(pgtmp.dir, "data");
  }
  const cleanup = () => {
    if (pgtmp) pgtmp.stop();
    pgtmp = null;
  };
  process.on("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  const db = new pg.Client({ connectionString: url });
  try {
    await db.connect();
    const table = "socket_io_attachments";
    await db.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`);
    if (CFG.storage) await db.query(`ALTER TABLE ${table} ALTER COLUMN payload SET STORAGE ${CFG.storage.toUpperCase()}`);
    const pgVersion = (await db.query("SELECT version()")).rows[0].version;
    const machine = machineInfo(pgVersion);
    log(`bench (${CFG.mode}): ${machine.line}; PostgreSQL CPU ${dataDir ? "measured" : "not measured (set PGDATA)"}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
    const loadStart = os.loadavg();
    const busyStart = systemBusy();

    let ceiling = null;
    if (CFG.ceiling) {
      try {
        ceiling = runCeiling(url);
        log(`NOTIFY ceiling: ${fmt(ceiling.pipelined.notificationsPerSec)}/s pipelined, ${fmt(ceiling.roundTrip.notificationsPerSec)}/s one per round trip`);
        for (const [s, l] of Object.entries(ceiling.latency || {})) log(`NOTIFY latency floor (${s}): p50 ${l.p50} p99 ${l.p99} max ${l.max} ms`);
      } catch (err) {
        log(`NOTIFY ceiling tool failed: ${err.message}`);
      }
    }

    sourceState = gitState(); // before the snapshot: the addon's mtime is the one copied
    snapshotAddon();
    const clients = new Child("clients.js", {});
    const ctx = { db, url, dataDir, table, clients };
    const runs = [];
    for (let si = 0; si < CFG.scenarios.length; si++) {
      const s = CFG.scenarios[si];
      const rounds = SCENARIOS[s].latency ? CFG.latencyRounds : CFG.rounds;
      for (let r = 0; r < rounds; r++) {
        let order = [...CFG.adapters];
        if ((r + si) % 2 === 1) order = order.reverse(); // alternate who goes first
        for (const a of order) {
          const res = await runOne(ctx, s, a);
          runs.push(res);
          if (res.error) log(`  ${s.padEnd(7)} ${a.padEnd(6)} ERROR ${res.error}`);
          else {
            const lat = res.latency ? `  p50 ${res.latency.p50.toFixed(2)} p99 ${res.latency.p99.toFixed(2)} max ${res.latency.max.toFixed(2)} ms` : "";
            log(
              `  ${s.padEnd(7)} ${a.padEnd(6)} ${fmt(res.rate).padStart(7)} msg/s  send ${fmt(res.sendCpuPer1k, 1)}  recv ${fmt(res.recvCpuPer1k, 1)}  clients ${fmt(res.clientsCpuPer1k, 1)}  pg ${fmt(res.pgCpuPer1k, 1)} ms/1k` +
                `  lost ${res.lost.join("/")} reordered ${res.reordered.join("/")}${res.adapterErrors ? ` errors ${res.adapterErrors}` : ""}${lat}`,
            );
          }
        }
      }
    }
    clients.proc.disconnect();

    const summary = {};
    for (const s of CFG.scenarios) {
      summary[s] = {};
      for (const a of CFG.adapters) summary[s][a] = aggregate(runs.filter((x) => x.scenario === s && x.adapter === a));
    }
    const table1 = tables(summary, ceiling);
    const tg = CFG.adapters.length === 2 ? targets(summary) : [];
    const elapsed = (Date.now() - started) / 1000;
    const busyEnd = systemBusy();
    // Whole-machine CPU use during the run (all processes, ours included), in cores.
    const machineCores = (busyEnd.busy - busyStart.busy) / Math.max(1, busyEnd.total - busyStart.total) * os.cpus().length;
    machine.loadAverage = { start: loadStart, end: os.loadavg() };
    machine.busyCoresDuringRun = machineCores;
    console.log(`\n${table1}\n`);
    if (tg.length) {
      console.log("Targets (issue #12, native / pure):");
      for (const t of tg) console.log(`  ${t.ok ? "PASS" : "FAIL"}  ${t.target}: ${t.value === null ? "–" : t.value.toFixed(2)}`);
    }
    console.log(`\n(${CFG.mode} run, ${elapsed.toFixed(0)} s; load average ${loadStart.map((x) => x.toFixed(1)).join("/")} at start, ${os.loadavg().map((x) => x.toFixed(1)).join("/")} at end)`);

    if (CFG.write) {
      fs.mkdirSync(RESULTS, { recursive: true });
      const json = {
        date: new Date().toISOString(),
        config: CFG,
        machine,
        adapters: ADAPTER_NAME,
        source: sourceState,
        ceiling,
        summary,
        targets: tg,
        runs: runs.map(({ samples, ...r }) => r),
        elapsedSeconds: elapsed,
      };
      fs.writeFileSync(path.join(RESULTS, "latest.json"), JSON.stringify(json, null, 2) + "\n");
      const md = [
        "# Benchmark results",
        "",
        `\`npm run bench${QUICK ? " -- --quick" : ""}\` on ${new Date().toISOString().slice(0, 10)}: ${machine.line}.`,
        `3 Socket.IO servers (one process each; A sends, B and C receive), one socket.io-client per receiving server, ` +
          `${CFG.rounds} round(s) per adapter and scenario (latency: ${CFG.latencyRounds}), alternating, ${CFG.warmupMs} ms warm-up + ${CFG.durationMs} ms measured each, ` +
          `window ${CFG.window || "1000 (small broadcast; serverSideEmit: 1000 pure-JS, 3000 native), 500 (4 KB, 1 KB binary), 200 (20 KB)"} messages in flight. msg/s = delivered per receiving server. CPU ms per 1,000 delivered messages: ` +
          "process.cpuUsage() of A (send) and B (recv); PostgreSQL: all processes of the cluster (/proc). " +
          "Ratio = native / pure (" + `${ADAPTER_NAME.native} / ${ADAPTER_NAME.pure}` + "). " +
          `Load average at start ${loadStart.map((x) => x.toFixed(1)).join("/")}, at end ${os.loadavg().map((x) => x.toFixed(1)).join("/")} ` +
          "(other work on the machine makes absolute numbers noisy; the alternation keeps the ratios fair).",
        "",
        table1,
        "",
        tg.length ? "Targets (issue #12):\n\n" + tg.map((t) => `- ${t.ok ? "PASS" : "FAIL"} ${t.target}: ${t.value === null ? "–" : t.value.toFixed(2)}`).join("\n") : "",
        "",
        "![ratios](chart.svg)",
        "",
      ].join("\n");
      fs.writeFileSync(path.join(RESULTS, "summary.md"), md);
      fs.writeFileSync(path.join(RESULTS, "chart.svg"), chart(summary, machine.line));
      log(`wrote bench/results/latest.json, summary.md, chart.svg`);
    }
  } finally {
    await db.end().catch(() => {});
    cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
