#include "core/publisher.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>
#include <unordered_set>

#include <uv.h>

#include "core/error_codes.h"
#include "core/sql.h"
#include "core/stats.h"

namespace pgadapter {

namespace {
constexpr size_t kMaxBatchMessages = 2000;
constexpr size_t kMaxBatchBytes = 4 << 20;

std::string sqlstate(PGresult* res) {
  const char* code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  return code ? code : "";
}

// Bytes hashed 32 at a time in four independent multiply chains: std::hash runs one chain, 8 bytes a
// step, and took 4% of a sender's CPU on 4 KB broadcasts. Seeded per process: with fixed constants a
// client whose text the server emits could compute colliding payloads offline and make each batch's
// duplicate check quadratic (2,000 collisions: about 200 ms a batch).
uint64_t hash_bytes(std::string_view s) {
  static const uint64_t seed = []() -> uint64_t {
    try {
      std::random_device rd;
      return (static_cast<uint64_t>(rd()) << 32) ^ rd();
    } catch (...) {
      return uv_hrtime();  // no entropy source: a clock is still not known in advance
    }
  }();
  constexpr uint64_t kOdd1 = 0x9E3779B97F4A7C15ull, kOdd2 = 0xC2B2AE3D27D4EB4Full;
  const auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  uint64_t lane[4] = {kOdd1 ^ seed, kOdd2 + seed, s.size() ^ rotl(seed, 32), ~kOdd1 - seed};
  size_t i = 0;
  for (; i + 32 <= s.size(); i += 32) {
    for (size_t j = 0; j < 4; ++j) {
      uint64_t w;
      std::memcpy(&w, s.data() + i + 8 * j, 8);
      lane[j] = rotl(lane[j] + w * kOdd2, 31) * kOdd1;
    }
  }
  uint64_t h = rotl(lane[0], 1) + rotl(lane[1], 7) + rotl(lane[2], 12) + rotl(lane[3], 18);
  for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * kOdd1;
  h ^= h >> 29;
  h *= kOdd2;
  return h ^ (h >> 32);
}

struct PairHash {
  size_t operator()(const std::pair<std::string_view, std::string_view>& p) const {
    return static_cast<size_t>(hash_bytes(p.second) * 31 + hash_bytes(p.first));
  }
};
}  // namespace

Publisher::Publisher(Host host, ConnectionStats& counts, size_t max_queue, Hooks hooks)
    : ConnectionOwner("publishing", counts, std::move(host)), max_queue_(max_queue), hooks_(std::move(hooks)) {}

bool Publisher::push(OutMessage message) {
  // The limit is on what waits across turns of the loop. The messages of this turn (one synchronous loop of
  // emits: a message to each of many rooms) leave together at its end and count from the next turn on,
  // unless PostgreSQL is known to be down: then they would only wait.
  const size_t earlier = queue_.size() > turn_added_ ? queue_.size() - turn_added_ : 0;
  if (abandoned_ || (outage() ? queue_.size() : earlier) >= max_queue_) return false;
  queue_.push_back(std::move(message));
  ++turn_added_;
  // Nothing in flight or waiting: this one leaves at once, inside emit() (a process that exits right after
  // still publishes it, and it does not wait behind synchronous work). What follows in the same phase of the
  // loop waits for its end and leaves together, pipelined behind it (or at once, if libuv refuses a hook:
  // then no turn is told apart, and nothing is exempt from the limit).
  const bool alone = queue_.size() == 1 && statements_.empty();
  const bool hooked = after_io_.start(conn().loop(), this) && before_io_.start(conn().loop(), this);
  if (!hooked) turn_added_ = 0;
  if (alone || !hooked) pump();
  // Weak mode: a queued message keeps the loop alive until it is sent.
  conn().update_keepalive();
  return true;
}

void Publisher::on_loop_turn() {
  after_io_.stop();
  before_io_.stop();
  turn_added_ = 0;
  pump();
}

void Publisher::set_recovery(Recovery* recovery, std::string uid) {
  recovery_ = recovery;
  uid_ = std::move(uid);
  if (connected()) conn().enqueue_front(recovery_->setup_queries(conn().raw()));
}

void Publisher::add_setup(const std::string& table, std::vector<Query>& setup) {
  table_ = table;
  if (!create_table_.empty()) {
    Query create;
    create.sql = sql::create_table(table);
    create.done = [this](PGresult* res, const std::string& error) {
      // Two servers creating the table at once: one of them loses the race (on the table or its row
      // type), harmlessly.
      const std::string code = sqlstate(res);
      if (!error.empty() && res != nullptr && code != "42P07" && code != "23505" && code != "42710") {
        report("cannot create table " + create_table_ + ": " + error, codes::CREATE_TABLE_FAILED);
      }
    };
    setup.push_back(std::move(create));
  }
  if (recovery_) {
    for (Query& q : recovery_->setup_queries(conn().raw())) setup.push_back(std::move(q));
  }
  for (Query& q : setup_queries()) setup.push_back(std::move(q));
}

void Publisher::on_connection_lost() {
  if (hooks_.release_own) hooks_.release_own();
  unlog_queued();
}

std::vector<Query> Publisher::setup_queries() const {
  std::vector<Query> out(4);
  // Cluster messages are ephemeral: no need to wait for the WAL flush while holding
  // PostgreSQL's cluster-wide NOTIFY commit lock.
  out[0].sql = "SET synchronous_commit TO off";
  // Large attachment rows are compressed by TOAST: lz4 costs the server a fraction of pglz's CPU (and any
  // reader decompresses either). PostgreSQL 13, or a server built without lz4, refuses it: harmless, nobody
  // waits for this result and the session keeps the default.
  out[1].sql = "SELECT pg_catalog.set_config('default_toast_compression', 'lz4', false)";
  out[2].prepare = true;
  out[2].name = sql::kNotifyOne;
  out[2].sql = sql::kNotifyOneSql;
  out[3].prepare = true;
  out[3].name = sql::kNotifyMany;
  out[3].sql = sql::kNotifyManySql;
  return out;
}

void Publisher::pump() {
  while (!abandoned_ && sent_ < queue_.size() && statements_.size() < conn().depth() && conn().ready()) {
    // A logged statement runs alone (recovery's order: see send_logged), and so do the pieces of a refused
    // one: retried one at a time, they keep their order among themselves and overtake nothing.
    if (!statements_.empty() && (statements_.back().alone || !pieces_.empty())) return;
    const OutMessage& next = queue_[sent_];
    if (hooks_.can_send && !hooks_.can_send(next.channel)) return;
    if (next.log && (recovery_ == nullptr || !recovery_->usable())) {
      unlog(sent_, queue_.size() - sent_);
      continue;  // (the callbacks may have sent something already)
    }
    if (next.log) {
      if (statements_.empty()) send_logged();
      return;
    }
    if (next.attachment) {
      send_attachments();
    } else {
      send_batch();
    }
  }
}

void Publisher::sent(size_t count, bool logged, Query q) {
  statements_.push_back({count, logged || !pieces_.empty()});
  sent_ += count;
  // What this statement took of the current piece (see finish).
  if (!pieces_.empty()) {
    if (pieces_.front() > count) {
      pieces_.front() -= count;
    } else {
      pieces_.pop_front();
    }
  }
  conn().enqueue(std::move(q));
}

void Publisher::done(size_t count) {
  if (!statements_.empty()) statements_.pop_front();
  sent_ -= std::min(sent_, count);
}

// A run of attachments: one statement inserts every row and sends every notification.
void Publisher::send_attachments() {
  std::vector<const std::string*> payloads, channels, headers;
  size_t bytes = 0;
  for (auto it = queue_.begin() + static_cast<std::ptrdiff_t>(sent_); it != queue_.end(); ++it) {
    const OutMessage& m = *it;
    if (!m.attachment || m.log || payloads.size() >= batch_limit() || bytes >= kMaxBatchBytes) break;
    if (!payloads.empty() && hooks_.can_send && !hooks_.can_send(m.channel)) break;
    payloads.push_back(&m.payload);
    channels.push_back(&m.channel);
    headers.push_back(&m.header_prefix);
    bytes += m.payload.size();
  }
  const size_t count = payloads.size();
  Query q;
  q.sql = sql::insert_and_notify(table_);
  q.params.resize(4);
  sql::append_binary_array(sql::kByteaOid, payloads, q.params[0]);
  sql::append_binary_array(sql::kTextOid, channels, q.params[1]);
  sql::append_binary_array(sql::kTextOid, headers, q.params[2]);
  q.params[3] = table_;
  q.param_formats = {1, 1, 1, 0};
  q.done = [this, count](PGresult* res, const std::string& error) { finish(count, res == nullptr, error); };
  sent(count, false, std::move(q));
}

// A run of recoverable broadcasts: logged with their offsets and announced by one statement. It is sent
// only when nothing else is in flight, and nothing is sent while it is: the listener matches our own
// logged results to our own notifications in stream order (see listener.h).
void Publisher::send_logged() {
  std::vector<const OutMessage*> run;
  size_t bytes = 0;
  for (auto it = queue_.begin() + static_cast<std::ptrdiff_t>(sent_); it != queue_.end(); ++it) {
    const OutMessage& m = *it;
    if (!m.log || run.size() >= batch_limit() || bytes >= kMaxBatchBytes) break;
    if (!run.empty() && hooks_.can_send && !hooks_.can_send(m.channel)) break;
    run.push_back(&m);
    bytes += m.payload.size() + m.log->packet.size();
  }
  const size_t count = run.size();
  Query q = recovery_->log_batch(conn().raw(), table_, uid_, run);
  q.done = [this, count](PGresult* res, const std::string& error) { on_logged(count, res, error); };
  sent(count, true, std::move(q));
}

void Publisher::on_logged(size_t count, PGresult* res, const std::string& error) {
  done(count);  // nothing else was in flight: its messages are at the front of the queue
  if (abandoned_) return;  // closing: abandon() settled these messages
  if (res != nullptr && !error.empty()) {
    // Refused (tables missing, no privilege, statement timeout...): nothing was committed, so the
    // messages go out again unlogged. Cross-server delivery never depends on the recovery tables.
    const std::string state = sqlstate(res);
    if (state == "42P01" || state == "42501" || state == "42703") {
      recovery_->mark_unavailable("logging a broadcast failed: " + error);
    } else {
      report("could not log " + std::to_string(count) + " recoverable broadcast" + (count == 1 ? "" : "s") +
                        " (" + error + "): sent without recovery",
                    codes::RECOVERY_FAILED);
    }
    // Sent again together; if that fails too, finish() halves them.
    if (count > 1) pieces_.push_front(count);
    unlog(0, count);
    pump();
    return;
  }
  std::vector<std::string> offsets(count);
  if (res != nullptr && error.empty() && PQntuples(res) == static_cast<int>(count) && PQnfields(res) == 2) {
    for (size_t i = 0; i < count; ++i) {
      const char* v = PQgetvalue(res, static_cast<int>(i), 0);
      const int n = PQgetlength(res, static_cast<int>(i), 0);
      bool digits = n > 0 && n <= 18;
      for (int k = 0; k < n && digits; ++k) digits = v[k] >= '0' && v[k] <= '9';
      if (digits) offsets[i].assign(v, static_cast<size_t>(n));
    }
  }
  if (stats()) stats()->on_batch_done(queue_, count, error.empty(), uv_hrtime());
  std::vector<std::unique_ptr<LogRecord>> logs;
  for (size_t i = 0; i < count && !queue_.empty(); ++i) {
    logs.push_back(std::move(queue_.front().log));
    queue_.pop_front();
  }
  if (!error.empty()) {
    report("failed to publish " + std::to_string(count) + (count == 1 ? " message: " : " messages: ") + error,
                  codes::PUBLISH_FAILED);
  }
  for (size_t i = 0; i < logs.size(); ++i) {
    if (!logs[i] || !logs[i]->done) continue;
    if (!error.empty()) logs[i]->done("", error);
    else if (offsets[i].empty()) logs[i]->done("", "no offset returned");
    else logs[i]->done(offsets[i], "");
  }
  pump();
  if (drained() && hooks_.on_drained) hooks_.on_drained();
}

void Publisher::unlog(size_t from, size_t count) {
  std::vector<std::unique_ptr<LogRecord>> logs;
  for (size_t i = from; i < from + count && i < queue_.size(); ++i) {
    if (!queue_[i].log) continue;
    logs.emplace_back();
    make_plain(queue_[i], &logs.back());
  }
  if (logs.empty()) return;
  if (hooks_.release_own) hooks_.release_own();
  // Last: these may run JavaScript that queues more messages.
  for (auto& log : logs) {
    if (log->done) log->done("", "");
  }
}

void Publisher::unlog_queued() {
  // Those in flight (if any) are settled by their own results.
  unlog(sent_, queue_.size());
}

void Publisher::send_batch() {
  // Take the longest run of small messages that may share one transaction. PostgreSQL folds
  // identical notifications of one transaction into one, so a repeated (channel, payload)
  // starts the next batch instead.
  std::unordered_set<std::pair<std::string_view, std::string_view>, PairHash> seen;
  std::vector<const std::string*> channels, payloads;
  size_t bytes = 0;
  for (auto it = queue_.begin() + static_cast<std::ptrdiff_t>(sent_); it != queue_.end(); ++it) {
    const OutMessage& m = *it;
    if (m.attachment || m.log || channels.size() >= batch_limit() || bytes >= kMaxBatchBytes) break;
    if (!channels.empty() && hooks_.can_send && !hooks_.can_send(m.channel)) break;
    if (!seen.emplace(m.channel, m.payload).second) break;
    channels.push_back(&m.channel);
    payloads.push_back(&m.payload);
    bytes += m.payload.size();
  }
  const size_t count = channels.size();
  Query q;
  if (count == 1) {
    q.name = sql::kNotifyOne;
    q.params = {*channels[0], *payloads[0]};
  } else {
    q.name = sql::kNotifyMany;
    q.params.resize(2);
    sql::append_binary_array(sql::kTextOid, channels, q.params[0]);
    sql::append_binary_array(sql::kTextOid, payloads, q.params[1]);
    q.param_formats = {1, 1};
  }
  q.done = [this, count](PGresult* res, const std::string& error) { finish(count, res == nullptr, error); };
  sent(count, false, std::move(q));
}

size_t Publisher::batch_limit() const {
  return pieces_.empty() ? kMaxBatchMessages : std::min(kMaxBatchMessages, pieces_.front());
}

void Publisher::abandon(const std::string& why, bool report_unsent) {
  if (abandoned_) return;
  abandoned_ = true;
  after_io_.stop();
  before_io_.stop();
  pieces_.clear();
  std::deque<OutMessage> left = std::move(queue_);
  queue_.clear();
  if (report_unsent && !left.empty()) {
    report("closing with " + std::to_string(left.size()) + " messages not yet published", codes::PUBLISH_FAILED);
  }
  for (OutMessage& m : left) {
    // Logged messages in flight stay queued until their result: settled here, on_logged then skips them.
    if (m.log && m.log->done) m.log->done("", why);
  }
}

void Publisher::finish(size_t count, bool lost, const std::string& error) {
  done(count);
  if (abandoned_) return;  // closing: already reported by abandon()
  if (!error.empty() && !lost && count > 1) {
    // PostgreSQL refused the statement, so none of its messages went out (one statement, one
    // transaction): send them again in two halves, in order, until the bad ones stand alone. They
    // wait behind the statements already in flight, which necessarily go first.
    const auto refused_end = queue_.begin() + static_cast<std::ptrdiff_t>(count);
    std::rotate(queue_.begin(), refused_end, refused_end + static_cast<std::ptrdiff_t>(sent_));
    pieces_.push_front(count / 2);
    pieces_.push_front(count - count / 2);
  } else {
    const std::string what = count == 1 && !queue_.empty()
                                 ? "1 message on channel \"" + queue_.front().channel + "\""
                                 : std::to_string(count) + " messages";
    if (stats()) stats()->on_batch_done(queue_, count, error.empty(), uv_hrtime());
    for (size_t i = 0; i < count && !queue_.empty(); ++i) queue_.pop_front();
    // Reported once the queue is consistent: the handler may publish again.
    if (!error.empty()) report("failed to publish " + what + ": " + error, codes::PUBLISH_FAILED);
  }
  pump();
  if (drained() && hooks_.on_drained) hooks_.on_drained();
}

}  // namespace pgadapter
