"use strict";
// When a namespace's adapter is ready: its LISTEN took effect (confirmed by the native core, which
// says so once the publishing connection is up too), then the live peers have answered the
// INITIAL_HEARTBEAT it publishes at that point. From the first step on, every broadcast committed by
// any server reaches it; after the second, its requests count every live peer, and the peers have
// heard of it. Nothing says how many peers there are, so the second step ends when no new peer has
// shown up for `discoveryWindow` ms.
// Both are bounded by `readyTimeout` ms from the start: then everything goes ahead and, if the LISTEN
// is still not confirmed, onTimeout() is called (once). readyTimeout 0: ready at once.

class Readiness {
  constructor({ readyTimeout, discoveryWindow, onTimeout }) {
    this.discoveryWindow = discoveryWindow;
    this.onTimeout = onTimeout;
    this.isListening = false;
    this.isReady = false;
    this.waiters = [];
    this.discoveryTimer = null;
    this.deadline = null;
    if (readyTimeout === 0) {
      this.done();
      return;
    }
    this.deadline = setTimeout(() => this.expire(), readyTimeout);
    this.deadline.unref();
  }

  // The LISTEN took effect: peers are answering our INITIAL_HEARTBEAT.
  listening() {
    if (this.isListening) return;
    this.isListening = true;
    if (this.isReady) return;
    this.discoveryTimer = setTimeout(() => this.done(), this.discoveryWindow);
    this.discoveryTimer.unref();
  }

  // A server not seen before has spoken: others may still be answering.
  peerSeen() {
    if (this.discoveryTimer) this.discoveryTimer.refresh();
  }

  // Calls cb once ready (or past the bound).
  whenReady(cb) {
    if (this.isReady) cb();
    else this.waiters.push(cb);
  }

  // fn() once ready (or past the bound); returns (a promise of) its result.
  afterReady(fn) {
    if (this.isReady) return fn();
    return new Promise((resolve, reject) => {
      this.waiters.push(() => {
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  expire() {
    this.deadline = null;
    if (!this.isListening) this.onTimeout();
    this.done();
  }

  // Ready, timed out or closed: nothing waits any more.
  done() {
    clearTimeout(this.deadline);
    clearTimeout(this.discoveryTimer);
    this.deadline = this.discoveryTimer = null;
    this.isListening = this.isReady = true;
    for (const cb of this.waiters.splice(0)) {
      try {
        cb();
      } catch (err) {
        // A middleware that throws: not ours to swallow, but the other waiters still go ahead.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}

module.exports = { Readiness };
