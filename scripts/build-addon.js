"use strict";
// Builds the addon with CMake alone (no cmake-js at install time) in a temporary directory and copies
// the one .node file out, so no intermediate files stay inside node_modules.
//
//   node scripts/build-addon.js OUT_FILE [--static-runtime]
//
// Used by scripts/install.js (source build on a user's machine) and scripts/prebuild.js.
const { execFileSync, spawnSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const ROOT = path.join(__dirname, "..");
const PKG = "socket.io-postgres-native";

function onPath(name) {
  if (name.includes("/")) return isExecutable(name) ? name : null;
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const file = path.join(dir || ".", name);
    if (isExecutable(file)) return file;
  }
  return null;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function firstFile(dirs, name) {
  return dirs.find((d) => d && fs.existsSync(path.join(d, name))) || null;
}

function pgIncludeDir() {
  const pgConfig = onPath("pg_config");
  if (!pgConfig) return null;
  try {
    return execFileSync(pgConfig, ["--includedir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

function compiler() {
  const cxx = process.env.CXX;
  if (cxx) return onPath(cxx.split(" ")[0]);
  return onPath("c++") || onPath("g++") || onPath("clang++");
}

// What the source build needs and does not find. `blocking` items make the build impossible; the
// header checks only look in the usual places, so a miss there is reported only if the build fails.
function missingParts() {
  const nodeInclude = path.resolve(process.execPath, "..", "..", "include", "node");
  const parts = [
    { what: "cmake", deb: "cmake", blocking: true, ok: onPath("cmake") },
    { what: "a C++17 compiler", deb: "g++", blocking: true, ok: compiler() },
    { what: "make or ninja", deb: "ninja-build", blocking: true, ok: onPath("ninja") || onPath("make") },
    {
      what: "libpq headers",
      deb: "libpq-dev",
      ok: firstFile([pgIncludeDir(), "/usr/include/postgresql", "/usr/include", "/usr/local/include", "/usr/local/pgsql/include"], "libpq-fe.h"),
    },
    { what: "msgpack-cxx headers", deb: "libmsgpack-cxx-dev", ok: firstFile(["/usr/include", "/usr/local/include"], "msgpack.hpp") },
    { what: "Node's headers (uv.h)", deb: "libnode-dev", ok: firstFile([nodeInclude, "/usr/include/node", "/usr/local/include/node"], "uv.h") },
  ];
  return parts.filter((p) => !p.ok);
}

function isDebianLike() {
  try {
    const osRelease = fs.readFileSync("/etc/os-release", "utf8");
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(osRelease);
  } catch {
    return false;
  }
}

// One line: what is missing and, on Debian/Ubuntu, the command that installs it.
function missingLine(missing) {
  let line = `${PKG}: cannot build the native addon from source: missing ${missing.map((m) => m.what).join(", ")}.`;
  if (isDebianLike()) {
    const sudo = process.getuid && process.getuid() === 0 ? "" : "sudo ";
    const debs = missing.map((m) => m.deb).join(" ");
    line += ` Install them: ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${debs}`;
  } else {
    line += ` Install them with your package manager (libpq and msgpack-cxx development packages)`;
  }
  return `${line}, then run \`npm rebuild ${PKG}\`.`;
}

function includeDirs() {
  const headers = path.join(path.dirname(require.resolve("node-api-headers/package.json")), "include");
  const addonApi = path.dirname(require.resolve("node-addon-api/package.json"));
  return `${headers};${addonApi}`;
}

// Returns null on success, else the error line to show.
function build(outFile, { staticRuntime = false } = {}) {
  const blocking = missingParts().filter((p) => p.blocking);
  if (blocking.length) return missingLine(missingParts());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgadapter-build-"));
  try {
    const generator = onPath("ninja") ? ["-G", "Ninja"] : ["-G", "Unix Makefiles"];
    const configure = [
      "-S", ROOT, "-B", dir, ...generator,
      "-DCMAKE_BUILD_TYPE=Release", "-DPGADAPTER_ADDON=ON", `-DCMAKE_JS_INC=${includeDirs()}`,
      `-DPGADAPTER_STATIC_RUNTIME=${staticRuntime ? "ON" : "OFF"}`,
    ];
    for (const args of [configure, ["--build", dir, "--target", "pgadapter"]]) {
      const r = spawnSync("cmake", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      if (r.status !== 0) {
        process.stderr.write(`${r.stdout || ""}${r.stderr || ""}`.split("\n").slice(-30).join("\n") + "\n");
        const missing = missingParts();
        return missing.length ? missingLine(missing) : `${PKG}: the source build failed (cmake output above)`;
      }
    }
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.copyFileSync(path.join(dir, "pgadapter.node"), outFile);
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { build, missingParts, missingLine };

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: node scripts/build-addon.js OUT_FILE [--static-runtime]");
    process.exit(2);
  }
  const error = build(path.resolve(out), { staticRuntime: process.argv.includes("--static-runtime") });
  if (error) {
    console.error(error);
    process.exit(1);
  }
}
