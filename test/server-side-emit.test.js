'use strict';
// serverSideEmit() between 3 (then 4) servers, with and without acknowledgement.

const { useCluster, waitFor, waitForClusterReady, ackResult } = require('./helpers/cluster');

// requestsTimeout bounds the "server that never answers" test (the pure-JS adapter ignores it: 5 s).
const ctx = useCluster({ channelPrefix: 'sse', adapterOpts: { requestsTimeout: 2000 } });

// Records the arguments of `ev` on every server: received[i] is the list for server i.
function recordOn(servers, ev) {
  const received = servers.map(() => []);
  servers.forEach((server, i) => server.io.on(ev, (...args) => received[i].push(args)));
  return received;
}

// Every server in `servers` answers `ev` with `answer(server, arg)`.
function answerOn(servers, ev, answer = (server) => `server ${server.index}`) {
  for (const server of servers) server.io.on(ev, (arg, cb) => cb(answer(server, arg)));
}

const serverSideEmitWithAck = (server, ev, ...args) => ackResult((cb) => server.io.serverSideEmit(ev, ...args, cb));

describe('serverSideEmit', () => {
  test('serverSideEmit(ev, 1, "two") from A is received by B and C, not by A', async () => {
    const { servers } = ctx.cluster;
    const received = recordOn(servers, 'sse-plain');
    answerOn(servers, 'sse-ping');

    servers[0].io.serverSideEmit('sse-plain', 1, 'two', { three: [3] });

    await waitFor(() => received[1].length && received[2].length, 5000, 'B and C to receive the event');
    // A round trip started after B and C got the event: A has processed its own copy by the time the answers come.
    expect((await serverSideEmitWithAck(servers[0], 'sse-ping', null)).err).toBeNull();
    expect(received).toEqual([[], [[1, 'two', { three: [3] }]], [[1, 'two', { three: [3] }]]]);
  });

  test('with an acknowledgement, the answers of B and C arrive', async () => {
    const { servers } = ctx.cluster;
    answerOn(servers, 'sse-ack', (server, arg) => ({ from: server.index, echo: arg }));

    const { err, responses } = await serverSideEmitWithAck(servers[0], 'sse-ack', 'hello');

    expect(err).toBeNull();
    expect([...responses].sort((a, b) => a.from - b.from)).toEqual([
      { from: 1, echo: 'hello' },
      { from: 2, echo: 'hello' },
    ]);
  });

  test('serverSideEmitWithAck() resolves with the answers of the other servers', async () => {
    const { servers } = ctx.cluster;
    answerOn(servers, 'sse-promise');

    const responses = await servers[2].io.serverSideEmitWithAck('sse-promise', 1);

    expect([...responses].sort()).toEqual(['server 0', 'server 1']);
  });

  test('a server that never answers gives a timeout error with the partial answers', async () => {
    const { servers } = ctx.cluster;
    answerOn([servers[1]], 'sse-partial');
    servers[2].io.on('sse-partial', () => {}); // receives it, never calls the acknowledgement

    const { err, responses } = await serverSideEmitWithAck(servers[0], 'sse-partial', 1);

    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/timeout/);
    expect(responses).toEqual(['server 1']);
  });

  test('a server that just started gets and gives every answer', async () => {
    const { cluster } = ctx;
    const newcomer = await cluster.addServer();
    try {
      answerOn(cluster.servers, 'sse-new');

      // From the new server, as soon as it counts the 3 others (its LISTEN is live by then).
      await waitForClusterReady([newcomer], { expected: 4 });
      const fromNew = await serverSideEmitWithAck(newcomer, 'sse-new', 1);
      expect(fromNew.err).toBeNull();
      expect([...fromNew.responses].sort()).toEqual(['server 0', 'server 1', 'server 2']);

      // From an existing server, once it counts the new one.
      await cluster.waitReady();
      const fromOld = await serverSideEmitWithAck(cluster.servers[0], 'sse-new', 1);
      expect(fromOld.err).toBeNull();
      expect([...fromOld.responses].sort()).toEqual(['server 1', 'server 2', `server ${newcomer.index}`]);
    } finally {
      await cluster.removeServer(newcomer);
    }
  });
});
