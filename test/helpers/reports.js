'use strict';
// Reports are rate-limited per code (README, "Errors"): past the limit, one summary of the same code,
// "N more CODE reports suppressed ...", stands for N reports. weight(err): how many reports `err` stands for.

const SUMMARY = /^(\d+) more ([A-Z_]+) reports suppressed/;

const weight = (err) => {
  const m = SUMMARY.exec(err.message);
  return m && m[2] === err.code ? Number(m[1]) : 1;
};
const isSummary = (err) => weight(err) !== 1 || SUMMARY.test(err.message);

// How many reports of `code` (optionally also passing `filter`) the errorHandler was told about.
const reportedCount = (errs, code, filter = () => true) =>
  errs.reduce((n, e) => (e.code === code && (isSummary(e) || filter(e)) ? n + weight(e) : n), 0);

module.exports = { weight, isSummary, reportedCount, SUMMARY };
