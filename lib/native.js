"use strict";
// Loads the compiled addon (built by `npm install` through cmake-js).
const path = require("path");

const file = process.env.PGADAPTER_BINARY || path.join(__dirname, "..", "build", "Release", "pgadapter.node");
let binding;
try {
  binding = require(file);
} catch (err) {
  const e = new Error(
    `socket.io-postgres-native: cannot load the native addon at ${file} (${err.message}). ` +
      "It is built by `npm install`; rebuild it with `npm run rebuild` " +
      "(needs cmake, a C++ compiler, libpq-dev and libmsgpack-cxx-dev).",
  );
  e.cause = err;
  throw e;
}
module.exports = binding;
