'use strict';
// Settings a DBA puts on the adapter's role (ALTER ROLE ... SET) must not cut the cluster apart: the adapter's
// sessions are long-lived and mostly idle by design (a LISTEN session waits for notifications).

const { Client } = require('pg');
const { Cluster, waitFor, expectPairCountsEachOther } = require('./helpers/cluster');
const { describeErrors } = require('./helpers/faults');

jest.setTimeout(30000);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let admin;
let cluster;
const roles = [];
const tables = []; // created by a test's role: dropped before it

beforeAll(async () => {
  admin = new Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
});
afterEach(async () => {
  if (cluster) await cluster.close();
  cluster = null;
  for (const table of tables.splice(0)) await admin.query(`DROP TABLE IF EXISTS ${table}`);
  for (const role of roles.splice(0)) await admin.query(`DROP ROLE IF EXISTS ${role}`);
});
afterAll(async () => {
  if (admin) await admin.end();
});

// A fresh LOGIN role (no grants: it can still NOTIFY and LISTEN) with `settings` set on it.
async function roleWith(name, settings, attributes = '') {
  const role = `${name}_${process.pid}`;
  roles.push(role);
  await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.query(`CREATE ROLE ${role} LOGIN ${attributes}`);
  for (const [key, value] of Object.entries(settings)) await admin.query(`ALTER ROLE ${role} SET ${key} = '${value}'`);
  const url = new URL(process.env.DATABASE_URL);
  url.username = role;
  return url.toString();
}

// Every server emits one marker; resolves once every client has got all of them.
async function broadcastsFlow(c, tag) {
  for (const s of c.servers) s.io.emit('probe', `${tag}/${s.index}`);
  await waitFor(
    () => c.clients.every((cl) => c.servers.every((s) => cl.received.some((e) => e[0] === 'probe' && e[1] === `${tag}/${s.index}`))),
    5000,
    `the probes ${tag} of every server to reach every client`,
  );
}

test('idle_session_timeout on the role: the idle adapter sessions are not cut, and broadcasts flow', async () => {
  const url = await roleWith('idle_session', { idle_session_timeout: '300ms' });
  const errors = [];
  cluster = new Cluster({
    channelPrefix: 'rolesettings', size: 2,
    adapterOpts: { heartbeatInterval: 1000, heartbeatTimeout: 10000, errorHandler: (err) => errors.push(err) },
    poolConfig: { connectionString: url },
  });
  await cluster.start();
  await cluster.connectOnEach();
  await broadcastsFlow(cluster, 'start');
  await sleep(2500); // the cluster idles for several times the role's idle_session_timeout
  await broadcastsFlow(cluster, 'after-idle');
  const lost = errors.filter((e) => e.code === 'CONNECTION_LOST');
  expect({ lost: lost.length, reports: describeErrors(lost) }).toEqual({ lost: 0, reports: '(none)' });
});

test('default_transaction_isolation = serializable on the role: concurrent recoverable broadcasts are all logged', async () => {
  const url = await roleWith('serializable', { default_transaction_isolation: 'serializable' }, 'SUPERUSER');
  tables.push(`iso_log_${process.pid}`, `iso_sessions_${process.pid}`);
  const errors = [];
  cluster = new Cluster({
    channelPrefix: 'rolesettings', size: 2,
    adapterOpts: { logTableName: tables[0], sessionTableName: tables[1], createTable: true, errorHandler: (err) => errors.push(err) },
    serverOpts: { connectionStateRecovery: { maxDisconnectionDuration: 60000 } },
    poolConfig: { connectionString: url },
  });
  await cluster.start();
  await cluster.connectOnEach();
  // Both servers log broadcasts at once: their statements contend for the log's row 0.
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < 10; j++) for (const s of cluster.servers) s.io.emit('m', `${s.index}/${i}/${j}`);
    await sleep(2);
  }
  await waitFor(() => cluster.clients.every((c) => c.received.filter((e) => e[0] === 'm').length === 800), 20000, 'every broadcast to reach every client');
  await broadcastsFlow(cluster, 'after'); // logged after the others: all of them have been through the log by then
  const failed = errors.filter((e) => e.code === 'RECOVERY_FAILED');
  expect({ failed: failed.length, reports: describeErrors(failed) }).toEqual({ failed: 0, reports: '(none)' });
});

// Quiet idle skips the periodic heartbeat, so membership rests on the INITIAL_HEARTBEAT and its answers: one
// that PostgreSQL refused once (any transient publish failure) must be sent again, or the two servers never
// count each other while the cluster is idle (fetchSockets() silently misses the other server's sockets).
test('a server whose INITIAL_HEARTBEAT PostgreSQL refused (pg_notify revoked for a moment) still joins a quiet cluster', async () => {
  const url = await roleWith('notify_revoked', {}); // both servers under one role: they see each other's sessions
  const errors = [[], []];
  cluster = new Cluster({ channelPrefix: 'rolesettings', size: 0, poolConfig: { connectionString: url } });
  await cluster.addServer({ errorHandler: (err) => errors[0].push(err) });
  await cluster.waitReady();
  try {
    await admin.query('REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(pg_catalog.text, pg_catalog.text) FROM PUBLIC');
    await cluster.addServer({ errorHandler: (err) => errors[1].push(err) });
    await waitFor(() => errors[1].some((e) => e.code === 'PUBLISH_FAILED'), 5000, 'the new server to report its refused publish');
  } finally {
    await admin.query('GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(pg_catalog.text, pg_catalog.text) TO PUBLIC');
  }
  // Idle from here on: no broadcast that would introduce the servers to each other.
  await expectPairCountsEachOther(cluster);
  expect(describeErrors(errors[0])).toBe('(none)');
  expect(describeErrors(errors[1].filter((e) => e.code !== 'PUBLISH_FAILED'))).toBe('(none)');
});

test('lock_timeout on the role: a large broadcast waits out a lock held for a moment on the attachments table', async () => {
  const url = await roleWith('lock_timeout', { lock_timeout: '50ms' }, 'SUPERUSER');
  const errors = [];
  cluster = new Cluster({
    channelPrefix: 'rolesettings', size: 2,
    adapterOpts: { errorHandler: (err) => errors.push(err) },
    poolConfig: { connectionString: url },
  });
  await cluster.start();
  await cluster.connectOnEach();
  const locker = new Client({ connectionString: process.env.DATABASE_URL });
  await locker.connect();
  try {
    // Another session (a migration, a VACUUM FULL) holds a lock that blocks INSERT for well under statementTimeout.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE socket_io_attachments IN SHARE MODE');
    cluster.servers[0].io.emit('big', 'x'.repeat(20000)); // over NOTIFY's payload limit: an attachment row
    await sleep(500);
    await locker.query('ROLLBACK');
  } finally {
    await locker.end();
  }
  await waitFor(() => cluster.clients[1].received.some((e) => e[0] === 'big'), 5000, 'the large broadcast to reach the other server');
  expect(describeErrors(errors)).toBe('(none)');
});
