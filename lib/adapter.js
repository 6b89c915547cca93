"use strict";
const { Adapter, ClusterAdapterWithHeartbeat, MessageType } = require("socket.io-adapter");
const { randomBytes } = require("crypto");
const { SharedClient } = require("./client");
const { resolveOptions } = require("./options");
const { paramsProvider } = require("./connection");

const MAX_CHANNEL_BYTES = 63;

function channelOf(opts, nsp) {
  const channel = `${opts.channelPrefix}#${nsp.name}`;
  if (Buffer.byteLength(channel) > MAX_CHANNEL_BYTES) {
    throw new Error(
      `the PostgreSQL channel for namespace "${nsp.name}" would be "${channel}" (${Buffer.byteLength(channel)} bytes); ` +
        `PostgreSQL channel names are at most ${MAX_CHANNEL_BYTES} bytes: use a shorter namespace or channelPrefix`,
    );
  }
  return channel;
}

class PostgresAdapter extends ClusterAdapterWithHeartbeat {
  /**
   * @param nsp the namespace
   * @param opts resolved options (see createAdapter)
   * @param client the SharedClient of this createAdapter() call
   */
  constructor(nsp, opts, client) {
    const channel = channelOf(opts, nsp); // before super(): nothing to clean up if it throws
    super(nsp, opts);
    // One id per server (all its namespaces), so the native core can drop our own messages early.
    this.uid = opts.uid;
    this.requestsTimeout = opts.requestsTimeout;
    this.channel = channel;
    this.client = client;
    this.ackCleanupTimers = new Set();
    client.attach(channel, this);
  }

  // As socket.io-adapter's, except that the timer forgetting the request is tracked, unref'd and
  // cleared on close(): a closed server does not keep the process alive for the ack timeout.
  broadcastWithAck(packet, opts, clientCountCallback, ack) {
    if (opts && opts.flags && opts.flags.local) {
      return Adapter.prototype.broadcastWithAck.call(this, packet, opts, clientCountCallback, ack);
    }
    const requestId = randomBytes(8).toString("hex");
    this.ackRequests.set(requestId, { clientCountCallback, ack });
    this.publish({
      type: MessageType.BROADCAST,
      data: {
        packet,
        requestId,
        opts: { rooms: [...opts.rooms], except: [...(opts.except || [])], flags: opts.flags },
      },
    });
    const timer = setTimeout(() => {
      this.ackCleanupTimers.delete(timer);
      this.ackRequests.delete(requestId);
    }, opts.flags.timeout);
    timer.unref();
    this.ackCleanupTimers.add(timer);
    Adapter.prototype.broadcastWithAck.call(this, packet, opts, clientCountCallback, ack);
  }

  doPublish(message) {
    return this.client.publish(this.channel, message);
  }

  doPublishResponse(requesterUid, response) {
    return this.client.publish(this.channel, response);
  }

  fetchSockets(opts) {
    if (!opts.flags || !opts.flags.timeout) {
      opts = { ...opts, flags: { ...opts.flags, timeout: this.requestsTimeout } };
    }
    return super.fetchSockets(opts);
  }

  serverSideEmit(packet) {
    const ack = packet[packet.length - 1];
    const result = super.serverSideEmit(packet);
    if (typeof ack === "function") this.applyRequestsTimeout(ack);
    return result;
  }

  // socket.io-adapter waits a fixed 5 s for serverSideEmit answers: use requestsTimeout instead.
  applyRequestsTimeout(ack) {
    for (const [requestId, request] of this.customRequests) {
      if (request.resolve !== ack) continue;
      clearTimeout(request.timeout);
      request.timeout = setTimeout(() => {
        if (this.customRequests.get(requestId) !== request) return;
        this.customRequests.delete(requestId);
        ack(new Error(`timeout reached: missing ${request.missingUids.size} responses`), request.responses);
      }, this.requestsTimeout);
      return;
    }
  }

  async close() {
    for (const timer of this.ackCleanupTimers) clearTimeout(timer);
    this.ackCleanupTimers.clear();
    super.close(); // publishes ADAPTER_CLOSE, stops the heartbeat
    await this.client.detach(this.channel);
  }
}

/**
 * Returns the adapter factory for `new Server({ adapter })` or `io.adapter()`.
 * @param source a pg.Pool (its connection options are used; no slot of the pool is taken),
 *               a connection string, or a pg-style connection config object
 */
function createAdapter(source, userOpts) {
  const opts = resolveOptions(userOpts);
  const getParams = paramsProvider(source);
  if (source && typeof source === "object" && source.options && source.options.connectionTimeoutMillis &&
      (!userOpts || userOpts.connectTimeout === undefined)) {
    opts.connectTimeout = source.options.connectionTimeoutMillis;
  }
  let client = null;
  return function (nsp) {
    if (!client || client.closed) client = new SharedClient(getParams, opts);
    return new PostgresAdapter(nsp, opts, client);
  };
}

module.exports = { PostgresAdapter, createAdapter };
