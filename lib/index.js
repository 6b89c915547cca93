"use strict";
const { PostgresAdapter, createAdapter } = require("./adapter");

module.exports = { createAdapter, PostgresAdapter };
