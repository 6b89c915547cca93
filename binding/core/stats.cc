#include "core/stats.h"

#include <algorithm>
#include <cmath>

namespace pgadapter {

namespace {
#define PGADAPTER_CODE_NAME(code, meaning) #code,
constexpr const char* kCodeNames[] = {PGADAPTER_ERROR_CODES(PGADAPTER_CODE_NAME)};
#undef PGADAPTER_CODE_NAME
}  // namespace

void Stats::on_batch_done(const std::deque<OutMessage>& queue, size_t count, bool ok, uint64_t now_ns) {
  count = std::min(count, queue.size());
  if (!ok) {
    dropped_failed += count;
    return;
  }
  size_t attachments = 0, bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const OutMessage& m = queue[i];
    if (m.attachment) ++attachments;
    bytes += m.payload.size();
    if (m.queued_at_ns != 0 && now_ns >= m.queued_at_ns) {
      samples_.push_back({now_ns, static_cast<double>(now_ns - m.queued_at_ns) / 1e6});
      if (samples_.size() > kWindowSize) samples_.pop_front();
    }
  }
  published_messages += count;
  published_attachments += attachments;
  published_bytes += bytes;
  if (log) {
    log("published " + std::to_string(count) + (count == 1 ? " message" : " messages") + " (" +
        std::to_string(attachments) + " attachments, " + std::to_string(bytes) + " bytes) in one statement");
  }
}

void Stats::on_received(const std::vector<Inbound>& batch) {
  received_messages += batch.size();
  for (const Inbound& in : batch) {
    if (in.attachment) ++received_attachments;
  }
}

size_t Stats::on_error(const std::string& code) {
  for (size_t i = 0; i < kCodes; ++i) {
    if (code == kCodeNames[i]) {
      ++errors_[i];
      return i;
    }
  }
  return kCodes;
}

const char* Stats::code_name(size_t index) { return index < kCodes ? kCodeNames[index] : ""; }

std::vector<std::pair<const char*, uint64_t>> Stats::errors() const {
  std::vector<std::pair<const char*, uint64_t>> out;
  for (size_t i = 0; i < kCodes; ++i) {
    if (errors_[i] > 0) out.emplace_back(kCodeNames[i], errors_[i]);
  }
  return out;
}

bool Stats::latency(uint64_t now_ns, double& p50, double& p99) const {
  const uint64_t window_ns = kWindowMs * 1000000ULL;
  while (!samples_.empty() && now_ns > samples_.front().at_ns + window_ns) samples_.pop_front();
  if (samples_.empty()) return false;
  std::vector<double> ms;
  ms.reserve(samples_.size());
  for (const Sample& s : samples_) ms.push_back(s.ms);
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  auto rank = [&](double q) {
    size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(ms.size())));
    k = std::clamp<size_t>(k, 1, ms.size()) - 1;
    std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(k), ms.end());
    return ms[k];
  };
  p50 = rank(0.50);
  p99 = rank(0.99);
  return true;
}

}  // namespace pgadapter
