'use strict';
// Shared by the fault and chaos suites: a separate PostgreSQL cluster stopped and started in place, servers
// with their errors collected, and the checks that a cluster healed and delivers every message exactly once.

const fs = require('fs');
const path = require('path');
const { execFile, execFileSync } = require('child_process');
const { promisify } = require('util');
const { Cluster, waitFor } = require('./cluster');
const { reportedCount } = require('./reports');

// Fast reconnects so that a test heals in well under a second once the database is back.
const FAST = { reconnectInitialDelay: 50, reconnectMaxDelay: 500, connectTimeout: 5000 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const describeErrors = (errs) => errs.map((e) => `${e.code}: ${e.message}`).join('\n  ') || '(none)';
const role = (err) => (/\blistening\b/.test(err.message) ? 'listening' : /\bpublishing\b/.test(err.message) ? 'publishing' : '?');
// Summaries of rate-limited reports count for what they stand for (CONNECTION_LOST and RECONNECTED are never limited).
const count = (errs, code, r) => reportedCount(errs, code, (e) => !r || role(e) === r);

// ---------------------------------------------------------------------------------------------------------
// The separate PostgreSQL cluster: stopped and started here without removing it (pg-tmp.sh `stop` deletes it).

function pgBindir() {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  if (fs.existsSync('/usr/lib/postgresql/15/bin/pg_ctl')) return '/usr/lib/postgresql/15/bin';
  const versions = fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql') : [];
  const found = versions.sort((a, b) => Number(b) - Number(a)).map((v) => `/usr/lib/postgresql/${v}/bin`)
    .find((d) => fs.existsSync(`${d}/pg_ctl`));
  if (!found) throw new Error('pg_ctl not found (install postgresql-15 or set PG_BINDIR)');
  return found;
}
const AS = process.getuid && process.getuid() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
// An ASan run preloads libasan: PostgreSQL must not inherit it.
const PG_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !['LD_PRELOAD', 'ASAN_OPTIONS', 'LSAN_OPTIONS'].includes(k)),
);
function pgCtlArgs(pg, args) {
  return [...AS, path.join(pgBindir(), 'pg_ctl'), '-D', `${pg.dir}/data`, ...args];
}
async function pgCtl(pg, args) {
  const [file, ...rest] = pgCtlArgs(pg, args);
  await promisify(execFile)(file, rest, { env: PG_ENV });
}
// Blocks the event loop for the whole command (a long synchronous task in a server process).
function pgCtlSync(pg, args) {
  const [file, ...rest] = pgCtlArgs(pg, args);
  execFileSync(file, rest, { env: PG_ENV, stdio: 'ignore' });
}
const stopArgs = (mode) => ['-m', mode, '-w', 'stop'];
const startArgs = (pg, maxConnections = 300) => ['-l', `${pg.dir}/server.log`, '-w', '-t', '30', '-o',
  `-p ${pg.port} -k ${pg.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off ` +
  `-c full_page_writes=off -c max_connections=${maxConnections}`, 'start'];
// mode: 'fast' (sessions get an error and are closed) or 'immediate' (killed, no goodbye).
const pgStop = (pg, mode = 'fast') => pgCtl(pg, stopArgs(mode));
const pgStart = (pg, { maxConnections = 300 } = {}) => pgCtl(pg, startArgs(pg, maxConnections));
const pgRestartSync = (pg, mode = 'fast') => {
  pgCtlSync(pg, stopArgs(mode));
  pgCtlSync(pg, startArgs(pg));
};

// ---------------------------------------------------------------------------------------------------------
// Servers: the shared Cluster helper, pointed at a given database (it reads DATABASE_URL when a server starts).

async function addServerOn(cluster, url, adapterOpts) {
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = url;
  try {
    return await cluster.addServer(adapterOpts);
  } finally {
    process.env.DATABASE_URL = saved;
  }
}

// Starts `n` servers on `url`, each with its errors collected in errors[i], and one client on each
// (clients[i] on server i). Waits for the cluster only when `ready`.
async function startServers(url, n, adapterOpts = {}, { ready = true, prefix = 'faults' } = {}) {
  const cluster = new Cluster({ channelPrefix: prefix, size: 0, adapterOpts: { ...FAST, ...adapterOpts } });
  const errors = [];
  for (let i = 0; i < n; i++) await addServer(cluster, errors, url);
  if (ready) await cluster.waitReady();
  const clients = await cluster.connectOnEach();
  return { cluster, errors, clients };
}

async function addServer(cluster, errors, url, adapterOpts = {}) {
  const errs = [];
  errors.push(errs);
  return addServerOn(cluster, url, { errorHandler: (err) => errs.push(err), ...adapterOpts });
}

// How many times `client` received event 'm' with each id.
function countsOf(client) {
  const counts = new Map();
  for (const [ev, id] of client.received) if (ev === 'm') counts.set(id, (counts.get(id) || 0) + 1);
  return counts;
}

let markSeq = 0;
// Every server emits a marker; resolves once every client has all of them. Messages of one server reach the
// others in publish order, so anything sent before (a duplicate, say) has arrived by then.
async function barrierAll(cluster, timeoutMs = 10000) {
  const ids = cluster.servers.map((s) => {
    const id = `mark-${++markSeq}`;
    s.io.emit('__mark__', id);
    return id;
  });
  const clients = cluster.clients.filter((c) => c.connected);
  await waitFor(
    () => clients.every((c) => ids.every((id) => c.received.some((e) => e[0] === '__mark__' && e[1] === id))),
    timeoutMs,
    'the markers of every server to reach every client',
  );
}

// The cluster has healed when a probe from every server reaches every client. Probes are sent again every
// 300 ms until then (a message sent while a listener is still reconnecting is lost, as documented).
async function waitHealed(cluster, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  const clients = cluster.clients.filter((c) => c.connected);
  for (let round = 0; ; round++) {
    const tag = `probe-${++markSeq}`;
    for (const s of cluster.servers) s.io.emit('__probe__', tag, s.index);
    const got = () => clients.every((c) =>
      cluster.servers.every((s) => c.received.some((e) => e[0] === '__probe__' && e[1] === tag && e[2] === s.index)));
    const until = Date.now() + 300;
    while (!got() && Date.now() < until) await sleep(10);
    if (got()) return round;
    if (Date.now() > deadline) {
      const missing = clients.flatMap((c) => cluster.servers
        .filter((s) => !c.received.some((e) => e[0] === '__probe__' && e[1] === tag && e[2] === s.index))
        .map((s) => `server ${s.index} → client ${c.label}`));
      throw new Error(`the cluster did not heal within ${timeoutMs} ms: no probe for ${missing.join(', ')}`);
    }
  }
}

let tagSeq = 0;
// Every server emits `perServer` messages; every client must get each one exactly once.
async function expectExactlyOnce(cluster, perServer = 40) {
  const tag = `after-${++tagSeq}`;
  const ids = [];
  for (const s of cluster.servers) {
    for (let i = 0; i < perServer; i++) {
      const id = `${tag}/${s.index}/${i}`;
      ids.push(id);
      s.io.emit('m', id);
    }
  }
  const clients = cluster.clients.filter((c) => c.connected);
  await waitFor(
    () => clients.every((c) => { const counts = countsOf(c); return ids.every((id) => counts.has(id)); }),
    20000,
    () => `every message published after recovery to reach every client; missing: ${clients.map((c) => {
      const counts = countsOf(c);
      return `${c.label}: ${ids.filter((id) => !counts.has(id)).length}`;
    }).join(', ')}`,
  );
  await barrierAll(cluster);
  for (const c of clients) {
    const counts = countsOf(c);
    const wrong = ids.filter((id) => counts.get(id) !== 1).map((id) => `${id} x${counts.get(id)}`);
    expect({ client: c.label, notExactlyOnce: wrong }).toEqual({ client: c.label, notExactlyOnce: [] });
  }
}

// Emits perServer messages from every server in small steps (so the flood spans a while); calls `fault`
// once, after `faultAt` messages per server. Resolves with the fault's promise settled.
async function flood(cluster, tag, perServer, faultAt, fault) {
  let faultPromise = null;
  await new Promise((resolve) => {
    let i = 0;
    const step = () => {
      const end = Math.min(i + 10, perServer);
      for (; i < end; i++) for (const s of cluster.servers) s.io.emit('m', `${tag}/${s.index}/${i}`);
      if (!faultPromise && i >= faultAt) faultPromise = fault();
      if (i < perServer) setTimeout(step, 3);
      else resolve();
    };
    step();
  });
  await faultPromise;
}

// What a client got of a flood: no message twice; its own server's messages all (local delivery never waits
// for the database). Returns, per sending server, how many of its messages this client missed.
function checkFlood(cluster, client, tag, perServer) {
  const counts = countsOf(client);
  const dup = [...counts].filter(([id, n]) => id.startsWith(`${tag}/`) && n > 1).map(([id, n]) => `${id} x${n}`);
  expect({ client: client.label, duplicates: dup }).toEqual({ client: client.label, duplicates: [] });
  const missing = cluster.servers.map((s) => {
    let n = 0;
    for (let i = 0; i < perServer; i++) if (!counts.has(`${tag}/${s.index}/${i}`)) n++;
    return n;
  });
  expect({ client: client.label, missedLocal: missing[client.serverIndex] })
    .toEqual({ client: client.label, missedLocal: 0 });
  return missing;
}

// Messages reported as not published: the sum of N in "failed to publish N messages".
function reportedFailed(errs) {
  return errs.filter((e) => e.code === 'PUBLISH_FAILED')
    .reduce((sum, e) => sum + Number((/failed to publish (\d+) message/.exec(e.message) || [0, 0])[1]), 0);
}

// Waits until each server reported RECONNECTED for each of `roles`.
async function waitReconnected(errors, roles, timeoutMs = 30000) {
  for (const [i, errs] of errors.entries()) {
    await waitFor(
      () => roles.every((r) => count(errs, 'RECONNECTED', r) >= 1),
      timeoutMs,
      () => `server ${i} to report RECONNECTED for ${roles.join(' and ')}; it reported:\n  ${describeErrors(errs)}`,
    );
  }
}


module.exports = {
  FAST, sleep, describeErrors, role, count, pgBindir, pgStop, pgStart, pgRestartSync, addServerOn, startServers,
  addServer, countsOf, barrierAll, waitHealed, expectExactlyOnce, flood, checkFlood, reportedFailed, waitReconnected,
};
