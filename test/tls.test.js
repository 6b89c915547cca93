'use strict';
// TLS as pg does it, against a separate throwaway PostgreSQL with ssl=on and a self-signed certificate made here
// with openssl: `ssl: true`, `{}` and `{ rejectUnauthorized: true }` verify the server (and refuse this one),
// `{ ca }` accepts it, `{ rejectUnauthorized: false }` encrypts without checking. And the key material given as
// ca/cert/key goes to private files (never to a predictable path), removed on close and at process exit.

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { execFileSync, spawn } = require('child_process');
const { Client } = require('pg');
const { Server } = require('socket.io');
const { io: ioClient } = require('socket.io-client');
const { startPostgres } = require('./helpers/pg-tmp');
const { waitFor, waitForClusterReady } = require('./helpers/cluster');
const { createAdapter, Emitter } = require('../lib');

jest.setTimeout(60000);

const PREFIX = `tls_${process.pid}`;
// Our sessions: the publishing one keeps the plain name, the listening one carries the quiet-idle presence
// name (socket.io-postgres-native:<cluster>:<uid>).
const APP_NAME = 'socket.io-postgres-native%';
const FAST = { reconnectInitialDelay: 50, reconnectMaxDelay: 200, connectTimeout: 5000 };
const describeErrors = (errs) => errs.map((e) => `${e.code}: ${e.message}`).join('\n  ') || '(none)';

let pg; // the TLS cluster
let tls; // { ca, cert, key } PEM text: the server's self-signed certificate and key
let base; // connection config without ssl
let raw; // a pg client on the TLS cluster (no verification), to look at pg_stat_ssl

// A self-signed certificate for 127.0.0.1 and localhost, readable by the server only.
function makeCertificate(dir, owner) {
  fs.mkdirSync(dir, { mode: 0o700 });
  const key = path.join(dir, 'server.key');
  const crt = path.join(dir, 'server.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  for (const f of [dir, key, crt]) fs.chownSync(f, owner.uid, owner.gid);
  fs.chmodSync(key, 0o600);
  return { key, crt };
}

beforeAll(async () => {
  pg = startPostgres();
  const owner = fs.statSync(path.join(pg.dir, 'data'));
  const files = makeCertificate(path.join(pg.dir, 'tls'), owner);
  const pem = fs.readFileSync(files.crt, 'utf8');
  tls = { ca: pem, cert: pem, key: fs.readFileSync(files.key, 'utf8') };
  base = { host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'postgres' };
  const admin = new Client(base);
  await admin.connect();
  try {
    await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${files.crt}'`);
    await admin.query(`ALTER SYSTEM SET ssl_key_file = '${files.key}'`);
    await admin.query('ALTER SYSTEM SET ssl = on');
    await admin.query('SELECT pg_catalog.pg_reload_conf()');
  } finally {
    await admin.end();
  }
  await waitFor(async () => {
    const c = new Client({ ...base, ssl: { rejectUnauthorized: false } });
    try {
      await c.connect();
      return true;
    } finally {
      await c.end().catch(() => {});
    }
  }, 10000, 'the server to accept TLS');
  raw = new Client({ ...base, ssl: { ca: tls.ca } });
  await raw.connect();
});

afterAll(async () => {
  if (raw) await raw.end().catch(() => {});
  if (pg) pg.stop();
});

// Socket.IO servers on the TLS cluster, with a client each; closed by the returned close().
async function startServers(count, source, opts = {}) {
  const servers = [];
  const channelPrefix = `${PREFIX}_${Math.random().toString(36).slice(2, 8)}`;
  for (let i = 0; i < count; i++) {
    const errors = [];
    const httpServer = http.createServer();
    const io = new Server(httpServer, {
      adapter: createAdapter(source, { channelPrefix, heartbeatInterval: 200, ...FAST, errorHandler: (e) => errors.push(e), ...opts }),
    });
    await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const client = ioClient(`http://127.0.0.1:${httpServer.address().port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    client.received = [];
    client.onAny((ev, ...args) => client.received.push([ev, ...args]));
    await new Promise((resolve, reject) => {
      client.once('connect', resolve);
      client.once('connect_error', reject);
    });
    servers.push({ io, client, errors });
  }
  const close = async () => {
    for (const s of servers) {
      s.client.close();
      await new Promise((resolve) => s.io.close(resolve));
    }
  };
  return { servers, channelPrefix, close };
}

const got = (client, ev) => client.received.filter((e) => e[0] === ev).map((e) => e[1]);

// A just-started server may not LISTEN yet when its client is connected: `emit` is repeated (every 200 ms)
// until `client` has received `ev` at least once.
async function emitUntilReceived(emit, client, ev, describe) {
  let last = 0;
  await waitFor(() => {
    if (got(client, ev).length > 0) return true;
    if (Date.now() - last >= 200) {
      last = Date.now();
      emit();
    }
    return false;
  }, 10000, describe);
}

// An emitter on `source` is refused (a certificate error, reported as CONNECTION_LOST) and nothing it emits is
// delivered, while a verified one's message is.
async function expectRefused(source) {
  const { servers, channelPrefix, close } = await startServers(1, { ...base, ssl: { ca: tls.ca } });
  try {
    const errors = [];
    const refused = new Emitter(source, '/', { channelPrefix, ...FAST, closeTimeout: 100, errorHandler: (e) => errors.push(e) });
    try {
      await waitFor(() => errors.some((e) => e.code === 'CONNECTION_LOST'), 10000, () => `a refused connection (errors: ${describeErrors(errors)})`);
      expect(errors.find((e) => e.code === 'CONNECTION_LOST').message).toMatch(/certificate/i);
      refused.emit('refused', 1);
    } finally {
      await refused.close();
    }
    // Sent after the refused one was given up: once it arrives, the refused one would have too.
    const good = new Emitter({ ...base, ssl: { ca: tls.ca } }, '/', { channelPrefix, ...FAST });
    try {
      await emitUntilReceived(() => good.emit('accepted', 2), servers[0].client, 'accepted', 'the message of the verified emitter');
    } finally {
      await good.close();
    }
  } finally {
    await close();
  }
  expect(got(servers[0].client, 'refused')).toEqual([]);
}

describe('TLS like pg', () => {
  test.each([
    ['ssl: true', true],
    ['ssl: {}', {}],
    ['ssl: { rejectUnauthorized: true }', { rejectUnauthorized: true }],
  ])('%s verifies the server: a self-signed certificate is refused, reported, and nothing is delivered', async (_, ssl) => {
    await expectRefused({ ...base, ssl });
  });

  test('{ ca } verifies and accepts it: a broadcast crosses two servers over TLS', async () => {
    const { servers, close } = await startServers(2, { ...base, ssl: { ca: tls.ca } });
    try {
      await waitForClusterReady(servers, { expected: 2 });
      servers[0].io.emit('hello', 'over tls');
      await waitFor(() => got(servers[1].client, 'hello').length === 1, 10000, 'the broadcast on the other server');
      const { rows } = await raw.query(
        'SELECT s.ssl FROM pg_catalog.pg_stat_ssl s JOIN pg_catalog.pg_stat_activity a ON a.pid = s.pid WHERE a.application_name LIKE $1',
        [APP_NAME],
      );
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(rows.every((r) => r.ssl === true)).toBe(true);
      expect(servers.flatMap((s) => s.errors.filter((e) => e.code === 'CONNECTION_LOST'))).toEqual([]);
    } finally {
      await close();
    }
  });

  test('{ rejectUnauthorized: false } encrypts without checking the certificate', async () => {
    const { servers, channelPrefix, close } = await startServers(1, { ...base, ssl: { ca: tls.ca } });
    const errors = [];
    const emitter = new Emitter({ ...base, ssl: { rejectUnauthorized: false } }, '/', { channelPrefix, ...FAST, errorHandler: (e) => errors.push(e) });
    try {
      await emitUntilReceived(() => emitter.emit('unchecked', 3), servers[0].client, 'unchecked', () => `the message (errors: ${describeErrors(errors)})`);
    } finally {
      await emitter.close();
      await close();
    }
    expect(errors).toEqual([]);
  });
});

// What pg itself does with `config` against the TLS cluster: 'refused: <its message>', or whether the session it
// opened is 'encrypted' or 'plain'.
async function pgOutcome(config) {
  const c = new Client(config);
  c.on('error', () => {});
  try {
    await c.connect();
    const { rows } = await c.query('SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()');
    return rows[0].ssl ? 'encrypted' : 'plain';
  } catch (err) {
    return `refused: ${err.message}`;
  } finally {
    await c.end().catch(() => {});
  }
}

// The TLS settings of a connection string URL mean what they mean to pg 8, and replace the config's `ssl`.
describe('TLS settings in a connection string, like pg', () => {
  let caDir; // holds ca.pem, the server's certificate, for sslrootcert
  let sessions = 0;
  beforeAll(() => {
    caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-url-'));
    fs.writeFileSync(path.join(caDir, 'ca.pem'), tls.ca);
  });
  afterAll(() => fs.rmSync(caDir, { recursive: true, force: true }));

  // A URL on the TLS cluster with `query` ("{ca}" stands for the path of ca.pem), its sessions named `name`.
  const url = (query, name) =>
    `postgres://postgres@127.0.0.1:${pg.port}/postgres?application_name=${name}&${query.replace('{ca}', encodeURIComponent(path.join(caDir, 'ca.pem')))}`;

  test.each([
    ['sslmode=require', false],
    ['ssl=true', false],
    ['ssl=1', false],
    ['sslmode=prefer', false],
    ['sslmode=verify-ca', false],
    ['sslmode=verify-full', false],
    ['sslmode=require with ssl: { ca } in the config (the URL replaces it)', true],
  ])('?%s verifies the server as pg does: the self-signed certificate is refused, reported, nothing delivered', async (query, withCa) => {
    const config = { connectionString: url(query.split(' ')[0], 'tls_url_refused') };
    if (withCa) config.ssl = { ca: tls.ca };
    expect(await pgOutcome(config)).toMatch(/^refused: self-signed certificate/);
    await expectRefused(config);
  });

  test.each([
    ['sslmode=no-verify', 'encrypted'],
    ['ssl=no-verify', 'encrypted'],
    ['sslmode=require&sslrootcert={ca}', 'encrypted'],
    ['sslmode=verify-ca&sslrootcert={ca}&uselibpqcompat=true', 'encrypted'],
    ['sslmode=require&uselibpqcompat=true', 'encrypted'],
    ['sslmode=disable', 'plain'],
    ['ssl=0', 'plain'],
  ])('?%s connects as pg does (%s)', async (query, expected) => {
    sessions += 1;
    const name = `tls_url_${sessions}`;
    expect(await pgOutcome({ connectionString: url(query, `${name}_pg`) })).toBe(expected);
    const { servers, channelPrefix, close } = await startServers(1, { ...base, ssl: { ca: tls.ca } });
    const errors = [];
    const emitter = new Emitter({ connectionString: url(query, name), ssl: { ca: tls.ca } }, '/', { channelPrefix, ...FAST, errorHandler: (e) => errors.push(e) });
    try {
      await emitUntilReceived(() => emitter.emit('sent', 5), servers[0].client, 'sent', () => `the message (errors: ${describeErrors(errors)})`);
      const { rows } = await raw.query(
        'SELECT s.ssl FROM pg_catalog.pg_stat_ssl s JOIN pg_catalog.pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = $1',
        [name],
      );
      expect(rows.map((r) => (r.ssl ? 'encrypted' : 'plain'))).toEqual([expected]);
    } finally {
      await emitter.close();
      await close();
    }
    expect(errors).toEqual([]);
  });

  // pg skips only the host name check there (checkServerIdentity); pg ignores hostaddr, so libpq alone is seen here.
  test('uselibpqcompat=true&sslmode=verify-ca checks the certificate but not the host name; plain verify-ca checks both', async () => {
    const misnamed = (query) =>
      `postgres://postgres@wrong-name.invalid:${pg.port}/postgres?hostaddr=127.0.0.1&sslrootcert=${encodeURIComponent(path.join(caDir, 'ca.pem'))}&${query}`;
    await expectRefused({ connectionString: misnamed('sslmode=verify-ca') });
    const { servers, channelPrefix, close } = await startServers(1, { ...base, ssl: { ca: tls.ca } });
    const errors = [];
    const emitter = new Emitter(misnamed('sslmode=verify-ca&uselibpqcompat=true'), '/', { channelPrefix, ...FAST, errorHandler: (e) => errors.push(e) });
    try {
      await emitUntilReceived(() => emitter.emit('sent', 6), servers[0].client, 'sent', () => `the message (errors: ${describeErrors(errors)})`);
    } finally {
      await emitter.close();
      await close();
    }
    expect(errors).toEqual([]);
  });

  test('an unreadable sslrootcert, or verify-ca without one under uselibpqcompat, is refused when created, as by pg', () => {
    for (const query of ['sslrootcert=%2Fnonexistent%2Fca.pem', 'sslmode=verify-ca&uselibpqcompat=true']) {
      const config = { connectionString: url(query, 'tls_url_bad') };
      let pgError;
      try {
        new Client(config);
      } catch (err) {
        pgError = err;
      }
      const why = query.startsWith('sslrootcert') ? /ENOENT/ : /sslrootcert/;
      expect(pgError && pgError.message).toMatch(why);
      expect(() => createAdapter(config)).toThrow(why);
    }
  });

  test('?ssl=false is refused when created (pg understands true, 1, 0 and no-verify, and fails on it in the handshake)', () => {
    expect(() => createAdapter({ connectionString: url('ssl=false', 'tls_url_bad') })).toThrow(/ssl must be true, 1, 0 or no-verify/);
  });

  test('sslmode in a key=value connection string is refused (pg reads no TLS settings there)', () => {
    expect(() => createAdapter(`host=127.0.0.1 port=${pg.port} sslmode=require`)).toThrow(/sslmode/);
    expect(() => new Emitter(`host = 127.0.0.1 sslmode = 'verify-full'`)).toThrow(/sslmode/);
    expect(() => createAdapter(`host=127.0.0.1 requiressl=1`)).toThrow(/requiressl/);
  });
});

// Runs `script` in a child process whose TMPDIR is `tmp` (os.tmpdir() reads the real environment, which a
// Jest test cannot change); `config` is its process.argv[1] as JSON. Resolves to { code, stdout, stderr, child }.
function runChild(script, tmp, config) {
  const child = spawn(process.execPath, ['-e', script, JSON.stringify(config)], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
  done.finally(() => clearTimeout(timer));
  return { child, done };
}

const LIB = JSON.stringify(path.join(__dirname, '..', 'lib'));

describe('TLS key material', () => {
  let tmp; // the child's TMPDIR
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-test-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('goes to a private directory: planted files and symlinks are not followed, files are 0600, removed on close', async () => {
    // What an attacker would plant at the old predictable names: symlinks to a victim file, and 0666 files.
    const victim = path.join(tmp, 'victim');
    fs.writeFileSync(victim, 'victim');
    fs.chmodSync(victim, 0o666);
    const { servers, channelPrefix, close } = await startServers(1, base); // receives without TLS
    // The child's pid is known only once it runs: it plants the files itself before creating its emitter.
    const script = `
      const fs = require('fs'), path = require('path');
      const { Emitter } = require(${LIB});
      const { config, channelPrefix, victim } = JSON.parse(process.argv[1]);
      const tmp = process.env.TMPDIR;
      for (let n = 1; n <= 30; n++) {
        for (const name of ['ca.pem', 'cert.pem', 'key.pem']) {
          const file = path.join(tmp, 'sio-pg-native-' + process.pid + '-' + n + '-' + name);
          if (n % 2) fs.symlinkSync(victim, file);
          else { fs.writeFileSync(file, 'planted'); fs.chmodSync(file, 0o666); }
        }
      }
      const before = new Set(fs.readdirSync(tmp));
      const errors = [];
      const emitter = new Emitter(config, '/', { channelPrefix, errorHandler: (e) => errors.push(e.code + ': ' + e.message) });
      const timer = setInterval(() => emitter.emit('with client certificate', 4), 200); // until the test has one
      emitter.emit('with client certificate', 4);
      process.stdin.once('data', async () => {
        clearInterval(timer);
        const created = fs.readdirSync(tmp).filter((f) => !before.has(f));
        const files = created.length === 1 ? fs.readdirSync(path.join(tmp, created[0])) : [];
        const during = {
          created,
          dirMode: created.length === 1 ? fs.statSync(path.join(tmp, created[0])).mode & 0o777 : null,
          files: files.map((f) => {
            const st = fs.lstatSync(path.join(tmp, created[0], f));
            return { isFile: st.isFile(), mode: st.mode & 0o777, contents: fs.readFileSync(path.join(tmp, created[0], f), 'utf8') };
          }),
        };
        await emitter.close();
        const after = fs.readdirSync(tmp).filter((f) => !before.has(f));
        const plantedFiles = [...before].filter((f) => f.startsWith('sio-pg-native-'))
          .map((f) => path.join(tmp, f)).filter((f) => fs.lstatSync(f).isFile()).map((f) => fs.readFileSync(f, 'utf8'));
        console.log(JSON.stringify({ during, after, plantedFiles, errors }));
      });
    `;
    const run = runChild(script, tmp, { config: { ...base, ssl: { ...tls } }, channelPrefix, victim });
    let result;
    try {
      await waitFor(() => got(servers[0].client, 'with client certificate').length > 0, 10000, 'the message of the emitter');
      run.child.stdin.end('go\n');
      result = await run.done;
    } finally {
      run.child.kill();
      await close();
    }
    expect(result.stderr).toBe('');
    const { during, after, plantedFiles, errors } = JSON.parse(result.stdout);
    expect(errors).toEqual([]);
    // While open: one new private directory holding the three files, 0600, with what was given.
    expect(during.created.length).toBe(1);
    expect(during.dirMode).toBe(0o700);
    expect(during.files.map((f) => f.contents).sort()).toEqual([tls.ca, tls.cert, tls.key].sort());
    for (const f of during.files) expect([f.isFile, f.mode]).toEqual([true, 0o600]);
    // Nothing planted was written through.
    expect(fs.readFileSync(victim, 'utf8')).toBe('victim');
    expect(plantedFiles.length).toBe(45);
    expect(plantedFiles.every((c) => c === 'planted')).toBe(true);
    // Closed: the directory is gone.
    expect(after).toEqual([]);
  });

  test('is removed at process exit when the emitter was never closed', async () => {
    const script = `
      const { Emitter } = require(${LIB});
      const config = JSON.parse(process.argv[1]);
      const emitter = new Emitter(config, '/', { channelPrefix: 'tls_exit', errorHandler: (e) => { console.error(e.message); process.exitCode = 1; } });
      emitter.emit('bye');
      setTimeout(() => {
        console.log(require('fs').readdirSync(process.env.TMPDIR).join(','));
        process.exit();
      }, 500);
    `;
    const { code, stdout, stderr } = await runChild(script, tmp, { ...base, ssl: { ca: tls.ca } }).done;
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout.trim()).toMatch(/^sio-pg-native-\w+$/); // the private directory existed while it ran
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
