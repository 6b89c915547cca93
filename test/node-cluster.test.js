// Two node:cluster primaries (setupPrimary from this package) x two workers (@socket.io/cluster-adapter):
// small, large and binary broadcasts reach every client of every worker exactly once.
const { fork } = require('child_process');
const path = require('path');
const { io: ioClient } = require('socket.io-client');
const { waitFor, withTimeout } = require('./helpers/cluster');

const FIXTURE = path.join(__dirname, 'fixtures', 'cluster-primary.js');

function startPrimary(channelPrefix) {
  const child = fork(FIXTURE, [], { env: { ...process.env, CHANNEL_PREFIX: channelPrefix }, stdio: 'inherit' });
  const primary = { child, errors: [], counts: [], ports: null };
  child.on('message', (m) => {
    if (m.error) primary.errors.push(m.error);
    if (m.ports) primary.ports = m.ports;
    if (m.serverCount !== undefined) primary.counts[m.worker] = m.serverCount;
  });
  return primary;
}

describe('setupPrimary with node:cluster workers', () => {
  const prefix = `nodecluster_${process.pid}`;
  let primaries = [];
  let clients = [];

  beforeAll(async () => {
    primaries = [startPrimary(prefix), startPrimary(prefix)];
    await waitFor(() => primaries.every((p) => p.ports), 20000, 'both primaries to start their workers');
    await waitFor(
      () => {
        for (const p of primaries) for (let w = 0; w < 2; w++) p.child.send({ cmd: 'serverCount', worker: w });
        return primaries.every((p) => p.counts.length === 2 && p.counts.every((c) => c === 4));
      },
      20000,
      'every worker to count 4 servers',
    );
    for (const p of primaries) {
      for (const port of p.ports) {
        const c = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
        c.got = [];
        c.on('msg', (id, payload) => c.got.push({ id, payload }));
        await withTimeout(new Promise((r) => c.once('connect', r)), 5000, 'client connect');
        clients.push(c);
      }
    }
  }, 60000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(
      primaries.map((p) => new Promise((r) => {
        if (p.child.exitCode !== null) return r();
        p.child.once('exit', r);
        p.child.send({ cmd: 'stop' });
      })),
    );
  });

  test.each(['small', 'large', 'binary'])('a %s broadcast from one worker reaches all 4 workers\' clients once', async (kind) => {
    const from = [primaries[0], 1];
    const id = `${kind}-${Date.now()}`;
    from[0].child.send({ cmd: 'emit', worker: from[1], kind, id });
    // a second broadcast from the other primary, as the end marker of this round
    const marker = `${id}-end`;
    await waitFor(() => clients.every((c) => c.got.some((g) => g.id === id)), 10000, `every client to get ${id}`);
    primaries[1].child.send({ cmd: 'emit', worker: 0, kind: 'small', id: marker });
    await waitFor(() => clients.every((c) => c.got.some((g) => g.id === marker)), 10000, 'the end marker');

    for (const c of clients) {
      const copies = c.got.filter((g) => g.id === id);
      expect(copies).toHaveLength(1);
      const { payload } = copies[0];
      if (kind === 'binary') expect([...Buffer.from(payload)]).toEqual([0, 1, 2, 254, 255]);
      else if (kind === 'large') expect(payload).toBe('L'.repeat(20000));
      else expect(payload).toBe('small');
      expect(c.got.filter((g) => g.id === marker)).toHaveLength(1);
    }
    for (const p of primaries) expect(p.errors).toEqual([]);
  });
});
