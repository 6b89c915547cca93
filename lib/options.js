"use strict";
// Validates createAdapter() / Emitter options and fills in the defaults.
const { randomBytes } = require("crypto");
const debug = require("debug")("socket.io-postgres-native");
const { parseTableName } = require("./native");
const { codes } = require("./errors");

const DEFAULTS = {
  channelPrefix: "socket.io",
  tableName: "socket_io_attachments",
  logTableName: "socket_io_log",
  sessionTableName: "socket_io_sessions",
  payloadThreshold: 8000,
  cleanupInterval: 30000,
  heartbeatInterval: 5000,
  heartbeatTimeout: 10000,
  requestsTimeout: 5000,
  createTable: false,
  maxPublishQueue: 10000,
  closeTimeout: 2000,
  reconnectInitialDelay: 100,
  reconnectMaxDelay: 10000,
  connectTimeout: 10000,
  healthCheckInterval: 15000,
  readyTimeout: 2000,
  discoveryWindow: 250,
  responseTimeout: 10000,
  statementTimeout: 5000,
  quietIdle: true,
  maxRecoveredPackets: 10000,
};

function defaultErrorHandler(err) {
  debug("error: %s", err && err.message);
}

function check(opts, name, test, what) {
  const v = opts[name];
  if (v !== undefined && !test(v)) {
    throw new TypeError(`option "${name}" must be ${what}, got ${describe(v)}`);
  }
}

function describe(v) {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return typeof v;
}

// A table name as SQL reads it (quoted or unquoted parts, see README): malformed → TypeError, code BAD_TABLE_NAME.
function checkTableName(opts, name) {
  const v = opts[name];
  if (typeof v !== "string" || v.length === 0) return; // the type checks say what is wrong
  try {
    parseTableName(v);
  } catch (err) {
    const e = new TypeError(`option "${name}" is not a table name SQL can read (${err.message}), got ${describe(v)}`);
    e.code = codes.BAD_TABLE_NAME;
    throw e;
  }
}

const isInt = (min, max = 2 ** 31 - 1) => (v) => Number.isInteger(v) && v >= min && v <= max;
// Peers refuse messages with a longer uid (lib/adapter.js): a made-up one is kept for heartbeatTimeout.
const MAX_UID_LENGTH = 256;
const isNonEmptyString = (v) => typeof v === "string" && v.length > 0 && !v.includes("\0");

function resolveOptions(opts) {
  if (opts === undefined || opts === null) opts = {};
  if (typeof opts !== "object" || Array.isArray(opts)) {
    throw new TypeError(`createAdapter options must be an object, got ${describe(opts)}`);
  }
  check(opts, "uid", (v) => isNonEmptyString(v) && v.length <= MAX_UID_LENGTH, `a non-empty string of at most ${MAX_UID_LENGTH} characters`);
  check(opts, "channelPrefix", isNonEmptyString, "a non-empty string");
  check(opts, "tableName", (v) => typeof v === "string" && v.length > 0, "a non-empty string");
  check(opts, "logTableName", (v) => typeof v === "string" && v.length > 0, "a non-empty string");
  check(opts, "sessionTableName", (v) => typeof v === "string" && v.length > 0, "a non-empty string");
  for (const name of ["tableName", "logTableName", "sessionTableName"]) checkTableName(opts, name);
  check(opts, "payloadThreshold", isInt(1), "a positive integer (bytes)");
  check(opts, "cleanupInterval", isInt(0), "a non-negative integer (ms; 0 disables the cleanup)");
  check(opts, "heartbeatInterval", isInt(1), "a positive integer (ms)");
  check(opts, "heartbeatTimeout", isInt(1), "a positive integer (ms)");
  check(opts, "requestsTimeout", isInt(1), "a positive integer (ms)");
  check(opts, "errorHandler", (v) => typeof v === "function", "a function");
  check(opts, "createTable", (v) => typeof v === "boolean", "a boolean");
  check(opts, "quietIdle", (v) => typeof v === "boolean", "a boolean");
  check(opts, "maxPublishQueue", isInt(1), "a positive integer (messages)");
  check(opts, "closeTimeout", isInt(0), "a non-negative integer (ms)");
  check(opts, "reconnectInitialDelay", isInt(1), "a positive integer (ms)");
  check(opts, "reconnectMaxDelay", isInt(1), "a positive integer (ms)");
  check(opts, "connectTimeout", isInt(1), "a positive integer (ms)");
  check(opts, "healthCheckInterval", isInt(0), "a non-negative integer (ms; 0 disables it)");
  check(opts, "readyTimeout", isInt(0), "a non-negative integer (ms; 0: never hold connections)");
  check(opts, "discoveryWindow", isInt(0), "a non-negative integer (ms)");
  check(opts, "responseTimeout", isInt(0), "a non-negative integer (ms; 0 disables it)");
  check(opts, "statementTimeout", isInt(0), "a non-negative integer (ms; 0 keeps PostgreSQL's setting)");
  check(opts, "maxRecoveredPackets", isInt(0, 2 ** 32 - 2), "a non-negative integer (packets)");
  const out = { ...DEFAULTS };
  for (const key of Object.keys(opts)) if (opts[key] !== undefined) out[key] = opts[key];
  if (out.reconnectMaxDelay < out.reconnectInitialDelay) {
    throw new TypeError('option "reconnectMaxDelay" must be >= "reconnectInitialDelay"');
  }
  if (Buffer.byteLength(`${out.channelPrefix}#/`) > 63) {
    throw new TypeError(
      `option "channelPrefix" is too long: "${out.channelPrefix}#/" exceeds PostgreSQL's 63-byte channel names`,
    );
  }
  out.uid = out.uid || randomBytes(8).toString("hex");
  out.errorHandler = out.errorHandler || defaultErrorHandler;
  return out;
}

module.exports = { resolveOptions, DEFAULTS, MAX_UID_LENGTH };
