'use strict';
// Lifecycle: close() settles every promise (a second close() while the first flushes, work still queued or in
// flight, pending cluster requests), a refused LISTEN does not hold back the other channels, and a password
// function that never settles is bounded by connectTimeout.

const http = require('http');
const { Client } = require('pg');
const { Server } = require('socket.io');
const { createAdapter, Emitter } = require('../lib');
const { Cluster, listenRaw, waitFor, withTimeout } = require('./helpers/cluster');
const { describeErrors, count, addServerOn } = require('./helpers/faults');

jest.setTimeout(30000);

const url = () => process.env.DATABASE_URL;
let seq = 0;
const prefix = () => `lifecycle_${process.pid}_${++seq}`;

// Resolves to 'resolved' / 'rejected: <message>' once `promise` settles; fails the test if it never does.
function settled(promise, what, timeoutMs = 10000) {
  return withTimeout(
    promise.then(() => 'resolved', (err) => `rejected: ${err && err.message}`),
    timeoutMs,
    `${what} to settle`,
  );
}

// A plain pg client LISTENing on `channel`: its payloads, and end().
async function watchChannel(channel) {
  const payloads = [];
  const client = await listenRaw(channel, payloads);
  return { payloads, end: () => client.end() };
}

describe('close()', () => {
  test('a second close() while the first is flushing: both promises settle (Emitter and its of() sibling)', async () => {
    const channelPrefix = prefix();
    const watcher = await watchChannel(`${channelPrefix}#/`);
    const errors = [];
    // A long closeTimeout: the flush is never cut short on a loaded machine.
    const emitter = new Emitter(url(), '/', { channelPrefix, closeTimeout: 60000, errorHandler: (e) => errors.push(e) });
    try {
      // Connected: a first message went through.
      await waitFor(() => {
        emitter.emit('ping');
        return watcher.payloads.length > 0;
      }, 10000, 'the emitter to publish');
      for (let i = 0; i < 3000; i++) emitter.emit('m', i, 'x'.repeat(100));
      const first = emitter.close();
      const second = emitter.of('/other').close();
      expect(await settled(first, 'the first close()')).toBe('resolved');
      expect(await settled(second, 'the second close()')).toBe('resolved');
      expect(await settled(emitter.close(), 'a close() after the end')).toBe('resolved');
      expect(describeErrors(errors)).toBe('(none)');
    } finally {
      await watcher.end();
    }
  });

  test('work queued or in flight when close() abandons it settles: session restore, logged broadcast', async () => {
    const errors = [];
    const httpServer = http.createServer();
    const io = new Server(httpServer, {
      connectionStateRecovery: { maxDisconnectionDuration: 60000 },
      // closeTimeout 0: nothing is waited for, what is pending is abandoned at once.
      adapter: createAdapter(url(), { channelPrefix: prefix(), createTable: true, closeTimeout: 0, errorHandler: (e) => errors.push(e) }),
    });
    const adapter = io.of('/').adapter;
    // Connected, and the session table exists: a restore runs without an error.
    await waitFor(async () => {
      const before = errors.length;
      await adapter.restoreSession('b'.repeat(20), '1');
      return errors.length === before;
    }, 10000, () => `a session restore to run; got:\n  ${describeErrors(errors)}`);
    errors.length = 0;
    // What socket.io asks when a client reconnects, and a logged (recoverable) broadcast: both wait for
    // PostgreSQL, and close() comes before the answers.
    const restore = adapter.restoreSession('a'.repeat(20), '1');
    const logged = adapter.client.publishLogged(adapter.channel,
      { type: 3, uid: adapter.uid, nsp: '/', data: { packet: { type: 2, data: ['e'] }, opts: { rooms: [], except: [], flags: {} } } },
      { nsp: '/', rooms: [], except: [], packetData: ['e'] });
    const closing = new Promise((resolve) => io.close(resolve));
    expect(await settled(restore, 'restoreSession()')).toBe('resolved');
    expect(await settled(logged, 'the logged broadcast')).toMatch(/^(resolved|rejected: .*closed)/);
    await withTimeout(closing, 10000, 'io.close()');
  });

  test('a logged broadcast queued while PostgreSQL is unreachable settles by close() at the latest', async () => {
    const errors = [];
    const httpServer = http.createServer();
    const io = new Server(httpServer, {
      connectionStateRecovery: { maxDisconnectionDuration: 60000 },
      adapter: createAdapter('postgres://postgres@127.0.0.1:1/postgres',
        { channelPrefix: prefix(), reconnectInitialDelay: 60000, reconnectMaxDelay: 60000, errorHandler: (e) => errors.push(e) }),
    });
    const adapter = io.of('/').adapter;
    const logged = adapter.client.publishLogged(adapter.channel,
      { type: 3, uid: adapter.uid, nsp: '/', data: { packet: { type: 2, data: ['e'] }, opts: { rooms: [], except: [], flags: {} } } },
      { nsp: '/', rooms: [], except: [], packetData: ['e'] });
    await withTimeout(new Promise((resolve) => io.close(resolve)), 10000, 'io.close()');
    // Handed back unlogged once the connection is known down, or rejected by close(): never left pending.
    expect(await settled(logged, 'the queued logged broadcast')).toMatch(/^(resolved|rejected: .*closed)/);
  });

  test('close() while PostgreSQL is unreachable waits closeTimeout for the queue, then reports what was not sent', async () => {
    const errs = [];
    // Nothing listens on port 1: every attempt fails at once, and the Emitter queues.
    const emitter = new Emitter('postgres://nobody@127.0.0.1:1/none', '/', {
      closeTimeout: 300,
      reconnectInitialDelay: 50,
      errorHandler: (e) => errs.push(e),
    });
    for (let i = 0; i < 100; i++) emitter.emit('queued', i);
    await waitFor(() => count(errs, 'CONNECTION_LOST') >= 1, 10000, 'the failed connection to be reported');
    expect(emitter.stats().queue.depth).toBe(100);
    expect(await settled(emitter.close(), 'close()')).toBe('resolved');
    const lost = errs.filter((e) => e.code === 'PUBLISH_FAILED');
    expect(lost.map((e) => e.message)).toEqual([expect.stringContaining('closing with 100 messages not yet published')]);
    expect(emitter.stats().queue.depth).toBe(0);
  });

  test('a fetchSockets() and a serverSideEmit() waiting for answers settle at close, not after requestsTimeout', async () => {
    // The other server is alive (it sent a heartbeat) but never answers: a real second server can answer the
    // fetchSockets() before close() runs, now that a request leaves at once.
    const cluster = new Cluster({ channelPrefix: 'lifecycle', size: 1, adapterOpts: { requestsTimeout: 60000 } });
    await cluster.start();
    const raw = new Client({ connectionString: url() });
    await raw.connect();
    try {
      const a = cluster.servers[0].io;
      const channel = `${cluster.adapterOpts.channelPrefix}#/`;
      await raw.query('SELECT pg_catalog.pg_notify($1, $2)', [channel, JSON.stringify({ uid: 'silent-peer', type: 2, nsp: '/' })]);
      await waitFor(async () => (await a.of('/').adapter.serverCount()) === 2, 10000, 'the silent peer to be counted');
      let ackErr;
      const ack = new Promise((resolve) => a.serverSideEmit('ping', (err) => { ackErr = err; resolve(); }));
      const fetching = settled(a.fetchSockets(), 'fetchSockets()');
      await new Promise((resolve) => setImmediate(resolve)); // the requests are registered
      await a.of('/').adapter.close();
      expect(await fetching).toMatch(/^rejected: .*closed/);
      await withTimeout(ack, 10000, 'the serverSideEmit acknowledgement');
      expect(String(ackErr && ackErr.message)).toMatch(/closed/);
    } finally {
      await raw.end();
      await cluster.close();
    }
  });
});

describe('connection set-up', () => {
  test('a password function that never settles: the attempt times out (connectTimeout), is reported, and is retried', async () => {
    const { port } = new URL(url());
    let calls = 0;
    // The first answer (for whichever connection asks first) never comes.
    const password = () => (++calls === 1 ? new Promise(() => {}) : '');
    const errors = [];
    const httpServer = http.createServer();
    const io = new Server(httpServer, {
      adapter: createAdapter({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', password },
        // readyTimeout above connectTimeout: with both at 2 s, which one reports first is a race (READY_TIMEOUT is
        // right too when the namespace is not ready by then); this test is about the connect attempt.
        { channelPrefix: prefix(), connectTimeout: 2000, readyTimeout: 5000, reconnectInitialDelay: 50, reconnectMaxDelay: 100, errorHandler: (e) => errors.push(e) }),
    });
    try {
      await waitFor(() => count(errors, 'RECONNECTED') === 1, 10000,
        () => `the connection to time out, then connect; got:\n  ${describeErrors(errors)}`);
      expect(errors.map((e) => e.code)).toEqual(['CONNECTION_LOST', 'RECONNECTED']);
      expect(errors[0].message).toMatch(/timeout/);
    } finally {
      await withTimeout(new Promise((resolve) => io.close(resolve)), 10000, 'io.close()');
    }
  });

  test('a LISTEN PostgreSQL refuses is reported (LISTEN_FAILED) and does not hold back the other namespaces', async () => {
    // A LATIN1 database cannot name a channel "/日本": PostgreSQL refuses the LISTEN (and the NOTIFY).
    const dbname = `lifecycle_latin1_${process.pid}`;
    const admin = new Client({ connectionString: url() });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbname} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`);
    const latin1 = url().replace(/\/[^/]*$/, `/${dbname}`);
    const cluster = new Cluster({ channelPrefix: 'lifecycle', size: 0, namespaces: ['/日本'] });
    const errors = [[], []];
    try {
      for (const errs of errors) await addServerOn(cluster, latin1, { errorHandler: (e) => errs.push(e) });
      const onB = await cluster.connect(1);
      await waitFor(() => count(errors[0], 'LISTEN_FAILED') >= 1, 10000,
        () => `LISTEN_FAILED on server 0; got:\n  ${describeErrors(errors[0])}`);
      expect(errors[0].find((e) => e.code === 'LISTEN_FAILED').message).toMatch(/日本/);
      // Broadcasts on "/" from server 0 reach server 1's client.
      await waitFor(() => {
        cluster.servers[0].io.emit('hello', 0);
        return onB.received.some((e) => e[0] === 'hello');
      }, 10000, 'a broadcast on "/" from server 0 to reach a client of server 1');
    } finally {
      await cluster.close();
      await admin.query(`DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`);
      await admin.end();
    }
  });
});
