#include "core/report_limiter.h"

namespace pgadapter {

ReportLimiter::ReportLimiter(size_t codes, std::function<bool(size_t)> exempt) : windows_(codes), exempt_(codes) {
  for (size_t i = 0; i < codes; ++i) exempt_[i] = exempt && exempt(i);
}

bool ReportLimiter::admit(size_t code, uint64_t now_ms) {
  if (code >= windows_.size() || exempt_[code]) return true;
  Window& w = windows_[code];
  if (w.suppressed == 0 && (w.admitted == 0 || now_ms >= w.start + kWindowMs)) {
    // A window with suppressed reports ends only with its summary (take_summaries), so that the
    // summary comes before anything reported after it.
    w.start = now_ms;
    w.admitted = 0;
  }
  if (w.admitted < kPerWindow) {
    ++w.admitted;
    return true;
  }
  if (w.suppressed++ == 0) ++suppressing_;
  return false;
}

void ReportLimiter::take_summaries(uint64_t now_ms, const std::function<void(size_t, uint64_t, uint64_t)>& summary) {
  take(now_ms, false, summary);
}

void ReportLimiter::take_all(uint64_t now_ms, const std::function<void(size_t, uint64_t, uint64_t)>& summary) {
  take(now_ms, true, summary);
}

void ReportLimiter::take(uint64_t now_ms, bool all, const std::function<void(size_t, uint64_t, uint64_t)>& summary) {
  for (size_t i = 0; i < windows_.size(); ++i) {
    Window& w = windows_[i];
    if (w.suppressed == 0 || (!all && now_ms < w.start + kWindowMs)) continue;
    const uint64_t n = w.suppressed;
    const uint64_t span = now_ms > w.start ? now_ms - w.start : 0;
    // The summary opens the next window: at most kPerWindow more reports of this code plus one
    // summary per window, however long the flood lasts.
    w.start = now_ms;
    w.admitted = 1;
    w.suppressed = 0;
    --suppressing_;
    summary(i, n, span);
  }
}

}  // namespace pgadapter
