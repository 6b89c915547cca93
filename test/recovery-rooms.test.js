// Connection state recovery with room names a client chose: names PostgreSQL text cannot hold (a NUL, a lone
// surrogate), and names that look like what the adapter stores for those. Such a room must cost nobody
// else their recovery, and a client in it recovers into exactly its rooms.
const { Pool } = require('pg');
const { Cluster, waitFor } = require('./helpers/cluster');
const { recoverableClient, cut, reconnectTo } = require('./helpers/recovery');

const TABLES = { logTableName: `csrr_log_${process.pid}`, sessionTableName: `csrr_sessions_${process.pid}` };
// \u0001 + hex: the form the adapter stores a NUL or lone-surrogate name in (it must not be mistaken for one).
const HOSTILE = ['nul\0room', 'lone\uD800', '\uDC00lone', '\u0001', '\u00016e756c00726f6f6d', 'x\uD800'];

let pool;
let cluster;
const errors = [[], []];
const clients = [];

beforeAll(async () => {
  pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  cluster = new Cluster({
    channelPrefix: 'csrr',
    size: 0,
    adapterOpts: { ...TABLES, createTable: true },
    serverOpts: { connectionStateRecovery: { maxDisconnectionDuration: 60000 } },
  });
  for (let i = 0; i < 2; i++) await cluster.addServer({ errorHandler: (err) => errors[i].push(err) });
  await cluster.waitReady();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});
afterAll(async () => {
  await cluster.close();
  await pool.end();
});

async function recoverable(serverIndex, rooms) {
  const c = await recoverableClient(cluster, serverIndex, rooms);
  clients.push(c);
  return c;
}
const cutOff = (c, serverIndex) => cut(cluster, c, serverIndex, { pool, sessionTable: TABLES.sessionTableName });
const events = (c, ev) => c.got.filter(([e]) => e === ev).map(([, p]) => p);
// B's packets reach a client in order: once this one is in, every earlier one of B's is.
async function fence(c) {
  const mark = `${Date.now()}-${Math.random()}`;
  cluster.servers[1].io.emit('fence', mark);
  await waitFor(() => events(c, 'fence').includes(mark), 5000, 'the fence');
}
const logged = async (after) =>
  (await pool.query(`SELECT count(*)::int AS n FROM ${TABLES.logTableName} WHERE id > $1`, [after])).rows[0].n;

test('broadcasts to rooms PostgreSQL cannot name, batched with others: a recovering client still gets every one of its own', async () => {
  const c = await recoverable(0, ['r']);
  const B = cluster.servers[1].io;
  B.emit('first', 0);
  await waitFor(() => events(c, 'first').length === 1, 5000, 'the first packet');
  await cutOff(c, 0);
  const reported = errors[1].length;
  // One turn of the event loop: these are logged together.
  for (let i = 0; i < 3; i++) {
    B.to('r').emit('mine', i);
    for (const room of HOSTILE) B.to(room).emit('not-mine', i);
    B.except(HOSTILE).emit('mine-too', i);
  }
  await waitFor(async () => (await logged(c._lastOffset)) === 3 * (2 + HOSTILE.length), 5000, 'every broadcast logged');

  await reconnectTo(cluster, c, 0);
  expect(c.recovered).toBe(true);
  await waitFor(() => events(c, 'mine-too').length === 3, 5000, 'the missed packets');
  await fence(c);
  expect(events(c, 'mine')).toEqual([0, 1, 2]);
  expect(events(c, 'mine-too')).toEqual([0, 1, 2]);
  expect(events(c, 'not-mine')).toEqual([]);
  expect(errors[1].slice(reported).map((e) => e.code)).toEqual([]);
});

test.each(HOSTILE.map((room) => [JSON.stringify(room), room]))(
  'a client in room %s recovers into exactly its rooms and gets what was sent there, nothing of look-alike rooms',
  async (_, room) => {
    const c = await recoverable(0, [room, 'plain']);
    const B = cluster.servers[1].io;
    B.emit('first', 0);
    await waitFor(() => events(c, 'first').length === 1, 5000, 'the first packet');
    const id = c.id;
    await cutOff(c, 0);
    const reported = [errors[0].length, errors[1].length];
    const others = HOSTILE.filter((r) => r !== room);
    B.to(room).emit('mine', 1);
    for (const other of others) B.to(other).emit('not-mine', other);
    B.except(room).emit('not-mine', 'except');
    B.to(room).emit('mine', 2);
    await waitFor(async () => (await logged(c._lastOffset)) === others.length + 3, 5000, 'every broadcast logged');

    await reconnectTo(cluster, c, 1);
    expect(c.recovered).toBe(true);
    expect(c.id).toBe(id);
    await waitFor(() => events(c, 'mine').length === 2, 5000, 'the missed packets');
    await fence(c);
    expect(events(c, 'mine')).toEqual([1, 2]);
    expect(events(c, 'not-mine')).toEqual([]);
    const socket = cluster.servers[1].io.of('/').sockets.get(c.id);
    expect([...socket.rooms].sort()).toEqual([id, room, 'plain'].sort());
    expect([...errors[0].slice(reported[0]), ...errors[1].slice(reported[1])].map((e) => e.code)).toEqual([]);
  },
);
