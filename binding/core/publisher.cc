#include "core/publisher.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "core/sql.h"
#include "core/stats.h"
#include "core/error_codes.h"

namespace pgadapter {

namespace {
constexpr size_t kMaxBatchMessages = 2000;
constexpr size_t kMaxBatchBytes = 4 << 20;

struct PairHash {
  size_t operator()(const std::pair<std::string_view, std::string_view>& p) const {
    return std::hash<std::string_view>()(p.second) * 31 + std::hash<std::string_view>()(p.first);
  }
};
}  // namespace

Publisher::Publisher(PgConnection& conn, size_t max_queue, Hooks hooks)
    : conn_(conn), max_queue_(max_queue), hooks_(std::move(hooks)) {}

bool Publisher::push(OutMessage message) {
  if (queue_.size() >= max_queue_) return false;
  queue_.push_back(std::move(message));
  pump();
  return true;
}

std::vector<Query> Publisher::setup_queries() const {
  std::vector<Query> out(3);
  // Cluster messages are ephemeral: no need to wait for the WAL flush while holding
  // PostgreSQL's cluster-wide NOTIFY commit lock.
  out[0].sql = "SET synchronous_commit TO off";
  out[1].prepare = true;
  out[1].name = sql::kNotifyOne;
  out[1].sql = sql::kNotifyOneSql;
  out[2].prepare = true;
  out[2].name = sql::kNotifyMany;
  out[2].sql = sql::kNotifyManySql;
  return out;
}

void Publisher::pump() {
  if (busy_ || queue_.empty() || !conn_.ready()) return;
  if (hooks_.can_send && !hooks_.can_send(queue_.front().channel)) return;
  if (queue_.front().log) {
    send_logged();
  } else if (queue_.front().attachment) {
    send_attachments();
  } else {
    send_batch();
  }
}

// A run of attachments: one statement inserts every row and sends every notification.
void Publisher::send_attachments() {
  std::vector<const std::string*> payloads, channels, headers;
  size_t bytes = 0;
  for (const OutMessage& m : queue_) {
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
  busy_ = true;
  in_flight_ = count;
  conn_.enqueue(std::move(q));
}

// A recoverable broadcast: logged with its offset and announced by one statement (see sql.h).
void Publisher::send_logged() {
  OutMessage& m = queue_.front();
  const LogRecord& log = *m.log;
  std::vector<const std::string*> rooms, except;
  for (const auto& r : log.rooms) rooms.push_back(&r);
  for (const auto& r : log.except) except.push_back(&r);
  Query q;
  q.sql = sql::log_and_notify(log_table_, table_, m.attachment);
  q.params.resize(m.attachment ? 10 : 8);
  q.params[0] = log_table_;
  q.params[1] = log.uid;
  q.params[2] = log.nsp;
  sql::append_binary_array(sql::kTextOid, rooms, q.params[3]);
  sql::append_binary_array(sql::kTextOid, except, q.params[4]);
  q.params[5] = log.packet;
  q.params[6] = m.channel;
  q.params[7] = m.attachment ? m.header_prefix : m.payload;
  q.param_formats = {0, 0, 0, 1, 1, 1, 0, 0};
  if (m.attachment) {
    q.params[8] = m.payload;
    q.params[9] = table_;
    q.param_formats.push_back(1);
    q.param_formats.push_back(0);
  }
  auto done = std::move(m.log->done);
  q.done = [this, done = std::move(done)](PGresult* res, const std::string& error) {
    std::string offset;
    if (error.empty() && res != nullptr && PQntuples(res) == 1) offset = PQgetvalue(res, 0, 0);
    if (done) done(offset, error.empty() && offset.empty() ? "no offset returned" : error);
    finish(1, res == nullptr, error);
  };
  busy_ = true;
  in_flight_ = 1;
  conn_.enqueue(std::move(q));
}

void Publisher::send_batch() {
  // Take the longest run of small messages that may share one transaction. PostgreSQL folds
  // identical notifications of one transaction into one, so a repeated (channel, payload)
  // starts the next batch instead.
  std::unordered_set<std::pair<std::string_view, std::string_view>, PairHash> seen;
  std::vector<const std::string*> channels, payloads;
  size_t bytes = 0;
  for (const OutMessage& m : queue_) {
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
  busy_ = true;
  in_flight_ = count;
  conn_.enqueue(std::move(q));
}

size_t Publisher::batch_limit() const {
  return pieces_.empty() ? kMaxBatchMessages : std::min(kMaxBatchMessages, pieces_.front());
}

void Publisher::finish(size_t count, bool lost, const std::string& error) {
  busy_ = false;
  size_t rest = 0;  // of the current piece, not taken by this statement
  if (!pieces_.empty()) {
    rest = pieces_.front() > count ? pieces_.front() - count : 0;
    pieces_.pop_front();
  }
  if (!error.empty() && !lost && count > 1) {
    // PostgreSQL refused the statement, so none of its messages went out (one statement, one
    // transaction): send them again in two halves, in order, until the bad ones stand alone.
    if (rest > 0) pieces_.push_front(rest);
    pieces_.push_front(count / 2);
    pieces_.push_front(count - count / 2);
  } else {
    if (rest > 0) pieces_.push_front(rest);
    const std::string what = count == 1 && !queue_.empty()
                                 ? "a message on channel \"" + queue_.front().channel + "\""
                                 : std::to_string(count) + " messages";
    if (stats_) stats_->on_batch_done(queue_, count, error.empty(), uv_hrtime());
    for (size_t i = 0; i < count && !queue_.empty(); ++i) queue_.pop_front();
    // Reported once the queue is consistent: the handler may publish again.
    if (!error.empty() && hooks_.report) hooks_.report("failed to publish " + what + ": " + error, codes::PUBLISH_FAILED);
  }
  pump();
  if (drained() && hooks_.on_drained) hooks_.on_drained();
}

}  // namespace pgadapter
