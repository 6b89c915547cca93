'use strict';
// Chaos: two adapters in one process (two createAdapter() calls, as two Socket.IO servers), idle or flooding,
// while a separate throwaway PostgreSQL is restarted again and again (fast and immediate stops, with the event
// loop free or blocked by a synchronous restart) and while every backend is frozen with SIGSTOP for longer than
// the detection time (TCP keeps acknowledging: only a bounded wait for an answer can see it). After each fault:
// every server reports the outage of each connection once (CONNECTION_LOST, then RECONNECTED), the cluster heals,
// no message is duplicated, and every message published afterwards arrives exactly once.

const { Client } = require('pg');
const { startPostgres } = require('./helpers/pg-tmp');
const { waitFor } = require('./helpers/cluster');
const {
  describeErrors, count, pgStop, pgStart, pgRestartSync, startServers, waitHealed, expectExactlyOnce, flood,
  checkFlood,
} = require('./helpers/faults');

jest.setTimeout(60000);

// Our sessions: the publishing one keeps the plain name, the listening one carries the quiet-idle presence
// name (socket.io-postgres-native:<cluster>:<uid>).
const APP_NAME = 'socket.io-postgres-native%';
const ROLES = ['publishing', 'listening'];
// A frozen backend is noticed within about healthCheckInterval + responseTimeout.
const OPTS = { healthCheckInterval: 300, responseTimeout: 1000, createTable: true };

let pg;
let ctx;
let fault = 0;

beforeAll(async () => {
  pg = startPostgres();
  ctx = await startServers(pg.url, 2, OPTS, { prefix: 'chaos' });
});

afterAll(async () => {
  if (ctx) await ctx.cluster.close();
  if (pg) pg.stop();
});

// The backends of our adapters (the throwaway cluster serves nobody else).
async function adapterPids() {
  const admin = new Client({ connectionString: pg.url });
  await admin.connect();
  try {
    const { rows } = await admin.query(
      'SELECT pid FROM pg_catalog.pg_stat_activity WHERE application_name LIKE $1', [APP_NAME]);
    return rows.map((r) => r.pid);
  } finally {
    await admin.end();
  }
}

// Runs `inject` (idle, or in the middle of a flood from every server), then checks what users see.
async function survive(inject, { busy }) {
  const { cluster, errors, clients } = ctx;
  const before = errors.map((errs) => ROLES.map((r) => [count(errs, 'CONNECTION_LOST', r), count(errs, 'RECONNECTED', r)]));
  const tag = `chaos-${++fault}`;
  const PER = 300;
  if (busy) await flood(cluster, tag, PER, 100, inject);
  else await inject();

  for (const [i, errs] of errors.entries()) {
    await waitFor(
      () => ROLES.every((r, k) => count(errs, 'RECONNECTED', r) > before[i][k][1]),
      20000,
      () => `server ${i} to report the outage and RECONNECTED for both connections; it reported:\n  ${describeErrors(errs)}`,
    );
  }
  await waitHealed(cluster);
  if (busy) for (const c of clients) checkFlood(cluster, c, tag, PER);
  await expectExactlyOnce(cluster, 20);

  for (const [i, errs] of errors.entries()) {
    ROLES.forEach((r, k) => {
      // One outage: reported once, then once back, in that order.
      const lost = count(errs, 'CONNECTION_LOST', r) - before[i][k][0];
      const back = count(errs, 'RECONNECTED', r) - before[i][k][1];
      const last = (code) => errs.map((e) => e.code === code && e.message.includes(r)).lastIndexOf(true);
      expect({ server: i, role: r, lost, back, order: last('CONNECTION_LOST') < last('RECONNECTED') })
        .toEqual({ server: i, role: r, lost: 1, back: 1, order: true });
    });
    const other = errs.filter((e) => !['CONNECTION_LOST', 'RECONNECTED', 'PUBLISH_FAILED'].includes(e.code));
    expect(describeErrors(other)).toBe('(none)');
  }
}

// Restarts with the event loop free: the adapters see the sockets close while they can react.
const restartAsync = (mode) => async () => {
  await pgStop(pg, mode);
  await pgStart(pg);
};

// The whole restart runs synchronously in the servers' process, then every server broadcasts at once, before
// the loop has seen anything: the first writes go to sockets whose peer is gone.
const restartBlocked = (mode) => async () => {
  pgRestartSync(pg, mode);
  for (const s of ctx.cluster.servers) s.io.emit('after-restart', s.index);
};

// Every backend of both adapters stops answering (TCP still acknowledges) until both adapters gave up on it.
const freeze = async () => {
  const pids = await adapterPids();
  expect(pids.length).toBe(4);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  try {
    await waitFor(
      () => ctx.errors.every((errs) => ROLES.every((r) => errs.some((e) => e.code === 'CONNECTION_LOST' && e.message.includes(r)
        && !e.seen))),
      20000,
      () => `both adapters to notice their frozen backends; they reported:\n  ${ctx.errors.map(describeErrors).join('\n  ')}`,
    );
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch (_) { /* already gone */ }
    }
  }
};

// Marks what was reported so far, so that freeze() waits for reports of this outage only.
function markSeen() {
  for (const errs of ctx.errors) for (const e of errs) e.seen = true;
}

for (const busy of [false, true]) {
  const load = busy ? 'busy' : 'idle';
  describe(`${load} adapters`, () => {
    for (const mode of ['fast', 'immediate']) {
      test(`PostgreSQL restarted (${mode} stop), event loop free`, async () => {
        await survive(restartAsync(mode), { busy });
      });
      test(`PostgreSQL restarted (${mode} stop) while the event loop is blocked`, async () => {
        await survive(restartBlocked(mode), { busy });
      });
    }
    test('every backend frozen with SIGSTOP longer than the detection time', async () => {
      markSeen();
      await survive(freeze, { busy });
    });
  });
}
