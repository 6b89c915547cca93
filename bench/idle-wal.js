#!/usr/bin/env node
"use strict";
// WAL written by an idle cluster: 3 Socket.IO servers with no clients and no traffic, default options,
// over --seconds (60), measured with pg_current_wal_lsn() before and after, and the transaction commit
// records in that range counted with pg_waldump. Runs a baseline (no servers), the pure-JS adapter and this
// one in turn, on a private throwaway PostgreSQL (VACUUM ANALYZE and CHECKPOINT first, so that the database's
// own housekeeping stays out of the window).
//
//   node bench/idle-wal.js [--seconds=60] [--warmup=150] [--adapters=none,pure,native]
//
// A fresh PostgreSQL does housekeeping of its own (about 100 KB of WAL and a dozen commits) in its first
// two minutes: the warm-up (no servers, not reported) keeps that out of the measured windows.
const { execFileSync } = require("child_process");
const path = require("path");
const { Pool } = require("pg");
const { Server } = require("socket.io");
const { startPostgres } = require("../test/helpers/pg-tmp");
const { pgBindir } = require("../test/helpers/faults");

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const SECONDS = Number(opt("seconds", 60));
const WARMUP = Number(opt("warmup", 150));
const KINDS = opt("adapters", "none,pure,native").split(",");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const AS = process.getuid && process.getuid() === 0 ? ["runuser", "-u", "postgres", "--"] : [];

function createAdapter(kind, pool) {
  const impl = kind === "pure" ? require("@socket.io/postgres-adapter") : require("..");
  return impl.createAdapter(pool, { errorHandler: (err) => console.error(`${kind}: ${err.message}`) });
}

// Commit records between two LSNs (pg_waldump --stats: the Transaction resource manager's records).
function commitRecords(pg, start, end) {
  if (start === end) return 0;
  const [file, ...rest] = [...AS, path.join(pgBindir(), "pg_waldump"), "-p", `${pg.dir}/data/pg_wal`,
    "-s", start, "-e", end, "-r", "Transaction"];
  const out = execFileSync(file, rest, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return out.split("\n").filter((l) => /desc: COMMIT/.test(l)).length;
}

async function measure(pg, kind) {
  const pools = [];
  const servers = [];
  const admin = new Pool({ connectionString: pg.url, max: 1 });
  await admin.query("CREATE TABLE IF NOT EXISTS socket_io_attachments (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)");
  if (kind !== "none") {
    for (let i = 0; i < 3; i++) {
      const pool = new Pool({ connectionString: pg.url, max: 4 });
      pools.push(pool);
      servers.push(new Server({ adapter: createAdapter(kind, pool) }));
    }
  }
  // Nothing left for autovacuum or a checkpoint to do in the window (they would add WAL of their own).
  await admin.query("VACUUM ANALYZE");
  await admin.query("CHECKPOINT");
  await sleep(3000); // the cluster forms; the initial heartbeats are not counted
  const lsn = async () => (await admin.query("SELECT pg_catalog.pg_current_wal_lsn()::text AS l")).rows[0].l;
  const start = await lsn();
  await sleep(SECONDS * 1000);
  const end = await lsn();
  const bytes = Number((await admin.query("SELECT pg_catalog.pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint AS d", [end, start])).rows[0].d);
  for (const io of servers) await io.of("/").adapter.close();
  for (const pool of pools) await pool.end();
  await admin.end();
  return { kind, seconds: SECONDS, walBytes: bytes, commits: commitRecords(pg, start, end) };
}

async function main() {
  const pg = startPostgres();
  try {
    await sleep(WARMUP * 1000);
    for (const kind of KINDS) {
      const r = await measure(pg, kind);
      console.log(`${r.kind.padEnd(7)} ${r.seconds} s idle, 3 servers: ${r.walBytes} bytes of WAL, ${r.commits} commit records`);
    }
  } finally {
    pg.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
