'use strict';
// Connection faults: backends killed with pg_terminate_backend (mid-flood), a PostgreSQL restart mid-flood,
// servers started while the database is down or does not exist yet, max_connections exhausted, close() in every
// connection state, and the bounded publish queue. For each: no crash, errors reported through errorHandler
// (CONNECTION_LOST once per outage and connection, not a flood), the cluster heals by itself, and every message
// published after recovery arrives exactly once.
//
// The shared database (DATABASE_URL) is only disturbed by killing our own backends; restarts, stops and
// max_connections run against a separate throwaway cluster started here.

const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const { Client } = require('pg');
const { Cluster, waitFor, waitForEvents, eventsOf, withTimeout } = require('./helpers/cluster');
const { startPostgres } = require('./helpers/pg-tmp');
const {
  FAST, sleep, describeErrors, role, count, pgStop, pgStart, addServerOn, startServers, addServer, barrierAll,
  waitHealed, expectExactlyOnce, flood, checkFlood, reportedFailed, waitReconnected,
} = require('./helpers/faults');

const PREFIX = 'faults';
// Our sessions: the publishing one keeps the plain name, the listening one carries the quiet-idle presence
// name (socket.io-postgres-native:<cluster>:<uid>).
const APP_NAME = 'socket.io-postgres-native%';
jest.setTimeout(120000);

// ---------------------------------------------------------------------------------------------------------

describe('backends killed with pg_terminate_backend (shared database)', () => {
  let admin; // a plain pg client: the operator
  let watcher; // LISTENs on our channel to learn each server's publishing backend (notification sender pid)
  const publisherPid = new Map(); // adapter uid -> pid of its latest publishing backend
  let ctx;

  beforeAll(async () => {
    admin = new Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
  });
  afterAll(async () => {
    if (admin) await admin.end();
  });
  beforeEach(async () => {
    ctx = await startServers(process.env.DATABASE_URL, 3);
    watcher = new Client({ connectionString: process.env.DATABASE_URL });
    await watcher.connect();
    watcher.on('notification', (msg) => {
      try {
        const { uid } = JSON.parse(msg.payload);
        if (uid) publisherPid.set(uid, msg.processId);
      } catch (_) { /* not ours */ }
    });
    await watcher.query(`LISTEN "${ctx.cluster.adapterOpts.channelPrefix}#/"`);
  });
  afterEach(async () => {
    if (watcher) await watcher.end();
    watcher = null;
    if (ctx) await ctx.cluster.close();
    ctx = null;
  });

  const uids = () => ctx.cluster.servers.map((s) => s.io.of('/').adapter.uid);

  async function publishingPids() {
    // A quiet idle cluster sends no periodic heartbeat: each server still silent publishes a message.
    let asked = 0;
    await waitFor(() => {
      const missing = ctx.cluster.servers.filter((s) => !publisherPid.has(s.io.of('/').adapter.uid));
      if (Date.now() - asked > 250) {
        asked = Date.now();
        for (const s of missing) s.io.serverSideEmit('__whoami__');
      }
      return missing.length === 0;
    }, 10000, 'a message from every server');
    return uids().map((u) => publisherPid.get(u));
  }

  async function listeningPids() {
    const publishers = await publishingPids();
    const { rows } = await admin.query(
      'SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> ALL($2::int[])',
      [APP_NAME, publishers],
    );
    return rows.map((r) => r.pid);
  }

  async function terminate(pids) {
    const { rows } = await admin.query('SELECT pg_terminate_backend(pid) AS ok FROM unnest($1::int[]) AS pid', [pids]);
    return rows.filter((r) => r.ok).length;
  }

  test('the LISTEN backends, killed mid-flood: reported once, re-LISTEN, exactly once after recovery', async () => {
    const { cluster, errors, clients } = ctx;
    const listeners = await listeningPids();
    expect(listeners.length).toBeGreaterThanOrEqual(3);
    const PER = 600;
    let killed = 0;
    await flood(cluster, 'flood-listen', PER, 200, async () => {
      killed = await terminate(listeners);
    });
    expect(killed).toBeGreaterThanOrEqual(3);

    await waitReconnected(errors, ['listening']);
    await waitHealed(cluster);
    for (const c of clients) checkFlood(cluster, c, 'flood-listen', PER);
    await expectExactlyOnce(cluster);

    for (const errs of errors) {
      expect(count(errs, 'CONNECTION_LOST', 'listening')).toBe(1);
      expect(count(errs, 'RECONNECTED', 'listening')).toBe(1);
      // The publishing connections were not touched, and nothing else went wrong.
      expect(describeErrors(errs.filter((e) => !['CONNECTION_LOST', 'RECONNECTED'].includes(e.code) || role(e) !== 'listening')))
        .toBe('(none)');
    }
  });

  test('the publishing backends, killed mid-flood: reported once, nothing lost unreported, exactly once after', async () => {
    const { cluster, errors, clients } = ctx;
    const publishers = await publishingPids();
    const PER = 600;
    let killed = 0;
    await flood(cluster, 'flood-pub', PER, 200, async () => {
      killed = await terminate(publishers);
    });
    expect(killed).toBe(3);

    await waitReconnected(errors, ['publishing']);
    await waitHealed(cluster);
    await barrierAll(cluster);
    for (const c of clients) {
      const missing = checkFlood(cluster, c, 'flood-pub', PER);
      // Listeners stayed up: a message can only be missing if its publish was reported as failed.
      for (const s of cluster.servers) {
        expect({ from: s.index, to: c.label, missing: missing[s.index] <= reportedFailed(errors[s.index]) })
          .toEqual({ from: s.index, to: c.label, missing: true });
      }
    }
    await expectExactlyOnce(cluster);

    for (const errs of errors) {
      expect(count(errs, 'CONNECTION_LOST', 'publishing')).toBe(1);
      expect(count(errs, 'RECONNECTED', 'publishing')).toBe(1);
      // The statements in flight, if any: up to 4 with pipeline mode (PgConnection::kPipelineDepth).
      expect(count(errs, 'PUBLISH_FAILED')).toBeLessThanOrEqual(4);
      expect(describeErrors(errs.filter((e) => !['CONNECTION_LOST', 'RECONNECTED', 'PUBLISH_FAILED'].includes(e.code)
        || (e.code !== 'PUBLISH_FAILED' && role(e) !== 'publishing')))).toBe('(none)');
    }
  });

  test('every backend of one server killed repeatedly: it rejoins every time', async () => {
    const { cluster, errors } = ctx;
    for (let round = 1; round <= 3; round++) {
      const pub = (await publishingPids())[1];
      const all = await listeningPids();
      // Server 1's listener is not known by pid: kill every listener, and server 1's publisher.
      await terminate([pub, ...all]);
      await waitFor(() => count(errors[1], 'RECONNECTED', 'publishing') >= round &&
        errors.every((errs) => count(errs, 'RECONNECTED', 'listening') >= round), 30000,
      () => `round ${round}: every server to reconnect; server 1 reported:\n  ${describeErrors(errors[1])}`);
      await waitHealed(cluster);
      await expectExactlyOnce(cluster, 10);
    }
    expect(count(errors[1], 'CONNECTION_LOST', 'publishing')).toBe(3);
    expect(count(errors[1], 'CONNECTION_LOST', 'listening')).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('a separate PostgreSQL cluster that is restarted, stopped and exhausted', () => {
  let pg;
  beforeAll(() => {
    pg = startPostgres();
  });
  afterAll(() => {
    if (pg) pg.stop();
  });

  // Runs `fn`, then makes sure the separate cluster runs again with its normal settings.
  async function withDatabaseRestored(fn) {
    try {
      await fn();
    } finally {
      await pgStop(pg).catch(() => {});
      await pgStart(pg);
    }
  }

  test('PostgreSQL restarted mid-flood (down ~1.5 s): one CONNECTION_LOST per connection, heals, exactly once', async () => {
    await withDatabaseRestored(async () => {
      const { cluster, errors, clients } = await startServers(pg.url, 3);
      try {
        const PER = 600;
        await flood(cluster, 'flood-restart', PER, 150, async () => {
          await pgStop(pg);
          await sleep(1500); // several reconnect attempts fail meanwhile
          await pgStart(pg);
        });
        await waitReconnected(errors, ['publishing', 'listening']);
        await waitHealed(cluster);
        for (const c of clients) checkFlood(cluster, c, 'flood-restart', PER);
        await expectExactlyOnce(cluster);
        for (const [i, errs] of errors.entries()) {
          for (const r of ['publishing', 'listening']) {
            expect({ server: i, role: r, lost: count(errs, 'CONNECTION_LOST', r), back: count(errs, 'RECONNECTED', r) })
              .toEqual({ server: i, role: r, lost: 1, back: 1 });
          }
          const other = errs.filter((e) => !['CONNECTION_LOST', 'RECONNECTED', 'PUBLISH_FAILED'].includes(e.code));
          expect(describeErrors(other)).toBe('(none)');
        }
      } finally {
        await cluster.close();
      }
    });
  });

  test('servers started while the database is down serve local clients, then join the cluster when it appears', async () => {
    await withDatabaseRestored(async () => {
      await pgStop(pg);
      const { cluster, errors, clients } = await startServers(pg.url, 2, {}, { ready: false });
      try {
        // Both connections of both servers fail, reported once each however many attempts fail.
        for (const errs of errors) {
          await waitFor(() => count(errs, 'CONNECTION_LOST', 'publishing') && count(errs, 'CONNECTION_LOST', 'listening'),
            10000, () => `CONNECTION_LOST for both connections; got:\n  ${describeErrors(errs)}`);
        }
        // Local clients are served meanwhile.
        cluster.servers[0].io.emit('local', 'a');
        cluster.servers[1].io.emit('local', 'b');
        expect(await waitForEvents(clients[0], 'local')).toEqual([['a']]);
        expect(await waitForEvents(clients[1], 'local')).toEqual([['b']]);
        await sleep(1500); // let more attempts fail
        for (const errs of errors) {
          expect(count(errs, 'CONNECTION_LOST')).toBe(2);
          expect(count(errs, 'RECONNECTED')).toBe(0);
          expect(describeErrors(errs.filter((e) => e.code !== 'CONNECTION_LOST' && e.code !== 'PUBLISH_DROPPED'))).toBe('(none)');
        }

        await pgStart(pg);
        await waitReconnected(errors, ['publishing', 'listening']);
        await cluster.waitReady();
        await waitHealed(cluster);
        await expectExactlyOnce(cluster);
        for (const errs of errors) expect(count(errs, 'CONNECTION_LOST')).toBe(2);
      } finally {
        await cluster.close();
      }
    });
  });

  test('servers started before their database exists join once it is created', async () => {
    const dbname = `late_db_${process.pid}`;
    const url = pg.url.replace(/\/[^/]*$/, `/${dbname}`);
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    try {
      const { cluster, errors } = await startServers(url, 2, { createTable: true }, { ready: false });
      try {
        for (const errs of errors) {
          await waitFor(() => count(errs, 'CONNECTION_LOST') === 2, 10000,
            () => `CONNECTION_LOST for both connections; got:\n  ${describeErrors(errs)}`);
          expect(errs[0].message).toMatch(/does not exist/);
        }
        await admin.query(`CREATE DATABASE ${dbname}`);
        await waitReconnected(errors, ['publishing', 'listening']);
        await cluster.waitReady();
        await waitHealed(cluster);
        await expectExactlyOnce(cluster);
        // createTable made the attachment table on connect: binary messages work too.
        cluster.servers[0].io.emit('bin', Buffer.from([1, 2, 3]));
        const onB = cluster.clients[1];
        await waitFor(() => eventsOf(onB, 'bin').length === 1, 10000, 'a binary broadcast from A on B');
        expect([...eventsOf(onB, 'bin')[0][0]]).toEqual([1, 2, 3]);
        for (const errs of errors) expect(count(errs, 'CONNECTION_LOST')).toBe(2);
      } finally {
        await cluster.close();
      }
    } finally {
      await admin.end();
    }
  });

  test('max_connections exhausted: a server started then serves locally, reports once, and joins when freed', async () => {
    await withDatabaseRestored(async () => {
      await pgStop(pg);
      await pgStart(pg, { maxConnections: 20 });
      const cluster = new Cluster({ channelPrefix: PREFIX, size: 0, adapterOpts: FAST });
      const errors = [];
      const hogs = [];
      try {
        await addServer(cluster, errors, pg.url); // A: connected before the exhaustion
        const onA = await cluster.connect(0);
        const probe = new Client({ connectionString: pg.url });
        await probe.connect();
        try {
          await waitFor(async () => (await probe.query(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1', [APP_NAME])).rows[0].n === 2,
          10000, 'both connections of server A');
        } finally {
          await probe.end();
        }

        let refusal;
        for (let i = 0; i < 100 && !refusal; i++) {
          const c = new Client({ connectionString: pg.url });
          c.on('error', () => {});
          try {
            await c.connect();
            hogs.push(c);
          } catch (err) {
            refusal = err;
          }
        }
        expect(refusal && refusal.message).toMatch(/too many clients/);

        await addServer(cluster, errors, pg.url); // B: started while PostgreSQL refuses connections
        const onB = await cluster.connect(1);
        await waitFor(() => count(errors[1], 'CONNECTION_LOST') === 2, 10000,
          () => `CONNECTION_LOST for both of B's connections; got:\n  ${describeErrors(errors[1])}`);
        expect(errors[1].filter((e) => e.code === 'CONNECTION_LOST').map((e) => e.message))
          .toEqual([expect.stringMatching(/too many clients/), expect.stringMatching(/too many clients/)]);
        cluster.servers[1].io.emit('local', 'b');
        expect(await waitForEvents(onB, 'local')).toEqual([['b']]);
        await sleep(1500); // more attempts fail meanwhile
        expect(count(errors[1], 'CONNECTION_LOST')).toBe(2);

        await Promise.all(hogs.splice(0).map((c) => c.end()));
        await waitReconnected([errors[1]], ['publishing', 'listening']);
        await cluster.waitReady();
        await waitHealed(cluster);
        await expectExactlyOnce(cluster);
        expect(describeErrors(errors[0])).toBe('(none)'); // A never noticed
        expect(count(errors[1], 'CONNECTION_LOST')).toBe(2);
        expect(onA.connected).toBe(true);
      } finally {
        await Promise.all(hogs.map((c) => c.end().catch(() => {})));
        await cluster.close();
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------------------

// A port with nothing listening on it.
async function deadPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

// A TCP server that accepts connections and never answers: libpq stays in the connecting state.
async function silentServer() {
  const sockets = new Set();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.resume(); // read (and drop) what libpq sends, so that its FIN is seen
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  let accepted = 0;
  srv.on('connection', () => accepted++);
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: srv.address().port,
    accepted: () => accepted,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => srv.close(resolve));
    },
  };
}

describe('while PostgreSQL is unreachable', () => {
  test('a full publish queue drops with PUBLISH_DROPPED, and local clients still get every broadcast', async () => {
    const url = `postgres://postgres@127.0.0.1:${await deadPort()}/postgres`;
    const { cluster, errors, clients } = await startServers(url, 1, { maxPublishQueue: 5 }, { ready: false });
    try {
      // Known to be down: the whole loop counts against the limit (while the database may be up, one loop is sent whole).
      await waitFor(() => errors[0].some((e) => e.code === 'CONNECTION_LOST' && /publishing/.test(e.message)), 10000, 'the publishing connection to fail');
      const N = 50;
      for (let i = 0; i < N; i++) cluster.servers[0].io.emit('m', `q/${i}`);
      const got = await waitForEvents(clients[0], 'm', N);
      expect(got.map(([id]) => id)).toEqual(Array.from({ length: N }, (_, i) => `q/${i}`));
      const errs = errors[0];
      await waitFor(() => count(errs, 'PUBLISH_DROPPED') >= N - 5, 5000,
        () => `at least ${N - 5} PUBLISH_DROPPED reports; got:\n  ${describeErrors(errs)}`);
      expect(errs.find((e) => e.code === 'PUBLISH_DROPPED').message).toMatch(/queue is full/);
      await waitFor(() => count(errs, 'CONNECTION_LOST') === 2, 10000, 'CONNECTION_LOST for both connections');
    } finally {
      // close() while the database is down: must resolve, and leave no handle (jest --detectOpenHandles).
      await withTimeout(cluster.close(), 10000, 'close() while the database is down');
    }
  });

  test('close() while connecting (the server never answers) resolves and releases the sockets', async () => {
    const silent = await silentServer();
    try {
      const url = `postgres://postgres@127.0.0.1:${silent.port}/postgres`;
      const { cluster, errors } = await startServers(url, 2, { connectTimeout: 60000 }, { ready: false });
      await waitFor(() => silent.open() === 4, 10000, () => `4 connections to the silent server (got ${silent.open()})`);
      await withTimeout(cluster.close(), 10000, 'close() while connecting');
      await waitFor(() => silent.open() === 0, 5000, () => `the adapter to close its sockets (${silent.open()} open)`);
      expect(errors.flat().filter((e) => e.code === 'CONNECTION_LOST')).toEqual([]);
    } finally {
      await silent.close();
    }
  });

  test('close() in the middle of a reconnect backoff resolves at once', async () => {
    const url = `postgres://postgres@127.0.0.1:${await deadPort()}/postgres`;
    const { cluster, errors } = await startServers(url, 1,
      { reconnectInitialDelay: 60000, reconnectMaxDelay: 60000 }, { ready: false });
    await waitFor(() => count(errors[0], 'CONNECTION_LOST') === 2, 10000, 'CONNECTION_LOST for both connections');
    await withTimeout(cluster.close(), 10000, 'close() during the backoff');
  });

  test('a closed adapter is garbage-collected, with what its options hold (no leak per createAdapter + close)', async () => {
    // The user's errorHandler (and whatever it closes over) must be collectable once io.close() is done.
    require('v8').setFlagsFromString('--expose-gc');
    const gc = require('vm').runInNewContext('gc');
    let collected = 0;
    const registry = new FinalizationRegistry(() => { collected++; });
    const url = `postgres://postgres@127.0.0.1:${await deadPort()}/postgres`;
    const N = 10;
    await (async () => {
      for (let i = 0; i < N; i++) {
        const errorHandler = () => {};
        registry.register(errorHandler, i);
        const cluster = new Cluster({ channelPrefix: PREFIX, size: 0, adapterOpts: FAST });
        await addServerOn(cluster, url, { errorHandler });
        await cluster.close();
      }
    })();
    await waitFor(() => {
      gc();
      return collected >= N - 1; // the last one may still be on the stack
    }, 10000, () => `the errorHandlers of ${N} closed adapters to be garbage-collected (${collected} were)`);
  });

  // The same in a child process: the user-visible property is that the process exits by itself.
  const CHILD = `
    const http = require('http');
    const { Server } = require('socket.io');
    const { createAdapter } = require(${JSON.stringify(path.join(__dirname, '..', 'lib'))});
    const [url, when, delay] = process.argv.slice(1);
    const codes = [];
    let closing = false;
    const httpServer = http.createServer();
    const close = () => {
      if (closing) return;
      closing = true;
      io.close(() => console.log('closed ' + JSON.stringify(codes)));
    };
    const io = new Server(httpServer, { adapter: createAdapter(url, {
      reconnectInitialDelay: Number(delay), reconnectMaxDelay: Number(delay), connectTimeout: 60000, heartbeatInterval: 100,
      errorHandler: (err) => { codes.push(err.code); if (when === 'down' && err.code === 'CONNECTION_LOST') close(); },
    }) });
    io.of('/other');
    httpServer.listen(0, '127.0.0.1', () => { if (when === 'connecting') setTimeout(close, 500); });
  `;

  function runChild(args, timeoutMs = 20000) {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['-e', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, out, err });
      });
    });
  }

  test('a process whose adapter is closed while the database is down (in backoff) exits by itself', async () => {
    const url = `postgres://postgres@127.0.0.1:${await deadPort()}/postgres`;
    const r = await runChild([url, 'down', '30000']);
    expect({ code: r.code, signal: r.signal, stderr: r.err }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(r.out).toMatch(/^closed \[.*"CONNECTION_LOST"/);
  });

  test('a process whose adapter is closed while connecting exits by itself', async () => {
    const silent = await silentServer();
    try {
      const r = await runChild([`postgres://postgres@127.0.0.1:${silent.port}/postgres`, 'connecting', '100']);
      expect({ code: r.code, signal: r.signal, stderr: r.err }).toEqual({ code: 0, signal: null, stderr: '' });
      // Its own messages (the first heartbeat, ADAPTER_CLOSE) never left: reported once, not dropped silently.
      expect(r.out).toMatch(/^closed \["PUBLISH_FAILED"\]/);
      expect(silent.accepted()).toBeGreaterThanOrEqual(2);
    } finally {
      await silent.close();
    }
  });
});
