'use strict';
// Quiet idle: an idle cluster of this package's servers commits nothing (no heartbeat NOTIFY), yet keeps
// its membership: a killed server drops out, a new one is counted at once, and a mixed cluster with a
// pure-JS server goes back to heartbeats.

const path = require('path');
const { fork } = require('child_process');
const { Client } = require('pg');
const { io: ioClient } = require('socket.io-client');
const { Cluster, waitFor, waitForClusterReady, withTimeout } = require('./helpers/cluster');
const { channelName } = require('../lib/channel');

// Short intervals so that a window of several heartbeat intervals (and past heartbeatTimeout) stays short.
const OPTS = { heartbeatInterval: 300, heartbeatTimeout: 3000 };
const WINDOW = 4000; // longer than heartbeatTimeout: liveness cannot have come from earlier heartbeats

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let watcher;
beforeAll(async () => {
  watcher = new Client({ connectionString: process.env.DATABASE_URL });
  await watcher.connect();
});
afterAll(async () => {
  if (watcher) await watcher.end();
});

// Listens on the cluster's channel of `/` for `ms`: the messages seen ({ type, uid }) and the transaction ids
// taken in the database meanwhile (the next xid before and after; reading it takes none).
async function observe(cluster, ms) {
  const channel = channelName(cluster.adapterOpts.channelPrefix, '/');
  const seen = [];
  const onNotification = (n) => {
    if (n.channel !== channel) return;
    try {
      const m = JSON.parse(n.payload);
      seen.push({ type: m.type, uid: m.uid });
    } catch (_) {
      seen.push({ type: 'binary' });
    }
  };
  watcher.on('notification', onNotification);
  await watcher.query(`LISTEN ${watcher.escapeIdentifier(channel)}`);
  const nextXid = async () =>
    BigInt((await watcher.query('SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot())::pg_catalog.text AS x')).rows[0].x);
  const before = await nextXid();
  await sleep(ms);
  const after = await nextXid();
  await watcher.query(`UNLISTEN ${watcher.escapeIdentifier(channel)}`);
  watcher.off('notification', onNotification);
  return { seen, xids: Number(after - before) };
}

function connectTo(port) {
  const client = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
  return withTimeout(
    new Promise((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('connect_error', reject);
    }),
    5000,
    'a client to connect',
  );
}

// In one transaction: what `forge` ([sql, params]) sends, then a broadcast of event `ev`; returns once `client`
// has that broadcast, and so the servers have handled what was forged before it.
async function forgeThenBroadcast(channel, [sql, params], ev, client, timeoutMs) {
  await watcher.query('BEGIN');
  await watcher.query(sql, params);
  await watcher.query('SELECT pg_catalog.pg_notify($1, $2)', [channel, JSON.stringify({
    type: 3, uid: 'emitter', nsp: '/', data: { packet: { type: 2, data: [ev], nsp: '/' }, opts: { rooms: [], except: [], flags: {} } },
  })]);
  await watcher.query('COMMIT');
  await waitFor(() => client.received.some((e) => e[0] === ev), timeoutMs, `the broadcast sent after the forged messages (${ev})`);
}

const counts = (cluster) => Promise.all(cluster.servers.map((s) => s.io.of('/').adapter.serverCount()));

describe('quiet idle', () => {
  let cluster;
  afterEach(async () => {
    if (cluster) await cluster.close();
    cluster = null;
  });

  test('an idle cluster of native servers sends no heartbeat and takes no transaction id, and keeps counting every server', async () => {
    cluster = new Cluster({ channelPrefix: 'quiet', size: 3, adapterOpts: OPTS });
    await cluster.start();
    await cluster.connectOnEach();
    // A window with no message at all (autovacuum may take an xid in one window, not in every one).
    let last;
    await waitFor(async () => {
      last = await observe(cluster, WINDOW);
      return last.seen.length === 0 && last.xids === 0;
    }, 30000, () => `an idle window (last one: ${last && JSON.stringify(last.seen.slice(0, 5))}, ${last && last.xids} xids)`);
    // Past heartbeatTimeout without a heartbeat, every server still counts the others.
    expect(await counts(cluster)).toEqual([3, 3, 3]);
    const sockets = await cluster.servers[1].io.fetchSockets();
    expect(sockets.map((s) => s.data.server).sort()).toEqual([0, 1, 2]);
  }, 60000);

  test('a mixed cluster with a pure-JS server keeps heartbeating, and fetchSockets counts all', async () => {
    cluster = new Cluster({ channelPrefix: 'quietmix', size: 3, adapters: ['native', 'pure', 'native'], adapterOpts: OPTS });
    await cluster.start();
    await cluster.connectOnEach();
    const natives = [0, 2].map((i) => cluster.servers[i].io.of('/').adapter.uid);
    const { seen } = await observe(cluster, WINDOW);
    for (const uid of natives) {
      expect(seen.some((m) => m.type === 2 && m.uid === uid)).toBe(true); // HEARTBEAT
    }
    expect(await counts(cluster)).toEqual([3, 3, 3]);
    for (const server of cluster.servers) {
      const sockets = await server.io.fetchSockets();
      expect(sockets.map((s) => s.data.server).sort()).toEqual([0, 1, 2]);
    }
  });

  test('servers of roles that cannot see each other\'s sessions fall back to heartbeats, and keep counting all', async () => {
    const roles = [`quiet_a_${process.pid}`, `quiet_b_${process.pid}`];
    for (const role of roles) {
      await watcher.query(`DROP ROLE IF EXISTS ${role}`);
      await watcher.query(`CREATE ROLE ${role} LOGIN`);
    }
    try {
      const urlOf = (role) => {
        const url = new URL(process.env.DATABASE_URL);
        url.username = role;
        return url.toString();
      };
      // Server 2 is the superuser: it sees the others' sessions; they see nobody's state_change.
      cluster = new Cluster({
        channelPrefix: 'quietroles', size: 3, adapterOpts: OPTS,
        poolConfig: (i) => (i < 2 ? { connectionString: urlOf(roles[i]) } : {}),
      });
      await cluster.start();
      await cluster.connectOnEach();
      await sleep(OPTS.heartbeatInterval * 2); // every server has had a look
      const uids = cluster.servers.map((s) => s.io.of('/').adapter.uid);
      const { seen } = await observe(cluster, WINDOW);
      for (const uid of uids) {
        expect(seen.some((m) => m.type === 2 && m.uid === uid)).toBe(true); // HEARTBEAT
      }
      expect(await counts(cluster)).toEqual([3, 3, 3]);
      expect((await cluster.servers[0].io.fetchSockets()).map((s) => s.data.server).sort()).toEqual([0, 1, 2]);
    } finally {
      if (cluster) await cluster.close();
      cluster = null;
      for (const role of roles) await watcher.query(`DROP ROLE IF EXISTS ${role}`);
    }
  }, 60000);

  test('a killed server drops out within heartbeatTimeout; a new one is counted at once', async () => {
    cluster = new Cluster({ channelPrefix: 'quietkill', size: 2, adapterOpts: OPTS });
    await cluster.start();
    await cluster.connectOnEach();
    const child = fork(path.join(__dirname, 'fixtures', 'quiet-server.js'), [cluster.adapterOpts.channelPrefix, JSON.stringify(OPTS)], {
      stdio: 'inherit',
    });
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    let childClient;
    try {
      const { port } = await withTimeout(
        new Promise((resolve, reject) => {
          child.once('message', resolve);
          child.once('exit', () => reject(new Error('the child server exited before listening')));
        }),
        10000,
        'the child server to listen',
      );
      childClient = await connectTo(port);
      // Known from its INITIAL_HEARTBEAT, not from a periodic heartbeat (there is none in a quiet cluster).
      await waitForClusterReady(cluster.servers, { expected: 3 });
      expect((await cluster.servers[0].io.fetchSockets()).map((s) => s.data.server).sort()).toEqual([0, 1, 'child']);
      // Quiet: past heartbeatTimeout, still counted.
      await waitFor(async () => (await observe(cluster, WINDOW)).seen.length === 0, 30000, 'an idle window');
      expect(await counts(cluster)).toEqual([3, 3]);

      child.kill('SIGKILL'); // no ADAPTER_CLOSE
      await waitFor(() => exited, 5000, 'the child to die');
      await waitForClusterReady(cluster.servers, { expected: 2, timeoutMs: OPTS.heartbeatTimeout * 4 });
      // fetchSockets waits for the live servers only: it answers (no timeout) with their sockets.
      expect((await cluster.servers[1].io.fetchSockets()).map((s) => s.data.server).sort()).toEqual([0, 1]);

      // A new server: known at once, quiet or not.
      await cluster.addServer();
      await waitForClusterReady(cluster.servers, { expected: 3 });
    } finally {
      if (childClient) childClient.close();
      if (!exited) child.kill('SIGKILL');
    }
  }, 90000);

  test('an ADAPTER_CLOSE forged under a live server\'s uid (any role may NOTIFY): that server is counted again', async () => {
    cluster = new Cluster({ channelPrefix: 'quietclose', size: 2, adapterOpts: OPTS });
    await cluster.start();
    const [onA] = await cluster.connectOnEach();
    await sleep(OPTS.heartbeatInterval * 2); // every server has had a look: the cluster is quiet
    const channel = channelName(cluster.adapterOpts.channelPrefix, '/');
    const victim = cluster.servers[1].io.of('/').adapter.uid;
    await forgeThenBroadcast(channel, ['SELECT pg_catalog.pg_notify($1, $2)', [channel, JSON.stringify({ type: 13, uid: victim, nsp: '/' })]],
      'after-close', onA, 5000);
    await waitFor(async () => (await cluster.servers[0].io.of('/').adapter.serverCount()) === 2, OPTS.heartbeatTimeout * 2,
      'server 0 to count server 1 again');
    expect((await cluster.servers[0].io.fetchSockets()).map((s) => s.data.server).sort()).toEqual([0, 1]);
  }, 30000);

  test('100000 ADAPTER_CLOSEs forged under a live server\'s uid: it is asked again once, not once per close', async () => {
    cluster = new Cluster({ channelPrefix: 'quietcloses', size: 2, adapterOpts: OPTS });
    await cluster.start();
    const [onA] = await cluster.connectOnEach();
    await sleep(OPTS.heartbeatInterval * 2);
    const channel = channelName(cluster.adapterOpts.channelPrefix, '/');
    const victim = cluster.servers[1].io.of('/').adapter.uid;
    const published = () => cluster.servers[0].io.of('/').adapter.stats().published.messages;
    const before = published();
    // Distinct payloads (PostgreSQL folds identical ones in a transaction).
    await forgeThenBroadcast(channel, [`SELECT pg_catalog.pg_notify($1, '{"type":13,"uid":"' || $2::text || '","nsp":"/","n":' || g::text || '}') FROM generate_series(1, 100000) g`,
      [channel, victim]], 'after-closes', onA, 20000);
    await waitFor(async () => (await cluster.servers[0].io.of('/').adapter.serverCount()) === 2, OPTS.heartbeatTimeout * 2,
      'server 0 to count server 1 again');
    await sleep(OPTS.heartbeatInterval * 3); // several more looks
    expect(published() - before).toBeLessThan(10);
  }, 60000);
});
