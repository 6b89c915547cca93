'use strict';
// Inbound limits against hostile database roles (NOTIFY needs no grant): a re-announced attachment is fetched
// and delivered once, fetches bring a bounded number of bytes, and the inbound queue is bounded and reports
// what it drops. A value V8 cannot hold is reported and skipped, and an absurd outgoing message is refused with
// a code. The process stays up.

const { execFile } = require('child_process');
const { Client } = require('pg');
const { encode } = require('@msgpack/msgpack');
const { Cluster, waitFor, eventsOf, expectPairCountsEachOther } = require('./helpers/cluster');
const { reportedCount } = require('./helpers/reports');

const PREFIX = 'inbound_limits';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
jest.setTimeout(120000);

let raw; // the "other role": announces and forges
beforeAll(async () => {
  raw = new Client({ connectionString: process.env.DATABASE_URL });
  await raw.connect();
});
afterAll(async () => {
  if (raw) await raw.end();
});

async function startCluster(size) {
  const cluster = new Cluster({ channelPrefix: PREFIX, size: 0 });
  const errors = [];
  for (let i = 0; i < size; i++) {
    const errs = [];
    errors.push(errs);
    await cluster.addServer({ errorHandler: (err) => errs.push(err) });
  }
  await cluster.waitReady();
  return { cluster, errors, channel: `${cluster.adapterOpts.channelPrefix}#/` };
}

const codesOf = (errs) => errs.map((e) => e.code);

let seq = 0;
// A good broadcast from server `from` reaches `client` exactly once.
async function goodMessageArrivesOnce(cluster, from, client) {
  const id = `good-${++seq}`;
  cluster.servers[from].io.emit('good', id);
  await waitFor(() => eventsOf(client, 'good').some(([x]) => x === id), 20000, `good message ${id}`);
  await cluster.barrier();
  expect(eventsOf(client, 'good').filter(([x]) => x === id).length).toBe(1);
}

// A broadcast as an emitter (another role) would send it.
const broadcast = (args, rooms = []) => ({
  uid: 'emitter',
  nsp: '/',
  type: 3,
  data: { packet: { type: 2, data: args, nsp: '/' }, opts: { rooms, except: [], flags: {} } },
});

// An attachment broadcasting 'first', whose fetch `locker` holds (it locks the table until its COMMIT), then
// 110000 broadcasts to a room nobody is in (cheap to deliver) waiting behind it: more than the inbound queue holds.
// `flood` and `count`: other broadcasts, and how many (each gets a distinct field n).
async function overflowBehindAttachment(locker, channel, flood = broadcast(['flood'], ['nobody']), count = 110000) {
  const id = await forgeRow(Buffer.from(encode(broadcast(['first']))));
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE socket_io_attachments IN ACCESS EXCLUSIVE MODE');
  await raw.query('BEGIN');
  await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ uid: 'emitter', nsp: '/', type: 3, attachmentId: id })]);
  await raw.query(
    `SELECT pg_notify($1, $2 || g::text || '}') FROM generate_series(1, $3::int) g`,
    [channel, JSON.stringify(flood).slice(0, -1) + ',"n":', count],
  );
  await raw.query('COMMIT');
}

async function forgeRow(bytes) {
  const { rows } = await raw.query('INSERT INTO socket_io_attachments (payload) VALUES ($1) RETURNING id', [bytes]);
  return rows[0].id;
}

describe('a re-announced attachment (defect 9.5)', () => {
  test('200 announcements of one 2 MB attachment: delivered once, the repeats reported, memory bounded', async () => {
    const ctx = await startCluster(2);
    try {
      const { cluster, errors, channel } = ctx;
      const [onA, onB] = await cluster.connectOnEach();
      const id = await forgeRow(Buffer.from(encode(broadcast(['big', 'x'.repeat(2 * 1024 * 1024)]))));
      const rssBefore = process.memoryUsage().rss;
      for (let i = 0; i < 200; i++) {
        // Distinct payloads: PostgreSQL folds identical notifications of one transaction.
        await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ uid: 'emitter', nsp: '/', type: 3, attachmentId: id, n: i })]);
      }
      await goodMessageArrivesOnce(cluster, 0, onB);
      await goodMessageArrivesOnce(cluster, 1, onA);
      for (const client of [onA, onB]) {
        expect(eventsOf(client, 'big').length).toBe(1);
        expect(eventsOf(client, 'big')[0][0].length).toBe(2 * 1024 * 1024);
      }
      for (const errs of errors) {
        // Rate-limited: a summary stands for the reports it suppressed.
        await waitFor(() => reportedCount(errs, 'BAD_NOTIFICATION') >= 199, 10000, () => `199 reports, got: ${codesOf(errs)}`);
        expect(reportedCount(errs, 'BAD_NOTIFICATION', (e) => /announced again/.test(e.message))).toBe(199);
      }
      // 2 servers x 200 copies of 2 MB would be 800 MB of decoded strings alone.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(400 * 1024 * 1024);
    } finally {
      await ctx.cluster.close();
    }
  });

  test('ids announced by another role before their rows exist do not suppress the real announcements', async () => {
    const ctx = await startCluster(2);
    try {
      const { cluster, errors, channel } = ctx;
      const [, onB] = await cluster.connectOnEach();
      // Any role can learn the next ids (they are in every announcement) and announce them first.
      const { rows } = await raw.query("SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('socket_io_attachments', 'id')) AS id");
      const next = Number(rows[0].id) + 1;
      await raw.query(
        `SELECT pg_catalog.pg_notify($1, '{"uid":"evil","type":3,"attachmentId":"' || g || '"}') FROM pg_catalog.generate_series($2::bigint, $2::bigint + 50) g`,
        [channel, next],
      );
      await waitFor(() => reportedCount(errors[1], 'ATTACHMENT_MISSING') === 51, 20000, () => `51 ATTACHMENT_MISSING, got: ${codesOf(errors[1])}`);
      const sent = [];
      for (let k = 0; k < 10; k++) {
        sent.push(`b${k}`);
        cluster.servers[0].io.emit('bin', Buffer.from(`b${k}`));
      }
      await waitFor(() => eventsOf(onB, 'bin').length >= 10, 20000, () => `the 10 binary broadcasts, got ${eventsOf(onB, 'bin').length}`);
      await goodMessageArrivesOnce(cluster, 0, onB);
      expect(eventsOf(onB, 'bin').map(([b]) => Buffer.from(b).toString())).toEqual(sent);
    } finally {
      await ctx.cluster.close();
    }
  });

  test('attachments larger together than one fetch may bring (3 x 30 MB) all arrive once, in order', async () => {
    const ctx = await startCluster(1);
    try {
      const { cluster, errors, channel } = ctx;
      const [onA] = await cluster.connectOnEach();
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await forgeRow(Buffer.from(encode(broadcast(['part', i, Buffer.alloc(30 * 1024 * 1024, i)])))));
      await raw.query('BEGIN');
      for (const [i, id] of ids.entries()) {
        await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ uid: 'emitter', nsp: '/', type: 3, attachmentId: id })]);
        await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify(broadcast(['part', `inline-${i}`]))]);
      }
      await raw.query('COMMIT');
      await waitFor(() => eventsOf(onA, 'part').length >= 6, 30000, 'the 6 parts');
      await goodMessageArrivesOnce(cluster, 0, onA);
      expect(eventsOf(onA, 'part').map(([i]) => i)).toEqual([0, 'inline-0', 1, 'inline-1', 2, 'inline-2']);
      expect(eventsOf(onA, 'part').filter((_, k) => k % 2 === 0).map(([i, b]) => b.length === 30 * 1024 * 1024 && b[0] === i)).toEqual([true, true, true]);
      expect(errors[0].map((e) => `${e.code}: ${e.message}`)).toEqual([]);
      await raw.query('DELETE FROM socket_io_attachments WHERE id = ANY($1::bigint[])', [ids]);
    } finally {
      await ctx.cluster.close();
    }
  });

  test('the inbound queue is bounded: past 100000 waiting messages INBOUND_OVERFLOW is reported and later messages still arrive', async () => {
    const ctx = await startCluster(1);
    const locker = new Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    try {
      const { cluster, errors, channel } = ctx;
      const [onA] = await cluster.connectOnEach();
      await overflowBehindAttachment(locker, channel);
      await waitFor(() => errors[0].some((e) => e.code === 'INBOUND_OVERFLOW'), 30000, () => `INBOUND_OVERFLOW, got: ${[...new Set(codesOf(errors[0]))]}`);
      await locker.query('COMMIT');
      await waitFor(() => eventsOf(onA, 'first').length === 1, 30000, 'the attachment held in front of the queue');
      await goodMessageArrivesOnce(cluster, 0, onA);
      const overflow = errors[0].filter((e) => e.code === 'INBOUND_OVERFLOW');
      expect(overflow[0]).toBeInstanceOf(Error);
      expect(overflow.length).toBeLessThanOrEqual(2); // one report per episode (start, then how many were dropped)
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
      await ctx.cluster.close();
    }
  });
  // A relayed broadcast keeps its packet data apart from the rest of the notification: the queue must count
  // what that takes, not only the data's bytes, or 7.8 KB notifications whose data is [] hold twice the bound.
  test('the inbound queue holds about its bound (256 MB) in memory when each waiting broadcast\'s data is a small part of it', async () => {
    const ctx = await startCluster(1);
    const locker = new Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    try {
      const { cluster, errors, channel } = ctx;
      const [onA] = await cluster.connectOnEach();
      const A = cluster.servers[0].io.of('/').adapter;
      const rssBefore = process.memoryUsage().rss;
      const padded = { ...broadcast([], ['nobody']), pad: 'x'.repeat(7800) };
      await overflowBehindAttachment(locker, channel, padded, 45000);
      await waitFor(() => errors[0].some((e) => e.code === 'INBOUND_OVERFLOW'), 60000, () => `INBOUND_OVERFLOW, got: ${[...new Set(codesOf(errors[0]))]}`);
      let before = -1; // the whole flood has been read once the count stops growing
      await waitFor(async () => {
        const now = A.stats().dropped.inboundOverflow;
        if (now === before) return true;
        before = now;
        await sleep(500);
        return false;
      }, 60000, 'the flood to be read');
      const held = process.memoryUsage().rss - rssBefore;
      await locker.query('COMMIT');
      await waitFor(() => eventsOf(onA, 'first').length === 1, 30000, 'the attachment held in front of the queue');
      await goodMessageArrivesOnce(cluster, 0, onA);
      expect(before).toBeGreaterThan(0);
      expect(held).toBeLessThan(360 * 1024 * 1024);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
      await ctx.cluster.close();
    }
  });
  // Quiet idle skips the periodic heartbeat: a server whose inbound queue dropped a new peer's INITIAL_HEARTBEAT
  // must announce itself again, or the two never count each other while the cluster is idle.
  test('a new server whose INITIAL_HEARTBEAT an overflowing server dropped: the two still count each other', async () => {
    const ctx = await startCluster(1);
    const locker = new Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    try {
      const { cluster, errors, channel } = ctx;
      await overflowBehindAttachment(locker, channel);
      const A = cluster.servers[0].io.of('/').adapter;
      const dropped = () => A.stats().dropped.inboundOverflow;
      await waitFor(() => errors[0].some((e) => e.code === 'INBOUND_OVERFLOW'), 30000, 'the flood to overflow the queue');
      let before = -1; // the whole flood has been read once the count stops growing
      await waitFor(async () => {
        const now = dropped();
        if (now === before) return true;
        before = now;
        await sleep(500);
        return false;
      }, 30000, 'the flood to be read');
      await cluster.addServer({ errorHandler: () => {} }); // its INITIAL_HEARTBEAT is dropped too
      await waitFor(() => dropped() > before, 10000, 'the new server\'s INITIAL_HEARTBEAT to be dropped');
      await locker.query('COMMIT');
      await waitFor(() => errors[0].some((e) => e.code === 'INBOUND_OVERFLOW' && /drained/.test(e.message)), 30000, 'the queue to drain');
      // Idle from here on: no broadcast that would introduce the servers to each other.
      await expectPairCountsEachOther(cluster);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
      await ctx.cluster.close();
    }
  });
});

describe('forged requests that every server answers', () => {
  test('100000 forged INITIAL_HEARTBEATs in one statement do not fill the publish queue: broadcasts keep flowing', async () => {
    const { cluster, errors, channel } = await startCluster(2);
    try {
      const [onA, onB] = await cluster.connectOnEach();
      const N = 100000;
      await raw.query(
        `SELECT pg_notify($1, '{"type":1,"uid":"forged' || g::text || '","nsp":"/"}') FROM generate_series(1, $2::int) g`,
        [channel, N],
      );
      // Broadcasts published while the servers take the flood in.
      const ids = [];
      for (let i = 0; i < 20; i++) {
        for (const s of cluster.servers) {
          const id = `during-${s.index}-${i}`;
          ids.push([s.index, id]);
          s.io.emit('during', id);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await waitFor(
        () => cluster.servers.every((s) => s.io.of('/').adapter.stats().received.messages >= N),
        60000,
        'every server to take the whole flood in',
      );
      for (const [from, id] of ids) {
        const to = from === 0 ? onB : onA;
        await waitFor(() => eventsOf(to, 'during').some(([x]) => x === id), 20000, `broadcast ${id} to reach the other server`);
      }
      await goodMessageArrivesOnce(cluster, 0, onB);
      await goodMessageArrivesOnce(cluster, 1, onA);
      for (const errs of errors) expect(reportedCount(errs, 'PUBLISH_DROPPED')).toBe(0);
      for (const s of cluster.servers) expect(s.io.of('/').adapter.stats().dropped.queueFull).toBe(0);
    } finally {
      await cluster.close();
    }
  });
});

describe('forged broadcasts with acknowledgements', () => {
  test('30000 of them to clients that never answer: each delivered, memory stays bounded, broadcasts keep flowing', async () => {
    const cluster = new Cluster({ channelPrefix: PREFIX, size: 0 });
    const errors = [[], []];
    for (const errs of errors) await cluster.addServer({ errorHandler: (err) => errs.push(err) });
    await cluster.waitReady();
    const channel = `${cluster.adapterOpts.channelPrefix}#/`;
    try {
      const [onA, onB] = await cluster.connectOnEach();
      for (let i = 0; i < 9; i++) await cluster.connect(0);
      const clients = cluster.clients.filter((c) => c.serverIndex === 0);
      // Each client counts them, keeps nothing of them (not even the acknowledgement), and never answers.
      let delivered = 0;
      for (const client of clients) client.on('nobody-answers', () => delivered++);
      require('v8').setFlagsFromString('--expose-gc');
      const gc = require('vm').runInNewContext('gc');
      gc();
      const before = process.memoryUsage().heapUsed;
      const N = 30000;
      // Each asks every client for an acknowledgement of an event nobody handles, waiting for it 10 minutes.
      const request = { type: 3, data: { packet: { type: 2, data: ['nobody-answers'] }, opts: { rooms: [], except: [], flags: { timeout: 600000 } }, requestId: 'REQ' }, uid: 'f0f0f0f0f0f0f0f0', nsp: '/' };
      const [head, tail] = JSON.stringify(request).split('REQ');
      await raw.query(`SELECT pg_notify($1, $2 || g::text || $3) FROM generate_series(1, $4::int) g`, [channel, head, tail, N]);
      await waitFor(() => delivered === N * clients.length, 60000, () => `every client of server 0 to get all ${N} (${delivered})`);
      await goodMessageArrivesOnce(cluster, 1, onA);
      await goodMessageArrivesOnce(cluster, 0, onB);
      for (const client of cluster.clients) client.received.length = 0; // the test's own record of them
      gc();
      // Kept until their timeout, their callbacks and timers took 64 MB; bounded, 3 MB.
      expect(process.memoryUsage().heapUsed - before).toBeLessThan(32 * 1024 * 1024);
      for (const errs of errors) expect(reportedCount(errs, 'PUBLISH_DROPPED')).toBe(0);
      expect(reportedCount(errors[0], 'ACKS_DROPPED')).toBeGreaterThan(0);
    } finally {
      await cluster.close();
    }
  });

  test('a real one from another server leaves nothing on our sockets once its timeout is over', async () => {
    const cluster = new Cluster({ channelPrefix: PREFIX, size: 2 });
    await cluster.start();
    try {
      await cluster.connectOnEach();
      const err = await new Promise((resolve) => cluster.servers[1].io.timeout(300).emit('nobody-answers', (e) => resolve(e)));
      expect(err).toBeInstanceOf(Error); // the client on server 0 never answered
      const sockets = [...cluster.servers[0].io.of('/').sockets.values()];
      await waitFor(() => sockets.every((s) => s.acks.size === 0), 5000, 'the acknowledgement callbacks on server 0 to be dropped');
    } finally {
      await cluster.close();
    }
  });
});

describe('forged server ids', () => {
  const heapAfterGc = () => {
    require('v8').setFlagsFromString('--expose-gc');
    require('vm').runInNewContext('gc')();
    return process.memoryUsage().heapUsed;
  };
  // A cluster that remembers every server for a minute: what the flood leaves behind stays measurable.
  async function floodHeartbeats(uidPrefix, N) {
    const cluster = new Cluster({ channelPrefix: PREFIX, size: 0, adapterOpts: { heartbeatTimeout: 60000 } });
    const errors = [[], []];
    for (const errs of errors) await cluster.addServer({ errorHandler: (err) => errs.push(err) });
    await cluster.waitReady();
    const channel = `${cluster.adapterOpts.channelPrefix}#/`;
    const before = heapAfterGc();
    await raw.query(
      `SELECT pg_notify($1, '{"type":2,"uid":"' || $3::text || g::text || '","nsp":"/"}') FROM generate_series(1, $2::int) g`,
      [channel, N, uidPrefix],
    );
    await waitFor(() => cluster.servers[0].io.of('/').adapter.stats().received.messages >= N, 60000, 'the whole flood to be taken in');
    return { cluster, errors, grown: heapAfterGc() - before };
  }
  async function stillACluster(cluster) {
    const [onA, onB] = await cluster.connectOnEach();
    await goodMessageArrivesOnce(cluster, 0, onB);
    await goodMessageArrivesOnce(cluster, 1, onA);
    const sockets = await cluster.servers[0].io.fetchSockets(); // waits for the real peer only if forged ones are gone
    expect(sockets.map((s) => s.data.server).sort()).toContain(1);
  }

  test('100000 heartbeats with made-up 7800-character uids: reported and not kept (memory bounded)', async () => {
    const { cluster, errors, grown } = await floodHeartbeats('x'.repeat(7800), 100000);
    try {
      expect(grown).toBeLessThan(64 * 1024 * 1024); // kept, they would take 800 MB
      expect(reportedCount(errors[0], 'BAD_NOTIFICATION')).toBeGreaterThan(0);
      expect(errors[0].find((e) => e.code === 'BAD_NOTIFICATION')).toBeInstanceOf(Error);
      await stillACluster(cluster);
    } finally {
      await cluster.close();
    }
  });

  test('100000 heartbeats with made-up short uids: at most 10000 servers are remembered', async () => {
    const { cluster, errors } = await floodHeartbeats('f', 100000);
    try {
      const counts = await Promise.all(cluster.servers.map((s) => s.io.of('/').adapter.nodesMap.size));
      for (const n of counts) expect(n).toBeLessThanOrEqual(10000);
      expect(reportedCount(errors[0], 'BAD_NOTIFICATION')).toBeGreaterThan(0);
      const [onA, onB] = await cluster.connectOnEach();
      await goodMessageArrivesOnce(cluster, 0, onB);
      await goodMessageArrivesOnce(cluster, 1, onA);
    } finally {
      await cluster.close();
    }
  });
});

describe('values JavaScript cannot hold (defect 9.6)', () => {
  // A broadcast whose second argument is a value built by `insert(head, tail)` between the bytes before and after it,
  // stored as an attachment row and announced: refused with BAD_ATTACHMENT (`reason`), the next message delivered.
  async function refused(ev, insert, reason) {
    const ctx = await startCluster(1);
    try {
      const { cluster, errors, channel } = ctx;
      const [onA] = await cluster.connectOnEach();
      const marker = 'MARKER-0123456789';
      const bytes = Buffer.from(encode(broadcast([ev, marker])));
      const at = bytes.indexOf(Buffer.from(marker)) - 1; // the fixstr header byte
      const id = await insert(bytes.subarray(0, at), bytes.subarray(at + 1 + marker.length));
      await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ uid: 'emitter', nsp: '/', type: 3, attachmentId: String(id) })]);
      await waitFor(() => errors[0].some((e) => e.code === 'BAD_ATTACHMENT'), 60000, () => `BAD_ATTACHMENT, got: ${codesOf(errors[0])}`);
      expect(errors[0].find((e) => e.code === 'BAD_ATTACHMENT').message).toMatch(reason);
      await goodMessageArrivesOnce(cluster, 0, onA);
      expect(eventsOf(onA, ev)).toEqual([]);
      await raw.query('DELETE FROM socket_io_attachments WHERE id = $1', [id]);
    } finally {
      await ctx.cluster.close();
    }
  }

  test('an attachment holding a 540 MB msgpack string → BAD_ATTACHMENT, and the next message is delivered', async () => {
    // The string is built in the database.
    await refused('huge', async (head, tail) => {
      const { rows } = await raw.query(
        `INSERT INTO socket_io_attachments (payload)
         VALUES ($1::bytea OPERATOR(pg_catalog.||) '\\xdb'::bytea OPERATOR(pg_catalog.||) pg_catalog.int4send(540000000)
                 OPERATOR(pg_catalog.||) pg_catalog.convert_to(pg_catalog.repeat('a', 540000000), 'UTF8')
                 OPERATOR(pg_catalog.||) $2::bytea)
         RETURNING id`,
        [head, tail],
      );
      return rows[0].id;
    }, /too long/);
  });

  test('an attachment of 3,000,000 nils (3 MB, over 300 MB decoded) → BAD_ATTACHMENT, and the next message is delivered', async () => {
    await refused('nils', (head, tail) => {
      const array = Buffer.from([0xdd, 0, 0, 0, 0]); // array 32
      array.writeUInt32BE(3000000, 1);
      return forgeRow(Buffer.concat([head, array, Buffer.alloc(3000000, 0xc0), tail]));
    }, /more than 2097152 values/);
  });

  // In a child process: on failure the process aborts, which must not take the test runner down.
  function runChild(script) {
    return new Promise((resolve) => {
      execFile(process.execPath, ['-e', script], { env: process.env, timeout: 60000 }, (err, stdout, stderr) =>
        resolve({ code: err ? err.code ?? err.signal : 0, stdout, stderr }));
    });
  }

  test('an array of length 2^32-1 handed to the encoder → ENCODE_FAILED, the process lives on', async () => {
    const lib = JSON.stringify(require.resolve('../lib'));
    const script = `
      const { createAdapter, Emitter } = require(${lib});
      const { Server } = require('socket.io');
      const codes = [];
      const io = new Server();
      io.listen(0);
      io.adapter(createAdapter(process.env.DATABASE_URL, { channelPrefix: 'inbound_huge', errorHandler: (e) => codes.push(e.code) }));
      const emitter = new Emitter(process.env.DATABASE_URL, '/', { channelPrefix: 'inbound_huge', errorHandler: (e) => codes.push(e.code) });
      let thrown = null;
      (async () => {
        io.serverSideEmit('x', new Array(2 ** 32 - 1));
        emitter.emit('x', new Array(2 ** 32 - 1));
        emitter.emit('y', { a: new Array(2 ** 31) });
        await new Promise((r) => setTimeout(r, 200));
        io.serverSideEmit('ok', [1, 2, 3]);
        await emitter.close();
        io.close();
        console.log(JSON.stringify(codes));
      })().catch((e) => { console.log('failed', e); process.exit(3); });
    `;
    const { code, stdout, stderr } = await runChild(script);
    expect({ code, stderr: stderr.slice(0, 500) }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(stdout.trim().split('\n').pop())).toEqual(['ENCODE_FAILED', 'ENCODE_FAILED', 'ENCODE_FAILED']);
  });
});
