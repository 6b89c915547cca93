// Unit tests of the core's Stats (stats(): counters, latency percentiles, error counts).
#include <cstdio>
#include <deque>
#include <string>

#include "core/stats.h"

#include "check.h"

using pgadapter::OutMessage;
using pgadapter::Stats;


static constexpr uint64_t kMs = 1000000;  // ns

// `n` messages queued at `at_ns`, the first `attachments` of them attachments of 10 bytes, the rest 3 bytes.
static std::deque<OutMessage> queue_of(size_t n, size_t attachments, uint64_t at_ns) {
  std::deque<OutMessage> q(n);
  for (size_t i = 0; i < n; ++i) {
    q[i].attachment = i < attachments;
    q[i].payload = std::string(q[i].attachment ? 10 : 3, 'x');
    q[i].queued_at_ns = at_ns;
  }
  return q;
}

int main() {
  {  // counts only the first `count` of the queue; a failed statement counts as dropped, not published
    Stats s;
    const auto q = queue_of(5, 2, 1 * kMs);
    s.on_batch_done(q, 3, true, 11 * kMs);
    CHECK(s.published_messages == 3 && s.published_attachments == 2 && s.published_bytes == 23);
    s.on_batch_done(q, 99, false, 12 * kMs);  // more than queued: clamped
    CHECK(s.dropped_failed == 5 && s.published_messages == 3);
  }
  {  // nearest-rank percentiles over the window; none: false
    Stats s;
    double p50 = -1, p99 = -1;
    CHECK(!s.latency(0, p50, p99));
    std::deque<OutMessage> q;
    for (uint64_t i = 1; i <= 100; ++i) {
      q = queue_of(1, 0, 1000 * kMs - i * kMs);  // latency i ms
      s.on_batch_done(q, 1, true, 1000 * kMs);
    }
    CHECK(s.latency(1000 * kMs, p50, p99));
    CHECK(p50 == 50.0 && p99 == 99.0);
    // Past the window every sample is forgotten.
    CHECK(!s.latency(1000 * kMs + Stats::kWindowMs * kMs + 1, p50, p99));
  }
  {  // at most kWindowSize samples: the oldest go first
    Stats s;
    for (size_t i = 0; i < Stats::kWindowSize + 10; ++i) {
      auto q = queue_of(1, 0, 1 * kMs);
      s.on_batch_done(q, 1, true, (i < 10 ? 501 : 2) * kMs);  // the 10 first took 500 ms, the others 1 ms
    }
    double p50 = 0, p99 = 0;
    CHECK(s.latency(3 * kMs, p50, p99) && p99 == 1.0);
  }
  {  // errors by code; unknown codes are not counted
    Stats s;
    s.on_error("CONNECTION_LOST");
    s.on_error("CONNECTION_LOST");
    s.on_error("NOT_A_CODE");
    const auto errors = s.errors();
    CHECK(errors.size() == 1 && std::string(errors[0].first) == "CONNECTION_LOST" && errors[0].second == 2);
  }
  {  // received: attachments are the messages whose content came from the table, relayed (JSON) or not
    Stats s;
    std::vector<pgadapter::Inbound> batch(3);
    batch[0].json = "{}";
    batch[1].json = "{}";
    batch[1].attachment = true;
    batch[2].attachment = true;
    s.on_received(batch);
    CHECK(s.received_messages == 3 && s.received_attachments == 2);
  }
  {  // log lines only when a log function is set
    Stats s;
    auto q = queue_of(2, 1, 1);
    s.on_batch_done(q, 2, true, kMs);
    std::string line;
    s.log = [&](const std::string& l) { line = l; };
    s.on_batch_done(q, 2, true, kMs);
    CHECK(line == "published 2 messages (1 attachments, 13 bytes) in one statement");
  }
  return check::finish("stats_test");
}
