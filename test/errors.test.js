'use strict';
// Errors as one table: the list in binding/core/error_codes.h is the only definition of the codes; the addon
// exports it, index.d.ts and the README's errors table say the same, every code used in binding/ and lib/ is in
// it, and what reaches errorHandler is a PostgresAdapterError with one of its codes.

const fs = require('fs');
const path = require('path');
const { Emitter, PostgresAdapterError, errorCodes } = require('../lib');
const { waitFor } = require('./helpers/cluster');
const { openNativeClient } = require('../lib/client');
const { paramsProvider } = require('../lib/connection');
const { resolveOptions } = require('../lib/options');

const ROOT = path.join(__dirname, '..');
const read = (rel) => fs.readFileSync(path.join(ROOT, rel), 'utf8');

// [code, meaning] in the order of the header.
function headerList() {
  const text = read('binding/core/error_codes.h');
  return [...text.matchAll(/^\s*X\((\w+), "((?:[^"\\]|\\.)*)"\)/gm)].map((m) => [m[1], m[2]]);
}

// Backticks are markup in the README and in nothing else.
const plain = (s) => s.replace(/`/g, '').trim();

function filesUnder(rel, exts) {
  const out = [];
  for (const entry of fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
    const child = path.join(rel, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(child, exts));
    else if (exts.some((e) => entry.name.endsWith(e))) out.push(child);
  }
  return out;
}

describe('the list of error codes', () => {
  const list = headerList();

  test('is not empty and has each code once', () => {
    expect(list.length).toBeGreaterThan(10);
    expect(new Set(list.map(([c]) => c)).size).toBe(list.length);
  });

  test('the addon exports it as a frozen object, code -> meaning', () => {
    expect(Object.entries(errorCodes)).toEqual(list);
    expect(Object.isFrozen(errorCodes)).toBe(true);
  });

  test('index.d.ts declares exactly these codes, each with its meaning', () => {
    const dts = read('lib/index.d.ts');
    // the lines `  | "CODE" // meaning` after `export type PostgresAdapterErrorCode =`
    const union = /export type PostgresAdapterErrorCode =\n((?:\s*\|[^\n]*\n)+)/.exec(dts);
    expect(union).not.toBeNull();
    const declared = [...union[1].matchAll(/\|\s*"(\w+)";?\s*\/\/\s*([^\n]*)/g)].map((m) => [m[1], m[2].trim()]);
    expect(declared).toEqual(list);
  });

  test("the README's errors table lists exactly these codes, each with its meaning", () => {
    const readme = read('README.md');
    const section = /\n### Errors\n([\s\S]*?)\n#/.exec(readme);
    expect(section).not.toBeNull();
    const rows = [...section[1].matchAll(/^\| `(\w+)` \| (.*) \|$/gm)].map((m) => [m[1], plain(m[2])]);
    expect(rows).toEqual(list.map(([c, m]) => [c, plain(m)]));
  });

  // PostgreSQL's names our code spells in upper case (an encoding), not error codes of ours.
  const POSTGRES_NAMES = new Set(['SQL_ASCII']);

  test('every code used in binding/ and lib/ is in it', () => {
    const known = new Set(list.map(([c]) => c));
    const used = new Map(); // code -> first file using it
    const files = [...filesUnder('binding', ['.cc', '.h']), ...filesUnder('lib', ['.js', '.ts'])];
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      if (file === path.join('binding', 'core', 'error_codes.h')) continue;
      const text = read(file);
      const found = [
        // string literals that look like codes ("SOME_CODE", 'RECONNECTED'); 5 letters or more; not the name of an
        // environment variable read with getenv(), nor one of PostgreSQL's own names
        ...[...text.matchAll(/(?<!getenv\()["'`]([A-Z][A-Z0-9]{1,}(?:_[A-Z0-9]+)*)["'`]/g)].map((m) => m[1])
          .filter((c) => c.length >= 5 && !POSTGRES_NAMES.has(c)),
        // the shared definitions: codes::X in C++, codes.X in JS
        ...[...text.matchAll(/\bcodes(?:::|\.)([A-Z][A-Z0-9_]*)\b/g)].map((m) => m[1]),
      ];
      for (const code of found) if (!used.has(code)) used.set(code, file);
    }
    const unknown = [...used].filter(([code]) => !known.has(code)).map(([code, file]) => `${code} (${file})`);
    expect(unknown).toEqual([]);
    expect(used.size).toBeGreaterThan(10); // the scan does find the codes in use
  });
});

describe('PostgresAdapterError', () => {
  test('is an Error with a code, exported', () => {
    const err = new PostgresAdapterError('boom', 'PUBLISH_FAILED');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('PostgresAdapterError');
    expect(err.code).toBe('PUBLISH_FAILED');
    expect(String(err)).toBe('PostgresAdapterError: boom');
  });

  test('what reaches errorHandler is one, from the core and from JavaScript', async () => {
    const errors = [];
    // Nothing listens on port 1: the core reports the failed connection.
    const emitter = new Emitter({ host: '127.0.0.1', port: 1, user: 'nobody', database: 'nothing' }, '/', {
      errorHandler: (err) => errors.push(err),
      reconnectInitialDelay: 50,
      reconnectMaxDelay: 100,
      maxPublishQueue: 1,
      closeTimeout: 0,
    });
    try {
      await waitFor(() => errors.some((e) => e.code === 'CONNECTION_LOST'), 10000, 'CONNECTION_LOST');
      // A message that cannot be encoded is reported from JavaScript.
      try {
        emitter.emit('big', 10n);
      } catch (_) {
        // reported as well
      }
      await waitFor(() => errors.some((e) => e.code === 'ENCODE_FAILED'), 5000, 'ENCODE_FAILED');
    } finally {
      await emitter.close();
    }
    expect(errors.length).toBeGreaterThan(1);
    for (const err of errors) {
      expect(err).toBeInstanceOf(PostgresAdapterError);
      expect(Object.keys(errorCodes)).toContain(err.code);
    }
  });

  test('what the addon rejects with a code is one too', async () => {
    const reported = [];
    const native = openNativeClient(paramsProvider(process.env.DATABASE_URL), resolveOptions({}), {
      listen: false,
      report: (err) => reported.push(err),
    });
    await native.close(1000);
    // A closed client drops the publish: the promise rejects with PUBLISH_DROPPED.
    const meta = { nsp: '/', rooms: [], except: [], packetData: ['ev'] };
    const err = await native.publishLogged('errors_test#/', { type: 3, data: {} }, meta).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(PostgresAdapterError);
    expect(err.code).toBe('PUBLISH_DROPPED');
    for (const e of reported) expect(e).toBeInstanceOf(PostgresAdapterError);
  });
});
