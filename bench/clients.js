"use strict";
// The bench's Socket.IO clients, in one process of their own (forked by bench/run.js): one
// socket.io-client per receiving server, websocket only. Counts "b" broadcasts, records the
// latency of "l" messages (CLOCK_MONOTONIC timestamps, shared by all processes of the machine).
//
// IPC in:  {cmd:"connect", ports} | {cmd:"count", on} | {cmd:"record", on} | {cmd:"samples"} | {cmd:"disconnect"}
// IPC out: {type:"connected"} | {type:"progress", i, count, maxSeq, reordered} | {type:"probe", i}
//          {type:"samples", samples} | {type:"disconnected"}
const { io: connect } = require("socket.io-client");

const REPORT_MS = 10;
let sockets = [];
let state = [];
let counting = false;
let recording = false;
let samples = [];

const send = (m) => process.connected && process.send(m);
const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

const reporter = setInterval(() => {
  if (!counting) return;
  for (let i = 0; i < state.length; i++) {
    const s = state[i];
    if (s.count === s.reported) continue;
    s.reported = s.count;
    send({ type: "progress", i, count: s.count, maxSeq: s.maxSeq, reordered: s.reordered });
  }
}, REPORT_MS);

function open(port, i) {
  return new Promise((resolve, reject) => {
    const s = { count: 0, maxSeq: 0, reordered: 0, reported: -1 };
    state[i] = s;
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
    sockets[i] = socket;
    const onSeq = (seq) => {
      s.count++;
      if (seq > s.maxSeq) s.maxSeq = seq;
      else s.reordered++;
    };
    socket.on("b", onSeq);
    socket.on("l", (ts, seq) => {
      if (recording) samples.push(nowMicros() - ts);
      onSeq(seq);
    });
    socket.on("probe", () => send({ type: "probe", i }));
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
}

process.on("message", async (msg) => {
  switch (msg.cmd) {
    case "connect":
      sockets = [];
      state = [];
      counting = false;
      await Promise.all(msg.ports.map(open));
      send({ type: "connected" });
      break;
    case "count":
      counting = msg.on;
      break;
    case "record":
      recording = msg.on;
      if (msg.on) samples = [];
      break;
    case "samples":
      send({ type: "samples", samples });
      samples = [];
      break;
    case "cpu":
      send({ type: "cpu", tag: msg.tag, usage: process.cpuUsage() });
      break;
    case "disconnect":
      counting = false;
      for (const s of sockets) s.disconnect();
      sockets = [];
      send({ type: "disconnected" });
      break;
    default:
      break;
  }
});

process.on("disconnect", () => {
  clearInterval(reporter);
  process.exit(0);
});
