"use strict";
// setupPrimary(): the primary of a node:cluster whose workers use @socket.io/cluster-adapter.
// It forwards between its workers, and between them and the other servers through PostgreSQL.
const cluster = require("node:cluster");
const { openNativeClient, publishOn, safeReport, parseMessage } = require("./client");
const { codes, toError } = require("./errors");
const { resolveOptions } = require("./options");
const { paramsProvider } = require("./connection");
const { channelName, namespaceProblem } = require("./channel");

const MESSAGE_SOURCE = "_sio_adapter"; // set by @socket.io/cluster-adapter on worker messages
const FETCH_SOCKETS_RESPONSE = 8;
const SERVER_SIDE_EMIT_RESPONSE = 10;
const isResponse = (m) => m.type === FETCH_SOCKETS_RESPONSE || m.type === SERVER_SIDE_EMIT_RESPONSE;

function setupPrimary(source, userOpts) {
  const opts = resolveOptions(userOpts);
  const nodeId = opts.uid;
  const report = (err) => safeReport(opts.errorHandler, err);
  const channels = new Map(); // channel -> nsp
  const workerOfUid = new Map(); // a worker adapter's uid -> its worker (to route responses)

  const native = openNativeClient(paramsProvider(source), opts, {
    listen: true,
    onMessages: (flat) => {
      for (let i = 0; i < flat.length; i += 4) fromDatabase(flat[i], parseMessage(flat[i + 1], flat[i + 3])); // [channel, message, offset, wire]
    },
    report,
  });

  function send(worker, message) {
    try {
      worker.send(message, (err) => err && report(toError(err, codes.IPC_FAILED)));
    } catch (err) {
      report(toError(err, codes.IPC_FAILED));
    }
  }

  function toWorkers(message, except) {
    for (const worker of Object.values(cluster.workers || {})) {
      if (worker && worker !== except) send(worker, message);
    }
  }

  function channelOf(nsp) {
    const channel = channelName(opts.channelPrefix, nsp);
    if (!channels.has(channel)) {
      const problem = namespaceProblem(opts.channelPrefix, nsp);
      if (problem !== null) throw new Error(problem);
      channels.set(channel, nsp);
      native.listen(channel); // publishing on it waits for this LISTEN
    }
    return channel;
  }

  function fromWorker(worker, message) {
    if (!message || message.source !== MESSAGE_SOURCE || typeof message.nsp !== "string") return;
    if (typeof message.uid === "string") workerOfUid.set(message.uid, worker);
    let channel;
    try {
      channel = channelOf(message.nsp);
    } catch (err) {
      return report(toError(err, codes.BAD_NAMESPACE));
    }
    if (isResponse(message)) {
      const requester = workerOfUid.get(message.requesterUid);
      if (requester) return send(requester, message); // a local request: PostgreSQL is not needed
    } else {
      toWorkers(message, worker);
    }
    const out = { ...message, nodeId };
    delete out.source;
    publishOn(native, channel, out, report).catch(() => {});
  }

  function fromDatabase(channel, message) {
    // Our own publications are dropped by the native client (same session); nodeId is a second check.
    if (message.nodeId === nodeId) return;
    const nsp = channels.get(channel);
    if (nsp === undefined) return;
    if (message.nsp === undefined) message.nsp = nsp; // the pure-JS emitter sends none
    message.source = MESSAGE_SOURCE;
    if (isResponse(message)) {
      const requester = workerOfUid.get(message.requesterUid);
      if (requester) send(requester, message);
      return;
    }
    toWorkers(message, null);
  }

  function onExit(worker) {
    for (const [uid, w] of workerOfUid) if (w === worker) workerOfUid.delete(uid);
  }

  cluster.on("message", fromWorker);
  cluster.on("exit", onExit);
  return {
    nodeId,
    /** Stops forwarding and closes the PostgreSQL connections. */
    async close() {
      cluster.off("message", fromWorker);
      cluster.off("exit", onExit);
      await native.close(opts.closeTimeout);
    },
  };
}

module.exports = { setupPrimary };
