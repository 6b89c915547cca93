"use strict";
// One native client per createAdapter() call, shared by all namespaces: it routes incoming
// messages to the namespace adapters by channel and turns native reports into Errors.
const { NativeClient } = require("./native");

function toError(message, code) {
  const err = message instanceof Error ? message : new Error(String(message));
  if (code && err.code === undefined) err.code = code;
  return err;
}

class SharedClient {
  constructor(getParams, opts, { listen = true } = {}) {
    this.opts = opts;
    this.routes = new Map(); // channel -> adapter
    this.closed = false;
    this.native = new NativeClient({
      uid: opts.uid,
      tableName: opts.tableName,
      payloadThreshold: opts.payloadThreshold,
      cleanupInterval: listen ? opts.cleanupInterval : 0,
      maxQueue: opts.maxPublishQueue,
      createTable: opts.createTable,
      listen,
      reconnect: {
        initialDelay: opts.reconnectInitialDelay,
        maxDelay: opts.reconnectMaxDelay,
        connectTimeout: opts.connectTimeout,
        healthCheckInterval: opts.healthCheckInterval,
      },
      getParams,
      onMessages: (flat) => this.onMessages(flat),
      onError: (message, code) => this.report(toError(message, code)),
    });
    this.native.start();
  }

  report(err) {
    try {
      this.opts.errorHandler(err);
    } catch (_) {
      // A throwing errorHandler must not break message delivery.
    }
  }

  attach(channel, adapter) {
    this.routes.set(channel, adapter);
    this.native.listen(channel);
  }

  async detach(channel) {
    this.routes.delete(channel);
    if (this.routes.size > 0) {
      this.native.unlisten(channel);
      return;
    }
    await this.close();
  }

  // Resolves once the message is queued, in order, for PostgreSQL: local delivery never waits
  // for the database, and messages of one server reach the others in publish order.
  publish(channel, message) {
    let dropped;
    try {
      dropped = this.native.publish(channel, message);
    } catch (err) {
      this.report(toError(err, "ENCODE_FAILED"));
      return Promise.reject(err);
    }
    if (dropped === undefined) return Promise.resolve();
    const err = toError(dropped, "PUBLISH_DROPPED");
    this.report(err);
    return Promise.reject(err);
  }

  onMessages(flat) {
    for (let i = 0; i < flat.length; i += 2) {
      const channel = flat[i];
      const message = flat[i + 1];
      const adapter = this.routes.get(channel);
      if (!adapter) continue;
      const nspName = adapter.nsp.name;
      // The pure-JS emitter sends no top-level nsp: the channel says which namespace it is for.
      if (message.nsp === undefined) message.nsp = nspName;
      if (message.nsp !== nspName) {
        this.report(
          toError(`ignored a message on channel ${channel} for another namespace (${message.nsp})`, "BAD_NOTIFICATION"),
        );
        continue;
      }
      try {
        adapter.onMessage(message);
      } catch (err) {
        this.report(toError(err, "MESSAGE_FAILED"));
      }
    }
  }

  close() {
    if (!this.closePromise) {
      this.closed = true;
      this.closePromise = this.native.close(this.opts.closeTimeout);
    }
    return this.closePromise;
  }
}

module.exports = { SharedClient };
