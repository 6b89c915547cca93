"use strict";
// The package's errors: one class, one list of codes (defined once in binding/core/error_codes.h and
// exported by the addon), and the redaction of secrets from every message we report.
const native = require("./native");

const { errorCodes } = native;

// { CONNECTION_LOST: "CONNECTION_LOST", ... }: use these, never a string literal.
const codes = Object.freeze(Object.fromEntries(Object.keys(errorCodes).map((code) => [code, code])));

class PostgresAdapterError extends Error {
  /**
   * @param {string} message
   * @param {string} code one of `codes`
   * @param {{cause?: unknown}} [options]
   */
  constructor(message, code, options) {
    super(message, options);
    // Not checked here (an error path must not throw): test/errors.test.js checks every code we use.
    this.code = String(code);
  }
}
Object.defineProperty(PostgresAdapterError.prototype, "name", { value: "PostgresAdapterError", configurable: true });
// The errors the addon rejects or throws with a code are of this class too.
native.setErrorClass(PostgresAdapterError);

// The password of a URL ("scheme://user:secret@host"): everything between the first ":" of the user
// info and the "@" that ends it.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@'"]*:)[^\s@]*(@)/gi;
// password=value in key=value connection strings and in URL queries, quoted or not.
const KV_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&'"]+)/gi;
const MIN_SECRET = 4; // shorter known values are only removed by the patterns above

const REDACTED = "[redacted]";

/**
 * Removes passwords from text: those of connection strings (URL and key=value forms) and each of
 * `secrets` (values known to be secret, such as the configured password).
 */
function redact(text, secrets = []) {
  let out = String(text);
  // Known values first, longest first: a pattern could cut one short (a password holding "@").
  const known = secrets.filter((s) => typeof s === "string" && s.length >= MIN_SECRET).sort((x, y) => y.length - x.length);
  for (const s of known) out = out.split(s).join(REDACTED);
  return out.replace(URL_PASSWORD, `$1${REDACTED}$2`).replace(KV_PASSWORD, `$1${REDACTED}`);
}

/** The passwords a connection string holds (URL user info or `password=`), as written and decoded. */
function connectionStringSecrets(text) {
  if (typeof text !== "string") return [];
  const found = [];
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text);
  if (scheme) {
    // libpq ends the user info at the first "@"; a malformed string may mean the last one.
    const rest = text.slice(scheme[0].length);
    for (const at of [rest.indexOf("@"), rest.lastIndexOf("@")]) {
      const userinfo = at < 0 ? "" : rest.slice(0, at);
      if (userinfo.includes(":")) found.push(userinfo.slice(userinfo.indexOf(":") + 1));
    }
  }
  for (const m of text.matchAll(/\bpassword\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s&]+)/gi)) {
    const v = m[1];
    found.push(v, v.startsWith("'") ? v.replace(/^'|'$/g, "").replace(/\\(.)/g, "$1") : v);
  }
  const decoded = found.map((v) => {
    try {
      return decodeURIComponent(v);
    } catch (_) {
      return v; // not percent-encoded: as written
    }
  });
  // A password holding "@" is cut by libpq at the first one; the rest is echoed as the host: each run of
  // "@"-separated parts is a secret too.
  const parts = [];
  for (const v of [...found, ...decoded]) {
    const pieces = v.split("@");
    for (let i = 0; i < pieces.length; i++) {
      for (let j = i + 1; j <= pieces.length; j++) parts.push(pieces.slice(i, j).join("@"));
    }
  }
  return [...new Set([...found, ...decoded, ...parts])].filter((v) => v.length > 0);
}

/**
 * A PostgresAdapterError for `what` (a message or an Error, kept as `cause`), with secrets removed
 * from its message; an Error that has one of our codes keeps it. One that already is a
 * PostgresAdapterError is returned as is.
 */
function toError(what, code, secrets) {
  if (what instanceof PostgresAdapterError) return what;
  const isError = what instanceof Error;
  const original = isError ? what.message : String(what);
  const message = redact(original, secrets);
  const known = isError && typeof what.code === "string" && Object.prototype.hasOwnProperty.call(errorCodes, what.code);
  // The cause is kept unless it carried a secret.
  const options = isError && message === original ? { cause: what } : undefined;
  return new PostgresAdapterError(message, known ? what.code : code, options);
}

module.exports = { PostgresAdapterError, codes, meanings: errorCodes, redact, toError, connectionStringSecrets };
