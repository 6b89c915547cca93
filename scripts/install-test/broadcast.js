"use strict";
// Run inside a consumer project that installed the packed tarball: two Socket.IO servers on one
// PostgreSQL (DATABASE_URL), a client on server B receives what server A broadcasts: a small
// message, a 20 KB string (through the attachment table) and a Buffer. Exits 0 when all arrive.
const http = require("http");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { Pool } = require("pg");
const { createAdapter } = require("socket.io-postgres-native");

const deadline = setTimeout(() => {
  console.error("broadcast: timed out");
  process.exit(1);
}, 30000);

async function server(pool) {
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(pool, { createTable: true, heartbeatInterval: 200, heartbeatTimeout: 2000 }),
  });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return { io, port: httpServer.address().port };
}

async function main() {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL });
  const a = await server(pool);
  const b = await server(pool);
  const client = connect(`http://127.0.0.1:${b.port}`, { transports: ["websocket"], forceNew: true });
  const got = [];
  client.onAny((ev, arg) => got.push([ev, arg]));
  await new Promise((resolve) => client.on("connect", resolve));
  while ((await a.io.fetchSockets()).length !== 1) await new Promise((r) => setTimeout(r, 100));

  const big = "x".repeat(20 * 1024);
  const buf = Buffer.from([0, 1, 2, 255]);
  a.io.emit("small", "hello");
  a.io.emit("big", big);
  a.io.emit("buffer", buf);
  while (got.length < 3) await new Promise((r) => setTimeout(r, 50));

  const byEvent = Object.fromEntries(got);
  if (byEvent.small !== "hello") throw new Error(`small: ${JSON.stringify(byEvent.small)}`);
  if (byEvent.big !== big) throw new Error("big: content differs");
  if (!Buffer.from(byEvent.buffer).equals(buf)) throw new Error("buffer: content differs");
  client.disconnect();
  for (const s of [a, b]) await new Promise((r) => s.io.close(r));
  await pool.end();
  clearTimeout(deadline);
  console.log("broadcast: small, 20 KB and Buffer messages arrived through PostgreSQL");
}

main().catch((err) => {
  console.error(`broadcast: ${err.stack || err}`);
  process.exit(1);
});
