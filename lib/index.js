"use strict";
const { PostgresAdapter, createAdapter } = require("./adapter");
const { Emitter, BroadcastOperator, RESERVED_EVENTS } = require("./emitter");
const { setupPrimary } = require("./cluster");
const { PostgresAdapterError, meanings } = require("./errors");

// BroadcastOperator and RESERVED_EVENTS: exported as @socket.io/postgres-emitter exports them.
module.exports = {
  createAdapter,
  PostgresAdapter,
  Emitter,
  BroadcastOperator,
  RESERVED_EVENTS,
  setupPrimary,
  PostgresAdapterError,
  errorCodes: meanings,
};
