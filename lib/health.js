"use strict";
// health() for readiness probes, and the connection-lost / connection-restored events, both derived
// from the native client's stats() (one native call).
const { codes } = require("./errors");

const LOST = "connection-lost";
const RESTORED = "connection-restored";

/**
 * ok: every connection is "connected" and at most `maxQueue` messages wait for PostgreSQL (in the
 * queue or in flight); by default half of maxPublishQueue, where new publishes start being dropped.
 */
function healthOf(stats, maxPublishQueue, options = {}) {
  const maxQueue = options && options.maxQueue !== undefined ? options.maxQueue : Math.floor(maxPublishQueue / 2);
  if (!Number.isInteger(maxQueue) || maxQueue < 0) {
    throw new TypeError(`health({ maxQueue }) must be a non-negative integer, got ${String(maxQueue)}`);
  }
  const reasons = [];
  for (const [name, c] of Object.entries(stats.connections)) {
    if (c !== null && c.state !== "connected") reasons.push(`${name} connection ${c.state}`);
  }
  const queued = stats.queue.depth + stats.queue.inFlight;
  if (queued > maxQueue) reasons.push(`${queued} messages queued (more than ${maxQueue})`);
  return {
    ok: reasons.length === 0,
    reasons,
    connections: { publish: stats.connections.publish.state, listen: stats.connections.listen && stats.connections.listen.state },
    queue: { depth: stats.queue.depth, inFlight: stats.queue.inFlight, maxQueue },
  };
}

/**
 * Follows CONNECTION_LOST / RECONNECTED reports to tell when this server is cut from the cluster (a
 * connection down) and when it is whole again: `emit(LOST, err)` once when the first connection goes
 * down, `emit(RESTORED, { downtime })` once when none is down any more.
 */
class OutageTracker {
  constructor(emit) {
    this.emit = emit;
    this.since = null; // Date.now() at the start of the current outage
  }

  // getStats: read only for the two codes that matter (other reports can come in floods).
  onReport(err, getStats) {
    if (err.code !== codes.CONNECTION_LOST && err.code !== codes.RECONNECTED) return;
    const { publish, listen } = getStats().connections;
    const down = publish.state === "down" || (listen !== null && listen.state === "down");
    if (down && this.since === null) {
      this.since = Date.now();
      this.emit(LOST, err);
    } else if (!down && this.since !== null) {
      const downtime = Date.now() - this.since;
      this.since = null;
      this.emit(RESTORED, { downtime });
    }
  }
}

module.exports = { healthOf, OutageTracker, LOST, RESTORED };
