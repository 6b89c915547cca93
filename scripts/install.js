"use strict";
// npm's "install" script: nothing to do when the addon already loads (the prebuilt binary shipped in
// the package, or an earlier source build); otherwise build from source into build/Release.
// `npm rebuild socket.io-postgres-native --build-from-source` (or PGADAPTER_BUILD_FROM_SOURCE=1)
// always builds.
const path = require("path");
const { build } = require("./build-addon");

const forced = /^(1|true)$/.test(process.env.npm_config_build_from_source || process.env.PGADAPTER_BUILD_FROM_SOURCE || "");
if (!forced) {
  try {
    require("../lib/native");
    process.exit(0);
  } catch (err) {
    // libpq.so.5 missing: a source build would need libpq-dev, which brings it, so say that one thing.
    if (err.reason === "libpq-missing") {
      console.error(err.message);
      process.exit(1);
    }
  }
}
const error = build(path.join(__dirname, "..", "build", "Release", "pgadapter.node"));
if (error) {
  console.error(error);
  process.exit(1);
}
