// Rate limit of the reports handed to the errorHandler, per error code: a flood (one hostile
// statement can NOTIFY 100,000 times) must not become 100,000 calls into JavaScript. Within a window
// of kWindowMs, the first kPerWindow reports of a code go through; the rest are only counted and, once
// the window is over, summed up in one report of that code. Counting every occurrence is Stats' job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace pgadapter {

class ReportLimiter {
 public:
  static constexpr uint64_t kWindowMs = 1000;
  static constexpr uint32_t kPerWindow = 5;

  // `codes`: how many codes there are (indexes 0 .. codes-1); `exempt(i)`: a code never limited.
  ReportLimiter(size_t codes, std::function<bool(size_t)> exempt);

  // True: hand this report over. False: suppressed (counted for the summary).
  bool admit(size_t code, uint64_t now_ms);
  // Calls `summary(code, suppressed, window_ms)` for every window over with reports suppressed.
  void take_summaries(uint64_t now_ms, const std::function<void(size_t, uint64_t, uint64_t)>& summary);
  // Same, for every window (closing: nothing suppressed goes unsaid).
  void take_all(uint64_t now_ms, const std::function<void(size_t, uint64_t, uint64_t)>& summary);
  bool suppressing() const { return suppressing_ > 0; }

 private:
  struct Window {
    uint64_t start = 0;
    uint32_t admitted = 0;
    uint64_t suppressed = 0;
  };
  void take(uint64_t now_ms, bool all, const std::function<void(size_t, uint64_t, uint64_t)>& summary);

  std::vector<Window> windows_;
  std::vector<bool> exempt_;
  size_t suppressing_ = 0;  // windows with suppressed reports
};

}  // namespace pgadapter
