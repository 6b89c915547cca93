"use strict";
// Loads the native addon: PGADAPTER_BINARY if set (ASan and test builds), else a local build
// (build/Release, made by a source build), else the prebuilt binary shipped in the npm package
// when it fits this machine. Every failure is one line that says what to do.
const fs = require("fs");
const path = require("path");

const ROOT = path.join(__dirname, "..");
const PKG = "socket.io-postgres-native";
// The oldest glibc the prebuilt binary links against (checked with objdump -T by scripts/prebuild.js).
const PREBUILT_GLIBC = "2.34";
const PREBUILT = path.join(ROOT, "prebuilds", "linux-x64", "pgadapter.napi.glibc.node");
const LOCAL = path.join(ROOT, "build", "Release", "pgadapter.node");
const LIBPQ_HINT =
  "the PostgreSQL client library libpq.so.5 is missing: install it (Debian/Ubuntu: apt-get install -y libpq5; " +
  "Fedora/RHEL: dnf install -y libpq; Alpine: apk add libpq)";

function glibcVersion() {
  if (process.platform !== "linux" || !process.report) return null;
  const header = process.report.getReport().header;
  return header.glibcVersionRuntime || null; // undefined on musl
}

function versionAtLeast(v, floor) {
  const a = v.split(".").map(Number);
  const b = floor.split(".").map(Number);
  return a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]);
}

// Why the prebuilt binary does not apply here, or null when it does.
function prebuiltMismatch() {
  if (!fs.existsSync(PREBUILT)) return "the package has no prebuilt binary";
  if (process.platform !== "linux" || process.arch !== "x64") {
    return `the prebuilt binary is for linux-x64, this is ${process.platform}-${process.arch}`;
  }
  const glibc = glibcVersion();
  if (!glibc) return "the prebuilt binary needs glibc (this Linux uses another C library, e.g. musl)";
  if (!versionAtLeast(glibc, PREBUILT_GLIBC)) {
    return `the prebuilt binary needs glibc >= ${PREBUILT_GLIBC}, this system has ${glibc}`;
  }
  return null;
}

// `reason` (not `code`: that names the adapter's runtime errors) lets scripts/install.js tell them apart.
function fail(reason, message, cause) {
  const err = new Error(`${PKG}: ${message}`);
  err.reason = reason;
  if (cause) err.cause = cause;
  return err;
}

function open(file) {
  try {
    return require(file);
  } catch (err) {
    if (/libpq\.so/.test(err.message)) throw fail("libpq-missing", LIBPQ_HINT, err);
    throw fail("load-failed", `cannot load ${file} (${err.message.split("\n")[0]}); rebuild it with \`npm rebuild ${PKG}\``, err);
  }
}

function load() {
  if (process.env.PGADAPTER_BINARY) return open(process.env.PGADAPTER_BINARY);
  if (fs.existsSync(LOCAL)) return open(LOCAL);
  const mismatch = prebuiltMismatch();
  if (!mismatch) return open(PREBUILT);
  throw fail(
    "addon-missing",
    `no native addon for ${process.platform}-${process.arch} (${mismatch}, and no source build was made, ` +
      `e.g. because install scripts were skipped): run \`npm rebuild ${PKG}\` ` +
      "(it needs cmake, a C++ compiler, make or ninja, libpq-dev and libmsgpack-cxx-dev)",
  );
}

module.exports = load();
