'use strict';
// Broadcasts with acknowledgements (io.timeout(ms).emit(ev, cb)) across 3 servers.

const { useCluster, ackResult } = require('./helpers/cluster');

const ctx = useCluster({ channelPrefix: 'acks' });

// Every client answers `ev` with `answer(client)`.
function answerWith(clients, ev, answer) {
  for (const client of clients) client.on(ev, (arg, cb) => cb(answer(client, arg)));
}

describe('broadcast with acknowledgements', () => {
  test('io.timeout().emit() from A collects the answers of the clients on A, B and C', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    answerWith(clients, 'q', (client, arg) => `${arg} from server ${client.serverIndex}`);

    const { err, responses } = await ackResult((cb) => cluster.servers[0].io.timeout(2000).emit('q', 'hi', cb));

    expect(err).toBeNull();
    expect([...responses].sort()).toEqual(['hi from server 0', 'hi from server 1', 'hi from server 2']);
  });

  test('emitWithAck() resolves with the answers of every client', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    answerWith(clients, 'count', (client) => ({ server: client.serverIndex }));

    const responses = await cluster.servers[1].io.timeout(2000).emitWithAck('count', null);

    expect(responses.map((r) => r.server).sort()).toEqual([0, 1, 2]);
  });

  test('to(room) with an acknowledgement only waits for the members of the room', async () => {
    const { cluster } = ctx;
    const members = [await cluster.connect(1, { rooms: ['ack-room'] }), await cluster.connect(2, { rooms: ['ack-room'] })];
    const others = await cluster.connectOnEach();
    answerWith(members, 'rq', () => 'member');
    answerWith(others, 'rq', () => 'outsider');

    const { err, responses } = await ackResult((cb) => cluster.servers[0].io.to('ack-room').timeout(2000).emit('rq', 1, cb));

    expect(err).toBeNull();
    expect(responses).toEqual(['member', 'member']);
  });

  test('binary answers arrive as bytes (Uint8Array/Buffer) with the same content', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    answerWith(clients, 'bin', (client) => Buffer.from([client.serverIndex, 0, 255, 1, 2, 3]));

    const { err, responses } = await ackResult((cb) => cluster.servers[0].io.timeout(2000).emit('bin', null, cb));

    expect(err).toBeNull();
    expect(responses).toHaveLength(3);
    for (const r of responses) expect(r).toBeInstanceOf(Uint8Array);
    const asArrays = responses.map((r) => [...r]).sort((a, b) => a[0] - b[0]);
    expect(asArrays).toEqual([0, 1, 2].map((i) => [i, 0, 255, 1, 2, 3]));
  });

  test('no client in the target room gives [] and no error', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    answerWith(clients, 'nobody', () => 'unexpected');

    const { err, responses } = await ackResult((cb) => cluster.servers[0].io.to('empty-room').timeout(2000).emit('nobody', 1, cb));

    expect(err).toBeNull();
    expect(responses).toEqual([]);
  });

  test('a client that never answers gives a timeout error with the partial answers', async () => {
    const { cluster } = ctx;
    const [onA, onB, onC] = await cluster.connectOnEach();
    answerWith([onA, onB], 'slow', (client) => client.serverIndex);
    onC.on('slow', () => {}); // receives the event, never calls the acknowledgement

    const { err, responses } = await ackResult((cb) => cluster.servers[0].io.timeout(2000).emit('slow', 1, cb));

    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/timed out/);
    expect([...responses].sort()).toEqual([0, 1]);
  });

  // A busy cluster: more broadcasts with acknowledgements within one timeout than a server keeps
  // callbacks for (1,000 per namespace). Clients answer at once: none may be lost.
  test('1,500 broadcasts with acknowledgements in flight together: each delivered and answered by every client', async () => {
    const { cluster } = ctx;
    const clients = await cluster.connectOnEach();
    answerWith(clients, 'many', (client, i) => `${i}@${client.serverIndex}`);
    const N = 1500;

    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => ackResult((cb) => cluster.servers[0].io.timeout(20000).emit('many', i, cb), 30000)),
    );

    expect(results.filter((r) => r.err !== null)).toHaveLength(0);
    results.forEach((r, i) => expect([...r.responses].sort()).toEqual([`${i}@0`, `${i}@1`, `${i}@2`]));
  }, 60000);
});
