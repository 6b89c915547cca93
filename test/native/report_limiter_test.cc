// Unit tests of ReportLimiter: per-code windows, summaries that account for every suppressed report,
// exempt codes.
#include <cstdio>
#include <vector>

#include "core/report_limiter.h"

#include "check.h"

using pgadapter::ReportLimiter;


struct Summary {
  size_t code;
  uint64_t n, ms;
};

int main() {
  const uint64_t W = ReportLimiter::kWindowMs;
  const uint32_t K = ReportLimiter::kPerWindow;
  std::vector<Summary> out;
  auto collect = [&](size_t code, uint64_t n, uint64_t ms) { out.push_back({code, n, ms}); };
  {  // the first K of a window pass, the rest are summed up once the window is over
    ReportLimiter l(3, [](size_t code) { return code == 2; });
    uint64_t admitted = 0;
    for (int i = 0; i < 1000; ++i) admitted += l.admit(0, 10);
    CHECK(admitted == K);
    CHECK(l.suppressing());
    l.take_summaries(10 + W - 1, collect);
    CHECK(out.empty());  // the window is not over
    l.take_summaries(10 + W, collect);
    CHECK(out.size() == 1 && out[0].code == 0 && out[0].n == 1000 - K && out[0].ms == W);
    CHECK(!l.suppressing());
    // The summary counts against the next window: K - 1 more pass in it.
    admitted = 0;
    for (int i = 0; i < 10; ++i) admitted += l.admit(0, 10 + W + 1);
    CHECK(admitted == K - 1);
  }
  {  // codes are independent; an exempt code is never limited; an unknown index passes
    out.clear();
    ReportLimiter l(3, [](size_t code) { return code == 2; });
    for (uint32_t i = 0; i < K; ++i) l.admit(0, 0);
    CHECK(!l.admit(0, 0));
    CHECK(l.admit(1, 0));
    uint64_t admitted = 0;
    for (int i = 0; i < 100; ++i) admitted += l.admit(2, 0);
    CHECK(admitted == 100);
    CHECK(l.admit(7, 0));
    // A quiet code starts a fresh window; take_all says what is suppressed even mid-window.
    l.take_all(5, collect);
    CHECK(out.size() == 1 && out[0].code == 0 && out[0].n == 1);
    CHECK(!l.suppressing());
  }
  {  // a sustained flood: at most K + 1 reports a window
    out.clear();
    ReportLimiter l(1, nullptr);
    uint64_t admitted = 0, total = 0;
    for (uint64_t t = 0; t < 10 * W; t += 10) {
      l.take_summaries(t, collect);
      for (int i = 0; i < 100; ++i, ++total) admitted += l.admit(0, t);
    }
    l.take_all(10 * W, collect);
    uint64_t summed = 0;
    for (const Summary& s : out) summed += s.n;
    CHECK(admitted + summed == total);
    CHECK(admitted + out.size() <= 10 * (K + 1) + 1);
  }
  return check::finish("report_limiter_test");
}
