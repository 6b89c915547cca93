"use strict";
// A readiness endpoint for a Socket.IO server on PostgreSQL: 200 while the adapter is healthy, 503 with
// the reasons while it is not (a connection to PostgreSQL down or connecting, or too much waiting to be
// published). Point a Kubernetes readinessProbe (or a load balancer's health check) at GET /ready.
//
// Run alone (node examples/health.js, DATABASE_URL set) it serves a Socket.IO server with /ready on :3000.

/** A request handler answering with `adapter.health(options)` as JSON. */
function readinessHandler(adapter, options) {
  return (req, res) => {
    const health = adapter.health(options);
    res.writeHead(health.ok ? 200 : 503, { "Content-Type": "application/json", "Cache-Control": "no-store" });
    res.end(JSON.stringify(health));
  };
}

module.exports = { readinessHandler };

if (require.main === module) {
  const http = require("http");
  const { Server } = require("socket.io");
  const { createAdapter } = require("..");

  // Socket.IO answers its own path (/socket.io/); every other request comes to this handler.
  const httpServer = http.createServer((req, res) => {
    if (req.url === "/ready") return ready(req, res);
    res.writeHead(404).end();
  });
  const io = new Server(httpServer, { adapter: createAdapter(process.env.DATABASE_URL) });
  const ready = readinessHandler(io.of("/").adapter);
  httpServer.listen(Number(process.env.PORT) || 3000);
}
