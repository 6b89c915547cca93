"use strict";
// Three Socket.IO servers (separate processes) in one cluster over PostgreSQL, with a client on
// each. Shows a broadcast and acknowledgements crossing servers.
//
//   npm run demo                         # starts a private throwaway PostgreSQL
//   DATABASE_URL=postgres://... npm run demo
const { fork } = require("child_process");
const http = require("http");

if (process.argv[2] === "server") runServer();
else main().catch((err) => {
  console.error(err);
  process.exit(1);
});

function runServer() {
  const { Server } = require("socket.io");
  const { createAdapter } = require("..");
  const name = process.env.SERVER_NAME;
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(process.env.DATABASE_URL, {
      createTable: true,
      heartbeatInterval: 1000,
      errorHandler: (err) => console.error(`[${name}] adapter error: ${err.message}`),
    }),
  });
  // Another server asks over serverSideEmit; we answer with our client count.
  io.on("count", (cb) => cb({ server: name, clients: io.of("/").sockets.size }));

  process.on("message", (msg) => handle(msg).catch((err) => process.send({ error: err.message })));
  async function handle(msg) {
    if (msg.cmd === "broadcast") {
      io.emit("news", `hello from ${name}`);
    } else if (msg.cmd === "ask-clients") {
      const answers = await io.timeout(3000).emitWithAck("whoami");
      process.send({ answers });
    } else if (msg.cmd === "ask-servers") {
      const answers = await io.serverSideEmitWithAck("count"); // times out after requestsTimeout
      process.send({ answers });
    } else if (msg.cmd === "servers") {
      process.send({ servers: await io.of("/").adapter.serverCount() });
    } else if (msg.cmd === "stop") {
      io.close(() => process.exit(0));
    }
  }
  httpServer.listen(0, "127.0.0.1", () => process.send({ port: httpServer.address().port }));
}

function request(child, cmd) {
  return new Promise((resolve, reject) => {
    child.once("message", (m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
    child.send({ cmd });
  });
}

async function main() {
  const { io: connect } = require("socket.io-client");
  // Never hang: a demo that cannot finish in a minute says so and exits.
  setTimeout(() => {
    console.error("demo: timed out");
    process.exit(1);
  }, 60000).unref();
  let pg = null;
  let url = process.env.DATABASE_URL;
  if (!url) {
    const { startPostgres } = require("../test/helpers/pg-tmp");
    pg = startPostgres();
    url = pg.url;
    console.log(`Started a throwaway PostgreSQL at ${url}`);
  } else {
    console.log(`Using DATABASE_URL=${url}`);
  }

  const names = ["A", "B", "C"];
  const servers = names.map((name) =>
    fork(__filename, ["server"], { env: { ...process.env, DATABASE_URL: url, SERVER_NAME: name } }),
  );
  try {
    const ports = await Promise.all(servers.map((s) => new Promise((r) => s.once("message", (m) => r(m.port)))));
    names.forEach((n, i) => console.log(`server ${n} listening on 127.0.0.1:${ports[i]}`));

    // Wait until every server sees the two others (heartbeats).
    for (let i = 0; i < 100; i++) {
      const counts = await Promise.all(servers.map((s) => request(s, "servers")));
      if (counts.every((c) => c.servers === 3)) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const clients = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect(`http://127.0.0.1:${ports[i]}`, { transports: ["websocket"], forceNew: true });
      // The servers ask their clients "whoami" (an acknowledgement crossing servers).
      socket.on("whoami", (cb) => cb(`client of ${names[i]}`));
      await new Promise((r) => socket.once("connect", r));
      clients.push(socket);
    }

    const received = clients.map((socket, i) => new Promise((resolve) => {
      socket.once("news", (text) => {
        console.log(`client of server ${names[i]} received "news": ${text}`);
        resolve();
      });
    }));
    console.log("\nserver A broadcasts io.emit('news') ...");
    servers[0].send({ cmd: "broadcast" });
    await Promise.all(received);

    console.log("\nserver B asks every client in the cluster (emitWithAck) ...");
    const fromClients = await request(servers[1], "ask-clients");
    console.log(`server B got acks from: ${fromClients.answers.sort().join(", ")}`);

    console.log("\nserver C asks the other servers (serverSideEmitWithAck) ...");
    const fromServers = await request(servers[2], "ask-servers");
    for (const a of fromServers.answers) console.log(`  server ${a.server} answered: ${a.clients} client(s)`);

    clients.forEach((c) => c.disconnect());
    console.log("\nDemo complete: broadcast and acks crossed all three servers.");
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => {
      s.once("exit", r);
      s.send({ cmd: "stop" });
    })));
    if (pg) pg.stop();
  }
}
