// What one native client has done, for stats() and health(): counters the connection, publisher and
// listener bump as things happen (plain integers on the loop thread: reading them is one native call),
// the recent publish latencies, and the lifecycle log lines when the user turned debug logging on.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "core/error_codes.h"
#include "core/listener.h"
#include "core/message_encoder.h"

namespace pgadapter {

struct ConnectionStats {
  enum class State { Connecting, Connected, Down };
  uint64_t reconnects = 0;  // times it came back after an outage (RECONNECTED)
};

class Stats {
 public:
  // Latency figures cover the publishes of the last kWindowMs, at most kWindowSize of them.
  static constexpr uint64_t kWindowMs = 60000;
  static constexpr size_t kWindowSize = 1024;

  ConnectionStats publish, listen;
  uint64_t published_messages = 0, published_attachments = 0, published_bytes = 0;
  uint64_t received_messages = 0, received_attachments = 0;
  // Dropped messages, by reason.
  uint64_t dropped_queue_full = 0;  // the publish queue was at maxPublishQueue
  uint64_t dropped_closed = 0;      // published after close()
  uint64_t dropped_failed = 0;      // PostgreSQL refused the statement, or the connection was lost in flight
  uint64_t dropped_inbound = 0;     // notifications dropped while the inbound queue was full

  // Set only while debug logging is enabled: the line is handed to JavaScript.
  std::function<void(const std::string& line)> log;

  // The first `count` messages of `queue` left in one statement; `now_ns` from uv_hrtime().
  void on_batch_done(const std::deque<OutMessage>& queue, size_t count, bool ok, uint64_t now_ns);
  void on_received(const std::vector<Inbound>& batch);
  // Counts a report to the errorHandler; unknown codes are ignored (the table stays bounded).
  // Returns the code's index (kCodes for an unknown code).
  size_t on_error(const std::string& code);
  static const char* code_name(size_t index);
  void note(const std::string& line) {
    if (log) log(line);
  }

  // Errors reported so far, by code (only codes with a count).
  std::vector<std::pair<const char*, uint64_t>> errors() const;
  // p50 and p99 of the publish latencies (enqueue to commit) in the window, in ms; false when empty.
  bool latency(uint64_t now_ns, double& p50, double& p99) const;

#define PGADAPTER_COUNT_CODE(code, meaning) +1  // NOLINT(bugprone-macro-parentheses): a term of the sum 0 +1 +1 ...
  static constexpr size_t kCodes = 0 PGADAPTER_ERROR_CODES(PGADAPTER_COUNT_CODE);
#undef PGADAPTER_COUNT_CODE

 private:
  uint64_t errors_[kCodes] = {};
  struct Sample {
    uint64_t at_ns;
    double ms;
  };
  mutable std::deque<Sample> samples_;
};

}  // namespace pgadapter
