'use strict';
// examples/prometheus.js and examples/health.js, on a running cluster.

const http = require('http');
const { Registry } = require('prom-client');
const { Cluster, waitFor, waitForEvents } = require('./helpers/cluster');
const { registerAdapterMetrics } = require('../examples/prometheus');
const { readinessHandler } = require('../examples/health');

const QUIET = { heartbeatInterval: 600000, heartbeatTimeout: 1200000 }; // no heartbeat during the file

// GET `path` on a server running `handler`: { status, body }.
async function get(handler) {
  const server = http.createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise((resolve, reject) => {
      http.get(`http://127.0.0.1:${server.address().port}/ready`, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
      }).on('error', reject);
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

// The value of one sample of the exposition text, e.g. sample(text, 'x_total{code="A"}').
function sample(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operations examples', () => {
  let cluster;
  beforeAll(async () => {
    cluster = new Cluster({ channelPrefix: 'opsexamples', size: 2, adapterOpts: QUIET });
    await cluster.start();
  });
  afterAll(async () => {
    if (cluster) await cluster.close();
  });

  test('prometheus.js exports the counters of stats() under their metric names', async () => {
    const [A] = cluster.servers;
    const registry = new Registry();
    registerAdapterMetrics(registry, () => A.io.of('/').adapter.stats());
    const clientB = await cluster.connect(1);
    const before = A.io.of('/').adapter.stats().published.messages;
    for (let i = 0; i < 7; i++) A.io.emit('p', i);
    A.io.emit('bin', Buffer.from('abc'));
    await waitForEvents(clientB, 'p', 7);
    await waitForEvents(clientB, 'bin', 1);
    await waitFor(() => A.io.of('/').adapter.stats().published.messages === before + 8, 5000, 'the publishes to be counted');
    const text = await registry.metrics();
    expect(sample(text, 'socketio_postgres_published_messages_total')).toBe(before + 8);
    expect(sample(text, 'socketio_postgres_published_attachments_total')).toBe(A.io.of('/').adapter.stats().published.attachments);
    expect(sample(text, 'socketio_postgres_connection_up{connection="publish"}')).toBe(1);
    expect(sample(text, 'socketio_postgres_connection_up{connection="listen"}')).toBe(1);
    expect(sample(text, 'socketio_postgres_queue_depth')).toBe(0);
    expect(sample(text, 'socketio_postgres_dropped_total{reason="queueFull"}')).toBe(0);
    expect(sample(text, 'socketio_postgres_publish_latency_ms{quantile="0.99"}')).toBeGreaterThanOrEqual(0);
    expect(text).toContain('# TYPE socketio_postgres_received_messages_total counter');
    // A second scrape reports the totals again, not added to the first.
    expect(sample(await registry.metrics(), 'socketio_postgres_published_messages_total')).toBe(before + 8);
  });

  test('health.js answers 200 while healthy and 503 with the reasons once the adapter is closed', async () => {
    const extra = await cluster.addServer();
    const adapter = extra.io.of('/').adapter;
    await waitFor(() => adapter.health().ok, 10000, 'the new server to connect');
    const ok = await get(readinessHandler(adapter));
    expect(ok).toMatchObject({ status: 200, body: { ok: true, reasons: [] } });
    await cluster.removeServer(extra);
    const down = await get(readinessHandler(adapter));
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ ok: false, connections: { publish: 'down', listen: 'down' } });
  });
});
