'use strict';
// Jest globalSetup: use $DATABASE_URL if set, else start a throwaway PostgreSQL cluster.
// The PG* variables are put into process.env, which the test workers inherit.

const { Client } = require('pg');
const { startPostgres } = require('./pg-tmp');

const ATTACHMENTS_TABLE = `CREATE TABLE IF NOT EXISTS socket_io_attachments (
  id bigserial UNIQUE,
  created_at timestamptz DEFAULT NOW(),
  payload bytea
)`;

module.exports = async function globalSetup() {
  if (!process.env.DATABASE_URL) {
    const pg = startPostgres();
    globalThis.__PGTMP__ = pg; // globalSetup and globalTeardown share one global context
    Object.assign(process.env, pg.env);
  }
  try {
    const client = new Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    try {
      await client.query(ATTACHMENTS_TABLE);
    } finally {
      await client.end();
    }
  } catch (err) {
    // Jest skips globalTeardown when globalSetup fails: do not leave the cluster behind.
    if (globalThis.__PGTMP__) globalThis.__PGTMP__.stop();
    globalThis.__PGTMP__ = undefined;
    throw err;
  }
};
