// Publishing: a message published while nothing is in flight leaves at once; what follows in the same turn of the
// event loop leaves together behind it (one statement, one transaction),
// several statements may be in flight on the publishing connection (libpq pipeline mode), and without pipeline
// mode (libpq 13) it runs one statement at a time. What a user sees: the debug log ("published N messages ... in
// one statement"), the notifications, and the errorHandler.
const path = require('path');
const util = require('util');
const { execFile, spawn } = require('child_process');
const debugLib = require('debug');
const { listenRaw, waitFor, withTimeout } = require('./helpers/cluster');
const { reportedCount } = require('./helpers/reports');
const { openNativeClient } = require('../lib/client');
const { resolveOptions } = require('../lib/options');
const { paramsProvider } = require('../lib/connection');

const lines = [];
debugLib.enable('socket.io-postgres-native');
debugLib.log = (...args) => lines.push(util.format(...args));

const message = (data) => ({ type: 9, uid: 'pipeline-test', nsp: '/', data });
const statements = () => lines.map((l) => /published (\d+) messages? \(.*\) in one statement/.exec(l))
  .filter(Boolean).map((m) => Number(m[1]));
const turn = () => new Promise((resolve) => setImmediate(resolve));
const failedCount = (errs) => errs.filter((e) => e.code === 'PUBLISH_FAILED')
  .reduce((n, e) => n + Number((/failed to publish (\d+) message/.exec(e.message) || [0, 0])[1]), 0);

describe('publishing connection', () => {
  const channel = `pipeline_${process.pid}`;
  let listener;
  const got = [];
  const opened = [];

  const open = (appName, errors) => {
    const native = openNativeClient(
      paramsProvider({ connectionString: process.env.DATABASE_URL, application_name: appName }),
      resolveOptions({}), { listen: false, report: (err) => errors.push(err) });
    opened.push(native);
    return native;
  };
  // Until the connection is up and its setup has run: one message through.
  const warm = async (native, tag) => {
    native.publish(channel, message(tag));
    await waitFor(() => got.includes(tag), 10000, `the warm-up message ${tag}`);
  };

  beforeAll(async () => {
    listener = await listenRaw(channel, got, (payload) => JSON.parse(payload).data);
  });
  afterAll(async () => {
    for (const native of opened) await native.close(1000);
    if (listener) await listener.end();
  });
  beforeEach(() => {
    got.length = 0;
    lines.length = 0;
  });

  test('a burst of 20 synchronous publishes goes out as two statements (the first at once, 19 together), also from a timer', async () => {
    const errors = [];
    const native = open(`pipeline_burst_${process.pid}`, errors);
    await warm(native, 'warm');
    lines.length = 0;
    for (let i = 0; i < 20; i++) native.publish(channel, message(i));
    await waitFor(() => got.includes(19), 10000, () => `the burst (got ${JSON.stringify(got)})`);
    expect(statements()).toEqual([1, 19]);

    lines.length = 0;
    setTimeout(() => {
      for (let i = 20; i < 40; i++) native.publish(channel, message(i));
    }, 1);
    await waitFor(() => got.includes(39), 10000, () => `the burst from a timer (got ${JSON.stringify(got)})`);
    expect(statements()).toEqual([1, 19]);
    expect(got).toEqual(['warm', ...Array(40).keys()]);
    expect(errors).toEqual([]);
  });

  test('a message published while nothing is in flight leaves at once: emit() then process.exit() still publishes it', async () => {
    // (A SIGTERM handler doing io.emit('bye'); process.exit(0).) The child's emitter is connected and idle (its
    // warm-up arrived, and its statement's result too: the notification can come first) when it is told to emit
    // and exit in the same turn.
    const exitChannel = `${channel}_exit`;
    const seen = [];
    const onNote = (n) => {
      if (n.channel === exitChannel) seen.push(JSON.parse(n.payload).data);
    };
    listener.on('notification', onNote);
    await listener.query(`LISTEN "${exitChannel}"`);
    const lib = (name) => JSON.stringify(path.join(__dirname, '..', 'lib', name));
    const script = `
      const { openNativeClient } = require(${lib('client')});
      const { resolveOptions } = require(${lib('options')});
      const { paramsProvider } = require(${lib('connection')});
      const message = (data) => ({ type: 9, uid: 'pipeline-test', nsp: '/', data });
      const native = openNativeClient(paramsProvider(process.env.DATABASE_URL), resolveOptions({}),
        { listen: false, report: () => {} });
      native.publish('${exitChannel}', message('warm'));
      const idle = setInterval(() => {
        const { depth, inFlight } = native.stats().queue;
        if (depth === 0 && inFlight === 0) {
          clearInterval(idle);
          process.send('idle');
        }
      }, 5);
      process.on('message', () => {
        native.publish('${exitChannel}', message('last words'));
        process.exit(0);
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const idle = new Promise((resolve) => child.once('message', resolve));
    try {
      await waitFor(() => seen.includes('warm'), 10000, 'the warm-up message');
      await withTimeout(idle, 10000, "the child's publishing connection to be idle");
      child.send('go');
      expect(await exited).toBe(0);
      await waitFor(() => seen.includes('last words'), 5000, () => `the last message (got ${JSON.stringify(seen)})`);
    } finally {
      child.kill('SIGKILL');
      listener.off('notification', onNote);
    }
  });

  test('pipeline mode by default (libpq 14+)', async () => {
    const native = open(`pipeline_mode_${process.pid}`, []);
    await warm(native, 'warm-mode');
    expect(lines.filter((l) => /publishing connection: pipeline mode/.test(l))).toHaveLength(1);
  });

  test('a flood with a refused statement in the middle: every good message once, only the refused one\'s neighbours out of order', async () => {
    const errors = [];
    const native = open(`pipeline_flood_${process.pid}`, errors);
    await warm(native, 'warm-flood');
    got.length = 0;
    const BAD = 5055;
    let n = 0;
    for (let burst = 0; burst < 20; burst++) {
      for (let i = 0; i < 500; i++, n++) {
        // PostgreSQL refuses an empty channel name: the whole statement it is in fails.
        if (n === BAD) expect(native.publish('', message(n))).toBeUndefined();
        else native.publish(channel, message(n));
      }
      await turn();
    }
    native.publish(channel, message('end'));
    const expected = [...Array(n).keys()].filter((i) => i !== BAD);
    await waitFor(() => got.length >= expected.length + 1, 15000, () => `the flood (got ${got.length})`);
    await waitFor(() => errors.length > 0, 5000, 'the report of the refused message');
    const numbers = got.filter((x) => x !== 'end');
    expect([...numbers].sort((a, b) => a - b)).toEqual(expected);
    // Out of order: a message that arrives after a later one. Those are the retried neighbours of the
    // refused message: with it, they form one run of consecutive numbers.
    let max = -1;
    const late = [];
    for (const x of numbers) {
      if (x < max) late.push(x);
      max = Math.max(max, x);
    }
    const run = [...late, BAD].sort((a, b) => a - b);
    expect(run).toEqual([...Array(run.length).keys()].map((k) => run[0] + k));
    expect(errors.map((e) => e.code)).toEqual(['PUBLISH_FAILED']);
    expect(errors[0].message).toContain('channel ""');
  });

  test('the publishing backend killed with statements in flight: each reported once, none resent, one outage', async () => {
    const errors = [];
    const app = `pipeline_kill_${process.pid}`;
    const native = open(app, errors);
    await warm(native, 'warm-kill');
    got.length = 0;
    let n = 0;
    let kill;
    for (let burst = 0; burst < 60; burst++) {
      for (let i = 0; i < 20; i++) native.publish(channel, message(n++));
      if (burst === 30) {
        kill = listener.query(
          'SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE application_name = $1', [app]);
      }
      await turn();
    }
    await kill;
    // After the outage: this one is not in a statement the kill could cut.
    await waitFor(() => reportedCount(errors, 'RECONNECTED') === 1, 10000, 'RECONNECTED');
    native.publish(channel, message('end'));
    await waitFor(() => got.includes('end'), 15000, () => `the last message (got ${got.length})`);
    const numbers = got.filter((x) => x !== 'end');
    // In order, never twice, and every missing one reported.
    expect(numbers).toEqual([...new Set(numbers)].sort((a, b) => a - b));
    expect(numbers.length + failedCount(errors)).toBe(n);
    expect(reportedCount(errors, 'CONNECTION_LOST')).toBe(1);
    expect(errors.filter((e) => !['PUBLISH_FAILED', 'CONNECTION_LOST', 'RECONNECTED'].includes(e.code))).toEqual([]);
  });

  test('without pipeline mode (as with libpq 13): one statement at a time, same results', async () => {
    // The switch is read from the real environment, which a Jest test cannot set: a child process.
    const lib = (name) => JSON.stringify(path.join(__dirname, '..', 'lib', name));
    const script = `
      const { Client } = require('pg');
      const { openNativeClient } = require(${lib('client')});
      const { resolveOptions } = require(${lib('options')});
      const { paramsProvider } = require(${lib('connection')});
      const message = (data) => ({ type: 9, uid: 'pipeline-test', nsp: '/', data });
      const turn = () => new Promise((resolve) => setImmediate(resolve));
      (async () => {
        const got = [];
        const errors = [];
        const listener = new Client({ connectionString: process.env.DATABASE_URL });
        await listener.connect();
        listener.on('notification', (n) => got.push(JSON.parse(n.payload).data));
        await listener.query('LISTEN "${channel}_off"');
        const native = openNativeClient(paramsProvider(process.env.DATABASE_URL), resolveOptions({}),
          { listen: false, report: (err) => errors.push(err.code) });
        const until = async (what) => { while (!what()) await new Promise((r) => setTimeout(r, 10)); };
        native.publish('${channel}_off', message('warm'));
        await until(() => got.includes('warm'));
        got.length = 0;
        for (let i = 0; i < 20; i++) native.publish('${channel}_off', message(i));
        await until(() => got.includes(19));
        got.push('burst');
        let n = 0;
        for (let burst = 0; burst < 20; burst++) {
          for (let i = 0; i < 25; i++, n++) native.publish(n === 255 ? '' : '${channel}_off', message(n));
          await turn();
        }
        native.publish('${channel}_off', message('end'));
        await until(() => got.includes('end'));
        await native.close(1000);
        await listener.end();
        console.log(JSON.stringify({ got, errors }));
      })();`;
    const { stdout, stderr } = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script], {
        timeout: 30000,
        env: { ...process.env, PGADAPTER_NO_PIPELINE: '1', DEBUG: 'socket.io-postgres-native', DEBUG_COLORS: '0' },
      }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve({ stdout: out, stderr: errOut })));
    });
    expect(stderr).toMatch(/publishing connection: one statement at a time/);
    expect(stderr).not.toMatch(/connection: pipeline mode/);
    const { got: seen, errors } = JSON.parse(stdout);
    const burst = seen.indexOf('burst');
    expect(seen.slice(0, burst)).toEqual([...Array(20).keys()]);
    expect(stderr).toMatch(/published 19 messages \(.*\) in one statement/);
    // One statement at a time: a refused one's halves go out before anything else, so order holds.
    expect(seen.slice(burst + 1)).toEqual([...[...Array(500).keys()].filter((i) => i !== 255), 'end']);
    expect(errors).toEqual(['PUBLISH_FAILED']);
  });
});
