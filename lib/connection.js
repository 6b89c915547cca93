"use strict";
// Turns what the user gives createAdapter() (a pg.Pool, a connection string, or a pg-style config
// object) into libpq connection parameters. The adapter opens its own connections with libpq and
// never takes a slot of the user's pool.
const fs = require("fs");
const os = require("os");
const path = require("path");

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

let tmpFiles = 0;
function writeSecretFile(contents, name) {
  const file = path.join(os.tmpdir(), `sio-pg-native-${process.pid}-${++tmpFiles}-${name}`);
  fs.writeFileSync(file, Array.isArray(contents) ? contents.join("\n") : String(contents), { mode: 0o600 });
  return file;
}

// pg semantics: ssl undefined follows PGSSLMODE; true or an object means TLS.
function sslParams(ssl, pairs) {
  if (ssl === undefined || ssl === null) {
    const mode = process.env.PGSSLMODE;
    if (!mode) pairs.push(["sslmode", "disable"]);
    else if (mode === "no-verify") pairs.push(["sslmode", "require"]);
    return; // else libpq reads PGSSLMODE itself
  }
  if (ssl === false) return pairs.push(["sslmode", "disable"]);
  if (ssl === true) return pairs.push(["sslmode", "require"]);
  if (typeof ssl !== "object") throw new TypeError('connection option "ssl" must be a boolean or an object');
  const verify = ssl.rejectUnauthorized !== false && ssl.ca !== undefined;
  pairs.push(["sslmode", verify ? "verify-full" : "require"]);
  if (ssl.ca !== undefined) pairs.push(["sslrootcert", writeSecretFile(ssl.ca, "ca.pem")]);
  if (ssl.cert !== undefined) pairs.push(["sslcert", writeSecretFile(ssl.cert, "cert.pem")]);
  if (ssl.key !== undefined) pairs.push(["sslkey", writeSecretFile(ssl.key, "key.pem")]);
}

// Returns getParams(done): called by the native client before every (re)connect, so a password
// function (e.g. a short-lived IAM token) is asked again each time.
function paramsProvider(source) {
  const config = configOf(source);
  validateConfig(config);
  const fixed = [];
  if (config.host) fixed.push(["host", config.host]);
  else if (!process.env.PGHOST && !config.connectionString) fixed.push(["host", "localhost"]); // as pg does
  if (config.port) fixed.push(["port", String(config.port)]);
  if (config.user) fixed.push(["user", config.user]);
  if (config.database) fixed.push(["dbname", config.database]);
  if (config.options) fixed.push(["options", config.options]);
  fixed.push(["application_name", config.application_name || "socket.io-postgres-native"]);
  fixed.push(["client_encoding", "UTF8"]); // our payloads are UTF-8 whatever the database's encoding
  sslParams(config.ssl, fixed);
  for (const kv of KEEPALIVE) fixed.push(kv);

  return function getParams(done) {
    Promise.resolve()
      .then(() => (typeof config.password === "function" ? config.password() : config.password))
      .then((password) => {
        const pairs = fixed.slice();
        if (password !== undefined && password !== null) pairs.push(["password", String(password)]);
        // Last, so that what the connection string says wins, as in pg.
        if (config.connectionString) pairs.push(["dbname", config.connectionString]);
        done(null, pairs.map((p) => p[0]), pairs.map((p) => p[1]));
      })
      .catch((err) => done(err instanceof Error ? err : new Error(String(err))));
  };
}

module.exports = { paramsProvider, connectTimeoutOf: (source) => configOf(source).connectionTimeoutMillis };
