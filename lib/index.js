"use strict";
const { PostgresAdapter, createAdapter } = require("./adapter");
const { Emitter } = require("./emitter");
const { setupPrimary } = require("./cluster");

module.exports = { createAdapter, PostgresAdapter, Emitter, setupPrimary };
