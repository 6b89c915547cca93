'use strict';
// Jest globalTeardown: stop the throwaway cluster started by global-setup.js (if any).

module.exports = async function globalTeardown() {
  const pg = globalThis.__PGTMP__;
  if (pg) {
    globalThis.__PGTMP__ = undefined;
    pg.stop();
  }
};
