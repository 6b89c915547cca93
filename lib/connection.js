"use strict";
// Turns what the user gives createAdapter() (a pg.Pool, a connection string, or a pg-style config
// object) into libpq connection parameters. The adapter opens its own connections with libpq and
// never takes a slot of the user's pool.
const fs = require("fs");
const os = require("os");
const path = require("path");
const tls = require("tls");
const { SecretFiles } = require("./secret-files");
const { connectionStringSecrets } = require("./errors");
const { connectionStringTls, HOST_UNCHECKED } = require("./connection-string-tls");

const KEEPALIVE = [
  // A dead peer is noticed in about 20 s even when nothing is sent.
  ["keepalives", "1"],
  ["keepalives_idle", "10"],
  ["keepalives_interval", "5"],
  ["keepalives_count", "2"],
  // Unacknowledged data for this long (ms) drops the connection.
  ["tcp_user_timeout", "20000"],
];

function configOf(source) {
  if (typeof source === "string") return { connectionString: source };
  if (source && typeof source === "object") {
    // pg.Pool keeps its config in .options; pg.Client in .connectionParameters.
    if (typeof source.query === "function" && source.options && typeof source.options === "object") {
      return source.options;
    }
    return source;
  }
  throw new TypeError(
    "createAdapter(pool): expected a pg.Pool, a connection string or a connection config object, got " +
      (source === null ? "null" : typeof source),
  );
}

function validateConfig(config) {
  for (const key of ["host", "user", "database", "connectionString", "application_name", "options"]) {
    if (config[key] !== undefined && config[key] !== null && typeof config[key] !== "string") {
      throw new TypeError(`connection option "${key}" must be a string`);
    }
  }
  if (config.port !== undefined && config.port !== null && !/^\d+$/.test(String(config.port))) {
    throw new TypeError('connection option "port" must be a port number');
  }
  const pw = config.password;
  if (pw !== undefined && pw !== null && typeof pw !== "string" && typeof pw !== "function") {
    throw new TypeError('connection option "password" must be a string or a function returning one');
  }
}

// What pg reads from PGSSLMODE when the config has no `ssl`.
function sslFromEnvironment() {
  switch (process.env.PGSSLMODE) {
    case "prefer":
    case "require":
    case "verify-ca":
    case "verify-full":
      return true;
    case "no-verify":
      return { rejectUnauthorized: false };
    default:
      return false;
  }
}

const pem = (v) => (Array.isArray(v) ? v.map(String).join("\n") : String(v));

// The CA certificates Node's tls (hence pg) trusts by default.
function nodeCertificates() {
  if (typeof tls.getCACertificates === "function") return tls.getCACertificates("default").join("\n");
  let pems = tls.rootCertificates.join("\n");
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (extra) {
    try {
      pems += `\n${fs.readFileSync(extra, "utf8")}`;
    } catch (_) {
      // Node ignores an unreadable NODE_EXTRA_CA_CERTS too (with a warning at startup)
    }
  }
  return pems;
}

// A root certificate path that cannot exist: libpq's sslmode=require then checks nothing, even when
// ~/.postgresql/root.crt exists (pg with rejectUnauthorized: false checks nothing either).
const NO_ROOT_CERT = path.join(os.devNull, "no-root-certificate");

// pg semantics: TLS when ssl is true or an object (or, without `ssl`, when PGSSLMODE asks for it), with the
// server's certificate verified against `ca` (else Node's CA store) and its host name checked
// (sslmode=verify-full), unless rejectUnauthorized is false (or only against `ca`, without the host name, when a
// connection string asks for libpq's verify-ca: see connection-string-tls.js). Returns the fixed libpq parameters and the
// files libpq must read ([keyword, file name, contents()]).
function sslPlan(config) {
  let ssl = config.ssl;
  const fromEnvironment = ssl === undefined;
  if (fromEnvironment) ssl = sslFromEnvironment();
  else if (ssl === "true") ssl = true;
  else if (ssl === "no-verify") ssl = { rejectUnauthorized: false };
  if (ssl === false || ssl === null) return { params: [["sslmode", "disable"]], files: [] };
  if (ssl === true) ssl = {};
  if (typeof ssl !== "object") throw new TypeError('connection option "ssl" must be a boolean or an object');
  const params = [];
  const files = [];
  if (ssl.rejectUnauthorized === false) {
    params.push(["sslmode", "require"], ["sslrootcert", NO_ROOT_CERT]);
  } else {
    params.push(["sslmode", ssl[HOST_UNCHECKED] ? "verify-ca" : "verify-full"]);
    if (ssl.ca !== undefined) files.push(["sslrootcert", "ca.pem", () => pem(ssl.ca)]);
    // PGSSLROOTCERT is libpq's own setting: with PGSSLMODE, libpq reads it itself.
    else if (!(fromEnvironment && process.env.PGSSLROOTCERT)) files.push(["sslrootcert", "node-ca.pem", nodeCertificates]);
  }
  if (ssl.cert !== undefined) files.push(["sslcert", "cert.pem", () => pem(ssl.cert)]);
  if (ssl.key !== undefined) files.push(["sslkey", "key.pem", () => pem(ssl.key)]);
  return { params, files };
}

// Returns getParams(done): called by the native client before every (re)connect, so a password
// function (e.g. a short-lived IAM token) is asked again each time. getParams.acquire() and
// getParams.release() bracket the life of a native client using it: the TLS files it needs are
// removed when the last one is released.
function paramsProvider(source) {
  const config = configOf(source);
  validateConfig(config);
  const fixed = [];
  // libpq expands only the first dbname entry that looks like a connection string: the connection
  // string is that one, or an empty entry comes first so that `database` stays a plain name (as in pg,
  // where "a=b" is a database name).
  if (!config.connectionString) fixed.push(["dbname", ""]);
  if (config.host) fixed.push(["host", config.host]);
  else if (!process.env.PGHOST && !config.connectionString) fixed.push(["host", "localhost"]); // as pg does
  if (config.port) fixed.push(["port", String(config.port)]);
  if (config.user) fixed.push(["user", config.user]);
  // With a connection string pg takes the database from it (or the defaults), never from `database`.
  if (config.database && !config.connectionString) fixed.push(["dbname", config.database]);
  if (config.options) fixed.push(["options", config.options]);
  fixed.push(["application_name", config.application_name || "socket.io-postgres-native"]);
  fixed.push(["client_encoding", "UTF8"]); // our payloads are UTF-8 whatever the database's encoding
  // pg reads the TLS settings of a connection string URL itself; libpq gets it without them.
  const fromString = config.connectionString ? connectionStringTls(config.connectionString) : null;
  const ssl = sslPlan(fromString && fromString.ssl !== undefined ? { ssl: fromString.ssl } : config);
  for (const kv of ssl.params) fixed.push(kv);
  for (const kv of KEEPALIVE) fixed.push(kv);
  const secretFiles = ssl.files.length ? new SecretFiles(ssl.files.map(([, name, contents]) => [name, contents])) : null;
  // Known passwords, removed from every message we report.
  const secrets = connectionStringSecrets(config.connectionString);
  if (typeof config.password === "string") secrets.push(config.password);
  let lastPassword; // the password function's latest answer

  function getParams(done) {
    Promise.resolve()
      .then(() => (typeof config.password === "function" ? config.password() : config.password))
      .then((password) => {
        const pairs = fixed.slice();
        if (secretFiles) {
          const paths = secretFiles.paths();
          for (const [keyword, name] of ssl.files) pairs.push([keyword, paths[name]]);
        }
        if (password !== undefined && password !== null) {
          lastPassword = String(password);
          pairs.push(["password", lastPassword]);
        }
        // Last, so that what the connection string says wins, as in pg.
        if (fromString) pairs.push(["dbname", fromString.libpq]);
        done(null, pairs.map((p) => p[0]), pairs.map((p) => p[1]));
      })
      .catch((err) => done(err instanceof Error ? err : new Error(String(err))));
  }
  getParams.acquire = () => secretFiles && secretFiles.acquire();
  getParams.release = () => secretFiles && secretFiles.release();
  getParams.secrets = () => (lastPassword === undefined ? secrets : [...secrets, lastPassword]);
  return getParams;
}

module.exports = { paramsProvider, connectTimeoutOf: (source) => configOf(source).connectionTimeoutMillis };
