"use strict";
// The TLS settings written in a connection string. pg 8 reads them from a URL's query itself and lets them replace
// the config's `ssl`, with its own meanings (sslmode=require verifies the certificate; libpq's require does not), so
// they are read here as pg reads them and taken out of the string libpq parses. pg reads no TLS settings from
// libpq's key=value form: there `sslmode` and `requiressl` (which would mean libpq's weaker modes) are refused.
const fs = require("fs");

// Set on an `ssl` object whose server certificate is checked against its CA but not its host name (libpq
// verify-ca): what pg does for sslmode=verify-ca, and require with sslrootcert, under uselibpqcompat=true.
const HOST_UNCHECKED = Symbol("hostUnchecked");

// The query parameters pg reads for TLS, and requiressl: libpq's old spelling of sslmode, which pg ignores.
const TAKEN = new Set(["ssl", "sslmode", "sslrootcert", "sslcert", "sslkey", "uselibpqcompat", "requiressl"]);
const KEYWORD_REFUSED = ["sslmode", "requiressl"];

const URI_PREFIX = /^postgres(?:ql)?:\/\//; // what libpq takes for a URI (case matters to it)
const SPACE = /[ \t\n\v\f\r]/;

// libpq's view of a query parameter name: percent-decoded, surrounding spaces dropped (null if malformed).
function libpqName(raw) {
  try {
    return decodeURIComponent(raw).replace(/^ +| +$/g, "");
  } catch (_) {
    return null;
  }
}

// Splits a URI where libpq does: the user info ends at the first "@" met before any "/", and the query begins at
// the first "?" after it. Returns [everything before the "?", the query].
function splitQuery(uri) {
  const head = URI_PREFIX.exec(uri)[0].length;
  const stop = uri.slice(head).search(/[@/]/);
  const from = stop >= 0 && uri[head + stop] === "@" ? head + stop + 1 : head;
  const q = uri.indexOf("?", from);
  return q < 0 ? [uri, ""] : [uri.slice(0, q), uri.slice(q + 1)];
}

function readFile(param, file) {
  try {
    return fs.readFileSync(file).toString();
  } catch (err) {
    const e = new Error(`connection string: cannot read ${param}: ${err.message}`);
    e.code = err.code;
    throw e;
  }
}

// pg's `ssl` for these query parameters (names decoded as URLSearchParams does, the last one winning):
// undefined when they say nothing about TLS.
function sslOf(p) {
  let ssl;
  if (p.ssl !== undefined) ssl = p.ssl === "true" || p.ssl === "1" ? true : p.ssl === "0" ? false : p.ssl;
  if (p.sslcert || p.sslkey || p.sslrootcert || p.sslmode) ssl = {};
  if (p.sslcert) ssl.cert = readFile("sslcert", p.sslcert);
  if (p.sslkey) ssl.key = readFile("sslkey", p.sslkey);
  if (p.sslrootcert) ssl.ca = readFile("sslrootcert", p.sslrootcert);
  if (p.uselibpqcompat === "true") {
    // sslmode as libpq means it, except that prefer never falls back to a plain connection
    if (p.sslmode === "disable") ssl = false;
    else if (p.sslmode === "prefer") ssl.rejectUnauthorized = false;
    else if (p.sslmode === "require" && !p.sslrootcert) ssl.rejectUnauthorized = false;
    else if (p.sslmode === "require") ssl[HOST_UNCHECKED] = true;
    else if (p.sslmode === "verify-ca") {
      if (!ssl.ca) throw new TypeError("connection string: sslmode=verify-ca with uselibpqcompat=true needs sslrootcert");
      ssl[HOST_UNCHECKED] = true;
    }
  } else if (p.sslmode === "disable") {
    ssl = false;
  } else if (p.sslmode === "no-verify") {
    ssl.rejectUnauthorized = false;
  }
  // The other values of `ssl` alone: pg takes an empty one for false, and breaks in the TLS handshake on others
  // (ssl=false included), so those are refused.
  if (ssl === "no-verify") ssl = { rejectUnauthorized: false };
  else if (ssl === "") ssl = false;
  else if (typeof ssl === "string") throw new TypeError("connection string: ssl must be true, 1, 0 or no-verify");
  return ssl;
}

// The keywords of a libpq key=value string, in order, up to where libpq's syntax would fail (libpq reports that).
function keywordsOf(conninfo) {
  const keywords = [];
  let i = 0;
  const skipSpace = () => {
    while (i < conninfo.length && SPACE.test(conninfo[i])) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= conninfo.length) return keywords;
    const start = i;
    while (i < conninfo.length && !SPACE.test(conninfo[i]) && conninfo[i] !== "=") i++;
    keywords.push(conninfo.slice(start, i));
    skipSpace();
    if (conninfo[i] !== "=") return keywords;
    i++;
    skipSpace();
    const quoted = conninfo[i] === "'";
    if (quoted) i++;
    while (i < conninfo.length && (quoted ? conninfo[i] !== "'" : !SPACE.test(conninfo[i]))) {
      i += conninfo[i] === "\\" ? 2 : 1;
    }
    if (quoted) i++;
  }
}

/**
 * Reads the TLS settings of a connection string as pg does. Returns { ssl, libpq }: `ssl` as pg would merge it
 * over the config's (undefined: the string says nothing about TLS), and the string to give libpq, without them.
 * Throws when pg would (an unreadable certificate file, verify-ca without a CA under uselibpqcompat), for ssl values
 * pg cannot use, and for sslmode/requiressl in key=value form.
 */
function connectionStringTls(connectionString) {
  if (!URI_PREFIX.test(connectionString)) {
    if (connectionString.includes("=")) {
      const refused = keywordsOf(connectionString).filter((k) => KEYWORD_REFUSED.includes(k));
      if (refused.length) {
        throw new TypeError(
          `connection string: ${refused[0]} is not supported in key=value form (pg reads no TLS settings there); ` +
            "write the connection string as a URL (postgres://...?sslmode=...) or use the ssl option",
        );
      }
    }
    return { ssl: undefined, libpq: connectionString };
  }
  const [before, query] = splitQuery(connectionString);
  const kept = [];
  const params = {};
  for (const piece of query === "" ? [] : query.split("&")) {
    const eq = piece.indexOf("=");
    const name = eq < 0 ? piece : piece.slice(0, eq);
    const [pgView] = new URLSearchParams(piece);
    const pgName = pgView ? pgView[0] : "";
    if (TAKEN.has(pgName)) params[pgName] = pgView[1];
    if (!TAKEN.has(pgName) && !TAKEN.has(libpqName(name))) kept.push(piece);
  }
  return { ssl: sslOf(params), libpq: kept.length ? `${before}?${kept.join("&")}` : before };
}

module.exports = { connectionStringTls, HOST_UNCHECKED };
