'use strict';
// The separate PostgreSQL cluster of a test (startPostgres()), stopped and started again without removing it
// (pg-tmp.sh `stop` deletes it): for tests of outages.

const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const { promisify } = require('util');

function pgBindir() {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  if (fs.existsSync('/usr/lib/postgresql/15/bin/pg_ctl')) return '/usr/lib/postgresql/15/bin';
  const versions = fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql') : [];
  const found = versions.sort((a, b) => Number(b) - Number(a)).map((v) => `/usr/lib/postgresql/${v}/bin`)
    .find((d) => fs.existsSync(`${d}/pg_ctl`));
  if (!found) throw new Error('pg_ctl not found (install postgresql-15 or set PG_BINDIR)');
  return found;
}
const AS = process.getuid && process.getuid() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
// An ASan run preloads libasan: PostgreSQL must not inherit it.
const PG_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !['LD_PRELOAD', 'ASAN_OPTIONS', 'LSAN_OPTIONS'].includes(k)),
);
async function pgCtl(pg, args) {
  const [file, ...rest] = [...AS, path.join(pgBindir(), 'pg_ctl'), '-D', `${pg.dir}/data`, ...args];
  await promisify(execFile)(file, rest, { env: PG_ENV });
}
const pgStop = (pg) => pgCtl(pg, ['-m', 'fast', '-w', 'stop']);
const pgStart = (pg, { maxConnections = 300 } = {}) =>
  pgCtl(pg, ['-l', `${pg.dir}/server.log`, '-w', '-t', '30', '-o',
    `-p ${pg.port} -k ${pg.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off ` +
    `-c full_page_writes=off -c max_connections=${maxConnections}`, 'start']);

module.exports = { pgStop, pgStart, pgBindir };
