// A mixed cluster: one server on the pure-JS @socket.io/postgres-adapter 0.5, one on this package.
// Every feature must work in both directions (a cluster can migrate one server at a time).
const { Cluster, waitFor, waitForEvents, ackResult } = require('./helpers/cluster');

const KINDS = ['pure', 'native'];
// Received binary may be an ArrayBuffer of another realm (Jest's vm context): copy its bytes.
const bytesOf = (v) => Buffer.from(new Uint8Array(v));

describe('mixed cluster: pure-JS adapter 0.5 and native adapter', () => {
  let cluster;
  beforeAll(async () => {
    cluster = new Cluster({ channelPrefix: 'compat', size: 2, adapters: KINDS });
    await cluster.start();
  });
  afterEach(() => cluster.disconnectClients());
  afterAll(() => cluster.close());

  // from: index of the sending server; to: the other one
  describe.each([[0, 1], [1, 0]])('from %s to %s', (from, to) => {
    const label = () => `${KINDS[from]} -> ${KINDS[to]}`;

    test('broadcast, room and except', async () => {
      const [inRoom, outside] = [await cluster.connect(to, { rooms: ['r1'] }), await cluster.connect(to)];
      const io = cluster.servers[from].io;
      io.emit('all', label());
      io.to('r1').emit('room', 1);
      io.except('r1').emit('except', 2);
      await waitForEvents(inRoom, 'all');
      await waitForEvents(outside, 'except');
      await waitForEvents(inRoom, 'room');
      await cluster.barrier();
      expect(inRoom.received.filter((e) => e[0] === 'all')).toEqual([['all', label()]]);
      expect(inRoom.received.some((e) => e[0] === 'except')).toBe(false);
      expect(outside.received.some((e) => e[0] === 'room')).toBe(false);
    });

    test('lone surrogates arrive as sent, inline and in an attachment', async () => {
      const client = await cluster.connect(to);
      const lone = 'a\ud800b\udfffc\ud83d\ude00';
      cluster.servers[from].io.emit('lone', lone, { [lone]: lone });
      // Binary: the attachment table (msgpack). @msgpack/msgpack keeps lone surrogates in strings of up to 200
      // characters (longer ones go through TextEncoder, which replaces them: the pure-JS packages' own behaviour).
      cluster.servers[from].io.emit('lone-bin', lone, Buffer.from([1]));
      expect(await waitForEvents(client, 'lone')).toEqual([[lone, { [lone]: lone }]]);
      const [[text, bin]] = await waitForEvents(client, 'lone-bin');
      expect(JSON.stringify(text)).toBe(JSON.stringify(lone));
      expect(bytesOf(bin)).toEqual(Buffer.from([1]));
    });

    test('binary, large and Date payloads', async () => {
      const client = await cluster.connect(to);
      const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
      const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
      const big = 'é'.repeat(6000); // 12,000 bytes of JSON: the attachment path
      cluster.servers[from].io.emit('bin', bytes, { nested: [bytes] });
      cluster.servers[from].io.emit('big', big, when);
      const [[b, nested]] = await waitForEvents(client, 'bin');
      expect(bytesOf(b)).toEqual(bytes);
      expect(bytesOf(nested.nested[0])).toEqual(bytes);
      const [[text, date]] = await waitForEvents(client, 'big');
      expect(text).toBe(big);
      expect(date).toBe(when.toISOString());
    });

    test('broadcast with acks from clients of both servers', async () => {
      const clients = [await cluster.connect(0), await cluster.connect(1)];
      clients.forEach((c) => c.on('q', (n, cb) => cb(n * 2, c.serverIndex)));
      const { err, responses } = await ackResult((cb) => cluster.servers[from].io.timeout(1500).emit('q', 21, cb));
      expect(err).toBeNull();
      expect(responses.sort()).toEqual([42, 42]);
    });

    test('fetchSockets sees the sockets of both servers', async () => {
      await cluster.connect(0, { rooms: ['x'], data: { who: 'a' } });
      await cluster.connect(1, { rooms: ['x'], data: { who: 'b' } });
      const sockets = await waitFor(async () => {
        const s = await cluster.servers[from].io.in('x').fetchSockets();
        return s.length === 2 && s;
      }, 5000, 'both sockets');
      expect(sockets.map((s) => s.data.who).sort()).toEqual(['a', 'b']);
      expect(sockets.every((s) => s.rooms.has('x'))).toBe(true);
    });

    test('serverSideEmit with an ack', async () => {
      cluster.servers[to].io.removeAllListeners('ping');
      cluster.servers[to].io.on('ping', (x, cb) => cb(`pong ${x} from ${KINDS[to]}`));
      const { err, responses } = await ackResult((cb) => cluster.servers[from].io.serverSideEmit('ping', 7, cb));
      expect(err).toBeNull();
      expect(responses).toEqual([`pong 7 from ${KINDS[to]}`]);
    });

    test('socketsJoin and disconnectSockets reach the other server', async () => {
      const client = await cluster.connect(to);
      cluster.servers[from].io.socketsJoin('joined');
      await waitFor(() => cluster.servers[to].io.of('/').adapter.rooms.has('joined'), 5000, 'the remote join');
      const gone = new Promise((r) => client.once('disconnect', r));
      cluster.servers[from].io.in('joined').disconnectSockets(true);
      await expect(gone).resolves.toBeDefined();
    });
  });
});
