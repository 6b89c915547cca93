"use strict";
const { PostgresAdapter, createAdapter } = require("./adapter");
const { Emitter } = require("./emitter");
const { setupPrimary } = require("./cluster");
const { PostgresAdapterError, meanings } = require("./errors");

module.exports = { createAdapter, PostgresAdapter, Emitter, setupPrimary, PostgresAdapterError, errorCodes: meanings };
