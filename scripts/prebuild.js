"use strict";
// `npm run prebuild` (run by `prepack`): builds the linux-x64 glibc N-API 8 binary that ships in the npm
// package, with libstdc++/libgcc linked in, then checks what it needs at run time: only glibc (no newer
// than the floor lib/native.js states), libpq.so.5, and what Node itself provides.
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const { build } = require("./build-addon");

const ROOT = path.join(__dirname, "..");
const OUT = path.join(ROOT, "prebuilds", "linux-x64", "pgadapter.napi.glibc.node");
const ALLOWED_LIBS = new Set(["libpq.so.5", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"]);

function die(msg) {
  console.error(`prebuild: ${msg}`);
  process.exit(1);
}

if (process.platform !== "linux" || process.arch !== "x64") die(`builds linux-x64 only (this is ${process.platform}-${process.arch})`);
fs.rmSync(path.join(ROOT, "prebuilds"), { recursive: true, force: true });
const error = build(OUT, { staticRuntime: true });
if (error) die(error);
execFileSync("strip", ["--strip-unneeded", OUT]);

const dynamic = execFileSync("objdump", ["-p", OUT], { encoding: "utf8" });
const needed = [...dynamic.matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]);
const extra = needed.filter((lib) => !ALLOWED_LIBS.has(lib));
if (extra.length) die(`${OUT} needs ${extra.join(", ")} (expected only ${[...ALLOWED_LIBS].join(", ")})`);

const symbols = execFileSync("objdump", ["-T", OUT], { encoding: "utf8" });
const versions = [...symbols.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
const [maj, min] = versions.reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [0, 0]);
const floor = /PREBUILT_GLIBC = "(\d+)\.(\d+)"/.exec(fs.readFileSync(path.join(ROOT, "lib", "native.js"), "utf8"));
if (!floor || maj > Number(floor[1]) || (maj === Number(floor[1]) && min > Number(floor[2]))) {
  die(`${OUT} needs GLIBC_${maj}.${min}, newer than PREBUILT_GLIBC in lib/native.js: update it and the README`);
}
console.log(`prebuild: ${path.relative(ROOT, OUT)} (${fs.statSync(OUT).size} bytes; needs ${needed.join(", ")}; glibc >= ${maj}.${min})`);
