'use strict';
// Batched writes: the packets engine.io holds for a client while a write is pending leave in one write system call
// (one TCP segment train) instead of one per frame, with the same frames in the same order. What a user sees: every
// message arrives, in order, text and binary, over websocket, polling and after an upgrade; and the server's TCP
// socket is written to once per flush instead of once per message.
const { io: ioClient } = require('socket.io-client');
const { Cluster, waitFor, withTimeout } = require('./helpers/cluster');

jest.setTimeout(30000);

// Counts the writes the server's TCP socket hands to the kernel (each _write/_writev call is one system call).
function countWrites(tcp) {
  const counter = { writes: 0 };
  for (const name of ['_write', '_writev']) {
    const original = tcp[name];
    if (typeof original !== 'function') continue;
    tcp[name] = function countedWrite(...args) {
      counter.writes += 1;
      return original.apply(this, args);
    };
  }
  return counter;
}

const serverSocketOf = (io) => [...io.of('/').sockets.values()][0];
const numbers = (client, ev) => client.received.filter((e) => e[0] === ev).map((e) => e[1]);

describe('batched writes', () => {
  let cluster;
  beforeEach(async () => {
    cluster = new Cluster({ channelPrefix: 'batched', size: 2 });
    await cluster.start();
  });
  afterEach(async () => {
    await cluster.close();
  });

  test('a burst of 20 broadcasts to a websocket client: every message in order, in 2 writes instead of 20', async () => {
    const client = await cluster.connect(0);
    const { io } = cluster.servers[0];
    const counter = countWrites(serverSocketOf(io).conn.transport.socket._socket);
    // The first leaves at once; the other 19 wait in engine.io for that write, then leave together.
    for (let i = 0; i < 20; i++) io.emit('n', i);
    await waitFor(() => numbers(client, 'n').length === 20, 10000, 'the 20 messages');
    expect(numbers(client, 'n')).toEqual([...Array(20).keys()]);
    expect(counter.writes).toBeLessThanOrEqual(2);
  });

  test('binary broadcasts (two frames each) and broadcasts from another server arrive whole and in order', async () => {
    const client = await cluster.connect(0);
    const [a, b] = cluster.servers.map((s) => s.io);
    for (let i = 0; i < 20; i++) a.emit('bin', i, Buffer.from([i, 255 - i]));
    for (let i = 0; i < 20; i++) b.emit('remote', i);
    await waitFor(() => numbers(client, 'bin').length === 20 && numbers(client, 'remote').length === 20, 10000, 'all 40');
    expect(numbers(client, 'bin')).toEqual([...Array(20).keys()]);
    expect(client.received.filter((e) => e[0] === 'bin').map((e) => [...e[2]])).toEqual([...Array(20).keys()].map((i) => [i, 255 - i]));
    expect(numbers(client, 'remote')).toEqual([...Array(20).keys()]);
  });

  test('a polling client, and one that upgrades to websocket in the middle, get every message in order', async () => {
    const { port } = cluster.servers[0];
    const polling = ioClient(`http://127.0.0.1:${port}`, { transports: ['polling'], forceNew: true, reconnection: false });
    const upgrading = ioClient(`http://127.0.0.1:${port}`, { transports: ['polling', 'websocket'], forceNew: true, reconnection: false });
    const got = { polling: [], upgrading: [] };
    polling.on('n', (i) => got.polling.push(i));
    upgrading.on('n', (i) => got.upgrading.push(i));
    try {
      await withTimeout(Promise.all([polling, upgrading].map((c) => new Promise((resolve) => c.once('connect', resolve)))), 5000, 'connect');
      const { io } = cluster.servers[0];
      for (let i = 0; i < 20; i++) io.emit('n', i);
      await waitFor(() => upgrading.io.engine.transport.name === 'websocket', 5000, 'the upgrade');
      for (let i = 20; i < 40; i++) io.emit('n', i);
      const all = [...Array(40).keys()];
      await waitFor(() => got.polling.length === 40 && got.upgrading.length === 40, 10000, 'the 40 messages on both');
      expect(got.polling).toEqual(all);
      expect(got.upgrading).toEqual(all);
    } finally {
      polling.close();
      upgrading.close();
    }
  });
});
