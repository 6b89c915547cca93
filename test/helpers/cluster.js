'use strict';
// Runs N Socket.IO servers in the test process, each with its own http server (127.0.0.1:0), its own pg.Pool
// and its own adapter instance, plus socket.io-client clients connected to them.
//
// The adapter is chosen by process.env.ADAPTER: `pure` → @socket.io/postgres-adapter, anything else (default
// `native`) → this package (lib/). Both are called as createAdapter(pool, opts). A mixed cluster passes
// `adapters: ['pure', 'native', ...]` (the kind of server i; `server.kind` tells it).
//
// Clients pass `auth: { rooms, data }`: on connection the server joins `rooms` and sets
// `socket.data = { server: <index>, ...data }`. Every client records what it receives in `client.received`
// (an array of [event, ...args]).

const http = require('http');
const { Client, Pool } = require('pg');
const { Server } = require('socket.io');
const { io: ioClient } = require('socket.io-client');

const ADAPTER = process.env.ADAPTER === 'pure' ? 'pure' : 'native';

// kind: 'pure' or 'native' (default: ADAPTER).
function createAdapter(pool, opts, kind = ADAPTER) {
  const impl = kind === 'pure' ? require('@socket.io/postgres-adapter') : require('../../lib');
  return impl.createAdapter(pool, opts);
}

// Short heartbeats so that discovery takes a fraction of a second. The timeout is generous: no test relies
// on a node being declared dead by missed heartbeats, and a short one could drop a node on a busy 2-core box.
const DEFAULT_ADAPTER_OPTS = { heartbeatInterval: 200, heartbeatTimeout: 5000 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `predicate` (may be async) until it returns a truthy value, then returns that value.
// Fails with `message` after `timeoutMs`. This is a bounded wait, not a timing assertion.
async function waitFor(predicate, timeoutMs = 5000, message = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = typeof message === 'function' ? message() : message;
      throw new Error(`waitFor: timed out after ${timeoutMs} ms waiting for ${why}${lastError ? ` (last error: ${lastError.message})` : ''}`);
    }
    await sleep(10);
  }
}

// Rejects with a clear message if `promise` does not settle in time. The timer is always cleared.
function withTimeout(promise, timeoutMs, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${message}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Calls `emitter.emit(...args, cb)` (a BroadcastOperator, a Server or serverSideEmit target) and resolves to
// { err, responses } when the acknowledgement callback is called.
function ackResult(emit, timeoutMs = 10000) {
  return withTimeout(
    new Promise((resolve) => emit((err, responses) => resolve({ err, responses }))),
    timeoutMs,
    'the acknowledgement callback was never called',
  );
}

// Everything `client` received for event `ev`, as arrays of arguments.
function eventsOf(client, ev) {
  return client.received.filter((entry) => entry[0] === ev).map((entry) => entry.slice(1));
}

// Waits until `client` has received `count` `ev` events and returns their argument arrays.
async function waitForEvents(client, ev, count = 1, timeoutMs = 5000) {
  await waitFor(
    () => eventsOf(client, ev).length >= count,
    timeoutMs,
    () => `client ${client.label} to receive ${count} "${ev}" event(s) (got ${eventsOf(client, ev).length})`,
  );
  return eventsOf(client, ev);
}

// Polls until every server in `servers` counts `expected` servers (default: servers.length) in every namespace.
async function waitForClusterReady(servers, { namespaces = ['/'], expected = servers.length, timeoutMs = 10000 } = {}) {
  const counts = async () =>
    Promise.all(servers.flatMap((s) => namespaces.map((nsp) => s.io.of(nsp).adapter.serverCount())));
  let last = [];
  await waitFor(
    async () => {
      last = await counts();
      return last.every((n) => n === expected);
    },
    timeoutMs,
    () => `every server to count ${expected} servers (serverCount per server/namespace: ${last.join(',')})`,
  );
}

let clusterCounter = 0;

class Cluster {
  // channelPrefix: unique per test file, so that files never see each other's traffic.
  // namespaces: created on every server at start (the default namespace is always there).
  // adapters: optional per-server kinds, e.g. ['pure', 'native'] for a mixed cluster.
  // serverOpts: extra Socket.IO server options (e.g. connectionStateRecovery).
  // poolConfig: extra pg.Pool options of every server, or (index) => options (e.g. another role, a password function).
  constructor({ channelPrefix, size = 3, namespaces = [], adapterOpts = {}, adapters = null, serverOpts = {}, poolConfig = {} } = {}) {
    this.serverOpts = serverOpts;
    this.poolConfig = poolConfig;
    if (!channelPrefix) throw new Error('Cluster: channelPrefix is required (use one per test file)');
    this.adapters = adapters;
    this.size = size;
    this.namespaces = ['/', ...namespaces.filter((n) => n !== '/')];
    this.adapterOpts = { ...DEFAULT_ADAPTER_OPTS, channelPrefix: `${channelPrefix}_${process.pid}_${++clusterCounter}`, ...adapterOpts };
    this.servers = [];
    this.clients = [];
  }

  async start() {
    for (let i = 0; i < this.size; i++) await this.addServer();
    await this.waitReady();
    return this;
  }

  waitReady() {
    return waitForClusterReady(this.servers, { namespaces: this.namespaces });
  }

  // Starts one more server. Does not wait for the cluster to discover it. poolOpts: extra pg.Pool options.
  async addServer(adapterOpts = {}, poolOpts = {}) {
    const index = this.servers.length;
    const poolConfig = typeof this.poolConfig === 'function' ? this.poolConfig(index) : this.poolConfig;
    const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10, ...poolConfig, ...poolOpts });
    pool.on('error', () => {}); // an idle client dropped by the server must not crash the test process
    const httpServer = http.createServer();
    const kind = (this.adapters && this.adapters[index]) || ADAPTER;
    const io = new Server(httpServer, {
      ...this.serverOpts,
      adapter: createAdapter(pool, { ...this.adapterOpts, ...adapterOpts }, kind),
    });
    const server = { index, io, httpServer, pool, port: 0, kind };
    for (const nsp of this.namespaces) {
      io.of(nsp).on('connection', (socket) => {
        const { rooms = [], data = {} } = socket.handshake.auth || {};
        socket.data = { server: index, ...data };
        if (rooms.length) socket.join(rooms);
      });
    }
    await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    server.port = httpServer.address().port;
    this.servers.push(server);
    return server;
  }

  // Connects a client to server `serverIndex` and resolves once it is connected.
  async connect(serverIndex, { nsp = '/', rooms = [], data, label, transports = ['websocket'] } = {}) {
    const server = this.servers[serverIndex];
    const client = ioClient(`http://127.0.0.1:${server.port}${nsp}`, {
      transports,
      forceNew: true,
      reconnection: false,
      auth: { rooms, ...(data ? { data } : {}) },
    });
    client.label = label || `#${this.clients.length}@${serverIndex}${nsp === '/' ? '' : nsp}`;
    client.serverIndex = serverIndex;
    client.nsp = nsp;
    client.received = [];
    client.onAny((ev, ...args) => client.received.push([ev, ...args]));
    this.clients.push(client);
    await withTimeout(
      new Promise((resolve, reject) => {
        client.once('connect', resolve);
        client.once('connect_error', reject);
      }),
      5000,
      `client ${client.label} could not connect`,
    );
    return client;
  }

  // Connects one client per server: returns [clientOnA, clientOnB, clientOnC, ...].
  connectOnEach(opts = {}) {
    return Promise.all(this.servers.map((_, i) => this.connect(i, opts)));
  }

  // Emits a unique marker from server 0 to every client of `nsp` and waits until all of them got it.
  // Anything broadcast before the barrier and not yet received by then is assumed not to come,
  // which turns "this client must NOT receive X" into a bounded check.
  async barrier(nsp = '/') {
    const id = `${Date.now()}-${Math.random()}`;
    const targets = this.clients.filter((c) => c.connected && c.nsp === nsp);
    this.servers[0].io.of(nsp).emit('__barrier__', id);
    await waitFor(
      () => targets.every((c) => c.received.some((e) => e[0] === '__barrier__' && e[1] === id)),
      5000,
      () => `the barrier to reach ${targets.filter((c) => !c.received.some((e) => e[1] === id)).map((c) => c.label).join(', ')}`,
    );
  }

  // Disconnects every client and waits until no server holds a socket any more.
  async disconnectClients() {
    for (const client of this.clients) client.disconnect();
    this.clients = [];
    await waitFor(
      () => this.servers.every((s) => this.namespaces.every((nsp) => s.io.of(nsp).sockets.size === 0)),
      5000,
      'every server to see its clients disconnected',
    );
  }

  // Closes one server (its clients are disconnected by the server) and removes it from the cluster.
  // Meant for a server added with addServer(): indexes of the other servers do not change if it is the last one.
  async removeServer(server) {
    for (const client of this.clients) if (client.serverIndex === server.index) client.disconnect();
    this.clients = this.clients.filter((c) => c.serverIndex !== server.index);
    await new Promise((resolve) => server.io.close(() => resolve()));
    await server.pool.end();
    this.servers = this.servers.filter((s) => s !== server);
  }

  async close() {
    for (const client of this.clients) client.disconnect();
    this.clients = [];
    for (const server of this.servers) {
      await new Promise((resolve) => server.io.close(() => resolve()));
    }
    for (const server of this.servers) await server.pool.end();
    this.servers = [];
  }
}

// Standard per-file setup: a started cluster in beforeAll, fresh clients per test, closed in afterAll.
// Returns a getter object; `ctx.cluster` is available inside tests.
function useCluster(options) {
  const ctx = {};
  beforeAll(async () => {
    ctx.cluster = new Cluster(options);
    await ctx.cluster.start();
  });
  afterEach(async () => {
    if (ctx.cluster) await ctx.cluster.disconnectClients();
  });
  afterAll(async () => {
    if (ctx.cluster) await ctx.cluster.close();
  });
  return ctx;
}

// A plain pg client (another session) LISTENing on `channel`: pushes map(payload) of each notification on it to
// `into`. Resolves to the connected client (end() it).
async function listenRaw(channel, into, map = (payload) => payload) {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  client.on('notification', (n) => {
    if (n.channel === channel) into.push(map(n.payload));
  });
  await client.query(`LISTEN "${channel}"`);
  return client;
}

// A test file's own attachments table, so that counting its rows tells which path a message took: created
// before the file's tests. `db` is a pg client open meanwhile; rows() counts the table's rows.
function useAttachmentTable(table) {
  const t = { db: null, rows: async () => Number((await t.db.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n) };
  beforeAll(async () => {
    t.db = new Client({ connectionString: process.env.DATABASE_URL });
    await t.db.connect();
    await t.db.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`);
  });
  afterAll(async () => {
    await t.db.end();
  });
  return t;
}

// Quiet idle: with no broadcast to introduce them, the two servers of `cluster` still count each other
// (serverCount) and see each other's sockets (fetchSockets).
async function expectPairCountsEachOther(cluster) {
  await waitFor(async () => {
    const counts = await Promise.all(cluster.servers.map((s) => s.io.of('/').adapter.serverCount()));
    return counts.every((n) => n === 2);
  }, 10000, 'both servers to count each other');
  await cluster.connectOnEach();
  const seen = await Promise.all(cluster.servers.map((s) => s.io.fetchSockets().then((sockets) => sockets.length)));
  expect(seen).toEqual([2, 2]);
}

module.exports = {
  ADAPTER,
  expectPairCountsEachOther,
  listenRaw,
  useAttachmentTable,
  createAdapter,
  Cluster,
  useCluster,
  waitFor,
  waitForClusterReady,
  waitForEvents,
  eventsOf,
  withTimeout,
  ackResult,
};
