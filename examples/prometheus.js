"use strict";
// Exports an adapter's stats() to Prometheus with prom-client (npm install prom-client).
//
//   const { Registry } = require("prom-client");
//   const registry = new Registry();
//   registerAdapterMetrics(registry, () => io.of("/").adapter.stats());
//   app.get("/metrics", async (req, res) => res.type(registry.contentType).send(await registry.metrics()));
//
// Run alone (node examples/prometheus.js, DATABASE_URL set) it serves a Socket.IO server with /metrics on :3000.
const { Counter, Gauge } = require("prom-client");

/**
 * Registers the metrics on `registry`; each is read from `getStats()` when Prometheus scrapes.
 * Totals are counters (`_total`), the rest gauges. Names start with `prefix`.
 */
function registerAdapterMetrics(registry, getStats, prefix = "socketio_postgres_") {
  const registers = [registry];
  // A counter that mirrors a total kept by the adapter.
  const total = (name, help, labelNames, read) =>
    new Counter({
      name: prefix + name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read(getStats())) this.inc(labels, value);
      },
    });
  const gauge = (name, help, labelNames, read) =>
    new Gauge({
      name: prefix + name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read(getStats())) if (value !== null) this.set(labels, value);
      },
    });
  const connections = (s) => Object.entries(s.connections).filter(([, c]) => c !== null);
  const byKey = (label, obj) => Object.entries(obj).map(([key, value]) => [{ [label]: key }, value]);

  gauge("connection_up", "1 when the connection to PostgreSQL is established", ["connection"], (s) =>
    connections(s).map(([name, c]) => [{ connection: name }, c.state === "connected" ? 1 : 0]));
  total("reconnects_total", "Times a connection came back after an outage", ["connection"], (s) =>
    connections(s).map(([name, c]) => [{ connection: name }, c.reconnects]));
  gauge("queue_depth", "Messages waiting to be sent to PostgreSQL", [], (s) => [[{}, s.queue.depth]]);
  gauge("queue_in_flight", "Messages in the statement being committed", [], (s) => [[{}, s.queue.inFlight]]);
  total("published_messages_total", "Messages committed to PostgreSQL", [], (s) => [[{}, s.published.messages]]);
  total("published_attachments_total", "Of those, messages sent through the attachment table", [], (s) => [[{}, s.published.attachments]]);
  total("published_bytes_total", "Payload bytes committed", [], (s) => [[{}, s.published.bytes]]);
  total("received_messages_total", "Messages received from other servers", [], (s) => [[{}, s.received.messages]]);
  total("received_attachments_total", "Of those, messages read from the attachment table", [], (s) => [[{}, s.received.attachments]]);
  total("dropped_total", "Messages dropped, by reason", ["reason"], (s) => byKey("reason", s.dropped));
  total("errors_total", "Reports to the errorHandler, by code", ["code"], (s) => byKey("code", s.errors));
  gauge("publish_latency_ms", "Publish latency (queued to committed) over the last minute", ["quantile"], (s) => [
    [{ quantile: "0.5" }, s.latency.p50],
    [{ quantile: "0.99" }, s.latency.p99],
  ]);
}

module.exports = { registerAdapterMetrics };

if (require.main === module) {
  const http = require("http");
  const { Registry } = require("prom-client");
  const { Server } = require("socket.io");
  const { createAdapter } = require("..");

  const registry = new Registry();
  // Socket.IO answers its own path (/socket.io/); every other request comes to this handler.
  const httpServer = http.createServer(async (req, res) => {
    if (req.url !== "/metrics") return res.writeHead(404).end();
    res.setHeader("Content-Type", registry.contentType);
    res.end(await registry.metrics());
  });
  const io = new Server(httpServer, { adapter: createAdapter(process.env.DATABASE_URL) });
  registerAdapterMetrics(registry, () => io.of("/").adapter.stats());
  httpServer.listen(Number(process.env.PORT) || 3000);
}
