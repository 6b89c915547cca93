'use strict';
// JS wrapper around pg-tmp.sh: a throwaway PostgreSQL cluster for tests, the demo and the bench.
//
//   const pg = startPostgres();      // { url, port, dir, env, stop(), restart() }
//   ...
//   pg.stop();

const { execFileSync } = require('child_process');
const path = require('path');

const SCRIPT = path.join(__dirname, 'pg-tmp.sh');

function run(args) {
  try {
    return execFileSync('bash', [SCRIPT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = err.stderr ? String(err.stderr).trim() : '';
    throw new Error(`pg-tmp.sh ${args.join(' ')} failed${stderr ? `:\n${stderr}` : ''}`);
  }
}

// Parses the `export NAME=value` lines printed by pg-tmp.sh.
function parseExports(text) {
  const env = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  if (!env.DATABASE_URL || !env.PGTMP_DIR) throw new Error(`unexpected pg-tmp.sh output:\n${text}`);
  return env;
}

function startPostgres() {
  const env = parseExports(run(['start']));
  let stopped = false;
  return {
    url: env.DATABASE_URL,
    port: Number(env.PGPORT),
    dir: env.PGTMP_DIR,
    env, // PGTMP_DIR, PGHOST, PGPORT, PGUSER, PGDATABASE, DATABASE_URL
    stop() {
      if (stopped) return;
      stopped = true;
      run(['stop', env.PGTMP_DIR]);
    },
    // Fast stop then start again on the same port and data (existing connections are dropped).
    restart() {
      run(['restart', env.PGTMP_DIR]);
    },
  };
}

module.exports = { startPostgres, parseExports, SCRIPT };
