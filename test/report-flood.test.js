// A hostile role floods our channels with one statement (100,000 notifications): the errorHandler gets a
// bounded number of reports (rate-limited per code, with a summary of what was suppressed) while
// stats().errors still counts every occurrence, and real broadcasts sent during and after the flood arrive.
const { Pool } = require('pg');
const { Cluster, waitFor } = require('./helpers/cluster');
const { recoverableClient } = require('./helpers/recovery');

const PID = process.pid;
const FLOOD = 100000;
// Far above what the rate limit lets through in the seconds a test runs, far below one per notification.
const MAX_REPORTS = 500;

let pool;
beforeAll(() => {
  pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
});
afterAll(() => pool.end());

async function startCluster(serverOpts = {}, adapterOpts = {}) {
  const errors = [[], []];
  const cluster = new Cluster({ channelPrefix: 'rflood', size: 0, adapterOpts: { createTable: true, ...adapterOpts }, serverOpts });
  for (let i = 0; i < 2; i++) await cluster.addServer({ errorHandler: (err) => errors[i].push(err) });
  await cluster.waitReady();
  cluster.errors = errors;
  return cluster;
}

const channelOf = (cluster) => `${cluster.adapterOpts.channelPrefix}#/`;
const countOf = (cluster, i, code) => cluster.servers[i].io.of('/').adapter.stats().errors[code] || 0;
const fromB = (c) => c.got.filter(([e]) => e === 'b').map(([, v]) => v);

// Sends 30 broadcasts from B, a few ms apart, while `flood` runs; returns once all are sent and the flood is done.
async function broadcastDuring(cluster, flood) {
  const B = cluster.servers[1].io;
  for (let k = 0; k < 30; k++) {
    B.emit('b', k);
    await new Promise((r) => setTimeout(r, 20));
  }
  await flood;
}

test('100,000 malformed notifications: a bounded number of reports, every one counted, and a summary of the rest', async () => {
  const cluster = await startCluster();
  try {
    await pool.query(`SELECT pg_catalog.pg_notify($1, 'not json ' || g) FROM pg_catalog.generate_series(1, $2::int) g`, [
      channelOf(cluster),
      FLOOD,
    ]);
    await waitFor(() => countOf(cluster, 0, 'BAD_NOTIFICATION') === FLOOD, 60000, 'A to count every malformed notification');
    // The rest of the flood is summarised (same code) once its second is over.
    await waitFor(() => cluster.errors[0].some((e) => /more BAD_NOTIFICATION reports suppressed/.test(e.message)), 10000, 'the summary');
    const reports = cluster.errors[0].filter((e) => e.code === 'BAD_NOTIFICATION');
    expect(reports.length).toBeLessThan(MAX_REPORTS);
    expect(reports.every((e) => e instanceof Error)).toBe(true);
    // The summaries account for every suppressed report.
    const suppressed = reports
      .map((e) => /^(\d+) more BAD_NOTIFICATION reports suppressed/.exec(e.message))
      .filter(Boolean)
      .reduce((n, m) => n + Number(m[1]), 0);
    await waitFor(
      () => {
        const all = cluster.errors[0].filter((e) => e.code === 'BAD_NOTIFICATION');
        const summed = all.map((e) => /^(\d+) more BAD_NOTIFICATION/.exec(e.message)).filter(Boolean);
        return all.length - summed.length + summed.reduce((n, m) => n + Number(m[1]), 0) === FLOOD;
      },
      10000,
      'the reports and summaries to add up to the flood',
    );
    expect(suppressed).toBeGreaterThan(0);
    expect(countOf(cluster, 0, 'BAD_NOTIFICATION')).toBe(FLOOD);
  } finally {
    await cluster.close();
  }
}, 120000);

test("100,000 forged recovery offsets under another server's uid: B's broadcasts during and after all arrive, reports bounded", async () => {
  const cluster = await startCluster({ connectionStateRecovery: { maxDisconnectionDuration: 60000 } }, {
    logTableName: `rflood_log_${PID}`,
    sessionTableName: `rflood_sessions_${PID}`,
  });
  try {
    const c = await recoverableClient(cluster, 0);
    const uidB = cluster.servers[1].io.of('/').adapter.uid;
    // A well-formed broadcast to a room nobody is in: only its offset is a lie.
    const flood = pool.query(
      `SELECT pg_catalog.pg_notify($1, '{"uid":"' || $2 || '","type":3,"nsp":"/","offset":"' || g || '",' ||
         '"data":{"packet":{"type":2,"data":["forged"],"nsp":"/"},"opts":{"rooms":["nobody"],"except":[],"flags":{}}}}')
         FROM pg_catalog.generate_series(1, $3::int) g`,
      [channelOf(cluster), uidB, FLOOD],
    );
    await broadcastDuring(cluster, flood);
    cluster.servers[1].io.emit('b', 'after');
    await waitFor(() => fromB(c).length === 31, 60000, () => `A's client to get B's 31 broadcasts (got ${fromB(c).length})`);
    if (process.env.FLOOD_FIGURES) console.log('reports', cluster.errors[0].length, JSON.stringify(cluster.servers[0].io.of('/').adapter.stats().errors), JSON.stringify(cluster.servers[0].io.of('/').adapter.stats().dropped));
    expect(fromB(c)).toEqual([...Array.from({ length: 30 }, (_, k) => k), 'after']);
    expect(cluster.errors[0].length).toBeLessThan(MAX_REPORTS);
    expect(cluster.errors[0].filter((e) => e.code === 'CONNECTION_LOST')).toEqual([]);
    // Every forged offset is counted (reported as forged, or dropped while the inbound queue was full).
    const stats = cluster.servers[0].io.of('/').adapter.stats();
    expect((stats.errors.BAD_NOTIFICATION || 0) + stats.dropped.inboundOverflow).toBeGreaterThanOrEqual(FLOOD);
    c.disconnect();
  } finally {
    await cluster.close();
  }
}, 120000);
