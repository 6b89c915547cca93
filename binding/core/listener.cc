#include "core/listener.h"

#include <cstring>
#include <unordered_map>

#include "core/broadcast_relay.h"
#include "core/error_codes.h"
#include "core/json_codec.h"
#include "core/msgpack_codec.h"
#include "core/notification_format.h"
#include "core/presence.h"
#include "core/sql.h"
#include "core/stats.h"

namespace pgadapter {

namespace {

constexpr size_t kMaxFetchBatch = 500;
// Payload bytes one fetch may bring (a larger single row still comes, alone).
constexpr size_t kMaxFetchBytes = 64u << 20;
// What may wait for delivery (behind an attachment being fetched): past either bound, new
// notifications are dropped and reported. Bytes are counted as received (JSON text, msgpack).
constexpr size_t kMaxInboundMessages = 100000;
constexpr size_t kMaxInboundBytes = 256u << 20;
// Attachment ids remembered to refuse a second announcement (senders take ids from a sequence).
constexpr size_t kRememberedIds = 100000;

// attachmentId / offset: a string of digits (pg returns bigserial as a string) or an integer.
bool parse_id(const Value& v, int64_t& id) {
  if (v.kind == Value::Kind::Int) {
    id = v.integer;
    return id > 0;
  }
  if (v.kind != Value::Kind::String || v.str.empty() || v.str.size() > 18) return false;
  int64_t n = 0;
  for (char c : v.str) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  id = n;
  return n > 0;
}

int64_t read_int8(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return static_cast<int64_t>(v);
}

std::string clip(const std::string& s) { return s.size() > 120 ? s.substr(0, 120) + "..." : s; }

}  // namespace

Listener::Listener(Host host, ConnectionStats& counts, std::string uid, Hooks hooks)
    : ConnectionOwner("listening", counts, std::move(host)), uid_(std::move(uid)), hooks_(std::move(hooks)) {}

Query Listener::listen_query(const std::string& channel, bool listen) {
  Query q;
  std::string quoted, error;
  if (!sql::quote_identifier(conn().raw(), channel, quoted, error)) quoted = "\"\"";
  q.sql = std::string(listen ? "LISTEN " : "UNLISTEN ") + quoted;
  q.per_connection = true;
  if (listen) {
    q.done = [this, channel](PGresult* res, const std::string& err) {
      // No result: the connection was lost (reported by the client) or closed; a new session LISTENs again.
      if (res == nullptr && !err.empty()) return;
      if (!err.empty()) report("LISTEN " + channel + " failed: " + err, codes::LISTEN_FAILED);
      // Confirmed or refused, the first answer is in: what is published on this channel (and what is
      // queued behind it) stops waiting.
      auto it = channels_.find(channel);
      if (it != channels_.end() && !it->second) {
        it->second = true;
        if (hooks_.on_listening) hooks_.on_listening(channel);
      }
    };
  }
  return q;
}

void Listener::add(const std::string& channel) {
  if (!channels_.emplace(channel, false).second) return;
  if (connected()) conn().enqueue(listen_query(channel, true));
}

void Listener::remove(const std::string& channel) {
  if (channels_.erase(channel) == 0) return;
  if (connected()) conn().enqueue(listen_query(channel, false));
}

bool Listener::listening(const std::string& channel) const {
  auto it = channels_.find(channel);
  return it != channels_.end() && it->second;
}

bool Listener::awaiting_first_listen(const std::string& channel) const {
  auto it = channels_.find(channel);
  return it != channels_.end() && !it->second;
}

void Listener::add_setup(const std::string& table, std::vector<Query>& setup) {
  table_ = table;
  // A SQL_ASCII database checks the text it sends a UTF8 client: one notification that is not UTF-8 (any
  // role may NOTIFY) would fail in our backend and end this session. As SQL_ASCII, it arrives unchecked
  // and our parser deals with it (text that is not UTF-8 becomes U+FFFD, as everywhere).
  const char* encoding = PQparameterStatus(conn().raw(), "server_encoding");
  if (encoding != nullptr && std::strcmp(encoding, "SQL_ASCII") == 0) {
    Query q;
    q.sql = "SELECT pg_catalog.set_config('client_encoding', 'SQL_ASCII', false)";
    q.per_connection = true;  // rerun by the next connect's setup
    setup.push_back(std::move(q));
  }
  // Before the LISTENs: a peer that hears us is sure to see our presence.
  if (!presence_name_.empty()) setup.push_back(presence_name_query(presence_name_));
  for (Query& q : setup_queries()) setup.push_back(std::move(q));
}

void Listener::set_presence_name(const std::string& name) {
  if (name.empty() || name == presence_name_) return;
  presence_name_ = name;
  if (connected()) conn().enqueue(presence_name_query(name));
}

std::vector<Query> Listener::setup_queries() {
  std::vector<Query> out;
  for (const auto& [channel, confirmed] : channels_) out.push_back(listen_query(channel, true));
  if (recovery_) out.push_back(baseline_query());
  return out;
}

// After (re)LISTENing: what committed before can only be replayed, never arrive live. Run on this
// connection after the LISTENs, so every commit after its snapshot is notified to us.
Query Listener::baseline_query() {
  synced_ = false;
  return recovery_->baseline(conn().raw(), [this](bool ok, int64_t max_id) {
    if (ok) baseline_ = std::max(baseline_, max_id);
    synced_ = true;
    // Own broadcasts committed before the snapshot: their notifications may never come.
    while (!own_results_.empty() && own_results_.begin()->first <= baseline_) {
      auto node = own_results_.extract(own_results_.begin());
      insert_own(node.key(), std::move(node.mapped().deliver));
    }
  });
}

void Listener::restore_point(std::function<void(bool, int64_t)> done) {
  if (restore_ready()) return done(true, restore_baseline());
  waiting_restores_.push_back(std::move(done));  // bounded by the restores in flight (Client, JS)
}

bool Listener::restore_ready() const {
  const int64_t floor = std::max(last_offset_, restored_);
  for (const Entry& e : inbound_) {
    if (e.check != Check::None && e.offset > floor && e.offset <= baseline_) return false;
  }
  return true;
}

int64_t Listener::restore_baseline() {
  int64_t b = baseline_;
  const int64_t floor = std::max(last_offset_, restored_);
  for (const Entry& e : inbound_) {
    if (e.state != State::Dropped && e.offset > floor && e.offset <= b) b = e.offset - 1;
  }
  restored_ = std::max(restored_, b);
  return b;
}

void Listener::settle_restores() {
  if (waiting_restores_.empty() || !restore_ready()) return;
  auto ready = std::move(waiting_restores_);
  waiting_restores_.clear();
  for (auto& fn : ready) fn(true, restore_baseline());
}

void Listener::fail_restores() {
  auto failed = std::move(waiting_restores_);
  waiting_restores_.clear();
  for (auto& fn : failed) fn(false, 0);
}

void Listener::set_recovery(Recovery* recovery) {
  const bool first = recovery_ == nullptr;
  recovery_ = recovery;
  if (first && recovery_ && connected()) conn().enqueue(baseline_query());
}

void Listener::on_connection_lost() {
  synced_ = false;
  // Nothing to order our results against until we listen again.
  while (!own_results_.empty()) {
    auto node = own_results_.extract(own_results_.begin());
    insert_own(node.key(), std::move(node.mapped().deliver));
  }
  for (Entry& e : inbound_) {
    if (e.check == Check::InFlight) e.check = Check::Waiting;
  }
  verifying_ = false;
  fail_restores();  // their checks wait for the next session: the clients get fresh sessions instead
}

void Listener::on_connected() {
  for (Entry& e : inbound_) {
    if (e.state == State::Fetching) e.state = State::Pending;
  }
  fetching_ = false;
  fetch();
  verify();
}

void Listener::on_notifications(std::vector<Notification>& batch) {
  for (Notification& note : batch) accept(note);
  fetch();
  verify();
  deliver();
}

void Listener::accept(Notification& note) {
  if (channels_.count(note.channel) == 0) return;  // UNLISTENed meanwhile
  // Our own publishing session: skip before parsing anything (but for our logged broadcasts).
  if (hooks_.own_backend_pid && note.backend_pid == hooks_.own_backend_pid()) {
    accept_own(note);
    return;
  }
  if (inbound_full()) {
    if (stats()) ++stats()->dropped_inbound;
    if (overflow_dropped_++ == 0) {
      report("the inbound queue is full (" + std::to_string(inbound_.size()) + " messages, " +
                 std::to_string(inbound_bytes_) + " bytes waiting): dropping notifications until it drains",
             codes::INBOUND_OVERFLOW);
    }
    return;
  }

  Entry e;
  e.channel = std::move(note.channel);
  std::string error;
  JsonSpan packet_data;
  if (!parse_json_header(note.payload, e.message, error, kPacketDataPath, packet_data)) {
    return report("ignored a notification on " + e.channel + " that is not JSON (" + error + "): " + clip(note.payload),
                  codes::BAD_NOTIFICATION);
  }
  if (e.message.kind != Value::Kind::Map) {
    return report("ignored a notification on " + e.channel + " that is not a JSON object: " + clip(note.payload),
                  codes::BAD_NOTIFICATION);
  }
  const Value* uid = e.message.get(notification::kUid);
  if (uid != nullptr && uid->kind == Value::Kind::String && uid->str == uid_) return;
  const Value* type = e.message.get(notification::kType);
  if (type == nullptr || type->kind != Value::Kind::Int || (uid != nullptr && uid->kind != Value::Kind::String)) {
    return report("ignored a notification on " + e.channel + " without a numeric type and a string uid: " +
                      clip(note.payload),
                  codes::BAD_NOTIFICATION);
  }
  if (const Value* offset = e.message.get(notification::kOffset); offset != nullptr && recovery_ != nullptr) {
    const Value* nsp = e.message.get(notification::kNsp);
    if (!parse_id(*offset, e.offset) || uid == nullptr || nsp == nullptr || nsp->kind != Value::Kind::String) {
      report("ignored the offset of a notification on " + e.channel + ": not a valid offset of a logged broadcast: " +
                 clip(note.payload),
             codes::BAD_NOTIFICATION);
      e.offset = 0;
    } else {
      const uint64_t now = hooks_.now ? hooks_.now() : 0;
      e.uid = uid->str;
      e.nsp = nsp->str;
      e.pid = note.backend_pid;
      if (suspected(e.pid, now)) {
        // This session sent an offset the log does not have: its offsets wait for no check.
        report_forged(e);
        e.offset = 0;
      } else if (!trusted(e.pid, e.uid, now)) {
        size_t& waiting = waiting_checks_[e.pid];
        if (waiting >= kMaxWaitingPerSession) {
          // One session's unchecked offsets may not fill the queue ahead of everyone else's.
          if (stats()) ++stats()->dropped_inbound;
          return report("dropped a notification on " + e.channel + " from session " + std::to_string(e.pid) + ": " +
                            std::to_string(waiting) + " of its offsets are waiting for their check",
                        codes::INBOUND_OVERFLOW);
        }
        ++waiting;
        e.check = Check::Waiting;
      }
    }
  }
  if (const Value* att = e.message.get(notification::kAttachmentId)) {
    if (!parse_id(*att, e.attachment_id)) {
      return report("ignored a notification on " + e.channel + " with an invalid attachmentId: " + clip(note.payload),
                    codes::BAD_NOTIFICATION);
    }
    // Only an id already delivered is refused here: an id announced before its row exists (any role can
    // guess the next ones) must not shadow the real announcement, which then comes after the commit.
    if (delivered_ids_.count(e.attachment_id) != 0) return report_announced_again(e);
    e.state = State::Pending;
  } else {
    Relayed relayed;
    if (relay_inline(note.payload, e.message, packet_data, relayed)) {
      e.json = std::move(relayed.envelope);
      e.wire = std::move(relayed.wire);
      e.wire_text = relayed.text;
    } else {
      e.json = std::move(note.payload);
    }
    e.message = Value();
    e.bytes = e.json.size() + e.wire.size();
  }
  inbound_bytes_ += e.bytes;
  inbound_.push_back(std::move(e));
}

bool Listener::inbound_full() const {
  // Once full, accept again only below half the bounds: one report per episode, not per message.
  const size_t div = overflow_dropped_ > 0 ? 2 : 1;
  return inbound_.size() >= kMaxInboundMessages / div || inbound_bytes_ >= kMaxInboundBytes / div;
}

void Listener::report_announced_again(const Entry& e) {
  report("ignored attachment " + std::to_string(e.attachment_id) + " on " + e.channel +
             ": announced again (each attachment is announced once)",
         codes::BAD_NOTIFICATION);
}

bool Listener::first_delivery(int64_t attachment_id) {
  if (!delivered_ids_.insert(attachment_id).second) return false;
  delivered_order_.push_back(attachment_id);
  if (delivered_order_.size() > kRememberedIds) {
    delivered_ids_.erase(delivered_order_.front());
    delivered_order_.pop_front();
  }
  return true;
}

namespace {
// A logged notification ends with "offset":"<digits>"} (we wrote it: see Recovery::log_batch).
int64_t trailing_offset(const std::string& payload) {
  const std::string_view key = notification::kOffsetOpen;
  const size_t at = payload.rfind(key);
  if (at == std::string::npos) return 0;
  int64_t n = 0;
  size_t i = at + key.size();
  for (; i < payload.size() && payload[i] >= '0' && payload[i] <= '9' && i - at < 40; ++i) n = n * 10 + (payload[i] - '0');
  return std::string_view(payload).substr(i) == notification::kIdClose ? n : 0;
}
}  // namespace

void Listener::accept_own(const Notification& note) {
  if (recovery_ == nullptr) return;
  const int64_t offset = trailing_offset(note.payload);
  if (offset <= 0) return;
  auto it = own_results_.find(offset);
  if (it != own_results_.end()) {
    Entry e;
    e.offset = offset;
    e.state = State::OwnReady;
    e.own_deliver = std::move(it->second.deliver);
    own_results_.erase(it);
    own_claimed_ = std::max(own_claimed_, offset);
    inbound_.push_back(std::move(e));
    return;
  }
  if (offset <= own_claimed_) return;  // handed back already (see insert_own)
  Entry e;
  e.offset = offset;
  e.state = State::OwnPending;  // the publishing connection's result is still on its way
  e.since = hooks_.now ? hooks_.now() : 0;
  inbound_.push_back(std::move(e));
}

// An own result whose notification will not come in this stream (it committed before our LISTEN,
// or we are not listening): handed back now, before any waiting message with a higher offset.
void Listener::insert_own(int64_t offset, std::function<void()> deliver_fn) {
  own_claimed_ = std::max(own_claimed_, offset);
  Entry e;
  e.offset = offset;
  e.state = State::OwnReady;
  e.own_deliver = std::move(deliver_fn);
  auto at = inbound_.begin();
  while (at != inbound_.end() && at->offset <= offset) ++at;
  inbound_.insert(at, std::move(e));
  deliver();
}

void Listener::own_logged(int64_t offset, std::function<void()> deliver_fn) {
  for (Entry& e : inbound_) {
    if (e.state == State::OwnPending && e.offset == offset) {
      e.state = State::OwnReady;
      e.own_deliver = std::move(deliver_fn);
      own_claimed_ = std::max(own_claimed_, offset);
      deliver();
      return;
    }
  }
  if (!synced_ || !connected() || offset <= baseline_) return insert_own(offset, std::move(deliver_fn));
  own_results_[offset] = OwnResult{std::move(deliver_fn), hooks_.now ? hooks_.now() : 0};
}

void Listener::abandon() {
  // Committed broadcasts whose notification will not come by any more: their offset is final.
  std::vector<std::function<void()>> pending;
  for (Entry& e : inbound_) {
    if (e.own_deliver) pending.push_back(std::move(e.own_deliver));
  }
  inbound_.clear();
  inbound_bytes_ = 0;
  for (auto& [offset, own] : own_results_) pending.push_back(std::move(own.deliver));
  own_results_.clear();
  for (auto& fn : pending) {
    if (fn) fn();
  }
  fail_restores();
}

void Listener::release_own() {
  for (Entry& e : inbound_) {
    if (e.state == State::OwnPending) e.state = State::Dropped;
  }
  while (!own_results_.empty()) {
    auto node = own_results_.extract(own_results_.begin());
    insert_own(node.key(), std::move(node.mapped().deliver));
  }
  deliver();
}

void Listener::expire(uint64_t now_ms) {
  bool changed = false;
  for (Entry& e : inbound_) {
    if (e.state == State::OwnPending && e.since + kOwnWaitMs <= now_ms) {
      e.state = State::Dropped;  // its result never came: the connection is stuck or was lost
      changed = true;
    }
  }
  for (auto it = own_results_.begin(); it != own_results_.end();) {
    if (it->second.since + kOwnWaitMs > now_ms) {
      ++it;
      continue;
    }
    auto deliver_fn = std::move(it->second.deliver);
    const int64_t offset = it->first;
    it = own_results_.erase(it);
    insert_own(offset, std::move(deliver_fn));
    it = own_results_.lower_bound(offset);
  }
  if (changed) deliver();
}

void Listener::settle_check(Entry& e) {
  e.check = Check::None;
  auto it = waiting_checks_.find(e.pid);
  if (it != waiting_checks_.end() && --it->second == 0) waiting_checks_.erase(it);
}

bool Listener::trusted(int pid, const std::string& uid, uint64_t now) const {
  auto w = writers_.find(pid);
  return w != writers_.end() && w->second.first == uid && now < w->second.second + kWriterTrustMs;
}

bool Listener::suspected(int pid, uint64_t now) const {
  auto s = suspects_.find(pid);
  return s != suspects_.end() && now < s->second + kWriterTrustMs;
}

void Listener::report_forged(const Entry& e) {
  report("ignored the offset " + std::to_string(e.offset) + " of a notification on " + e.channel +
             ": the recovery log has no such broadcast from " + clip(e.uid) + " (forged?)",
         codes::BAD_NOTIFICATION);
}

void Listener::verify() {
  if (verifying_ || recovery_ == nullptr || !connected()) return;
  std::vector<int64_t> ids;
  for (Entry& e : inbound_) {
    if (e.check != Check::Waiting) continue;
    e.check = Check::InFlight;
    ids.push_back(e.offset);
    if (ids.size() >= kMaxFetchBatch) break;
  }
  if (ids.empty()) return;
  verifying_ = true;
  conn().enqueue(recovery_->verify(conn().raw(), ids, [this](bool ok, std::vector<LogRow> rows, const std::string& error, bool lost) {
    verifying_ = false;
    if (lost) return;  // checked again once reconnected (on_connection_lost)
    std::unordered_map<int64_t, const LogRow*> by_id;
    for (const LogRow& r : rows) by_id.emplace(r.id, &r);
    const uint64_t now = hooks_.now ? hooks_.now() : 0;
    size_t failed = 0;
    auto matches = [&](const Entry& e) {
      auto it = by_id.find(e.offset);
      return it != by_id.end() && it->second->uid == e.uid && it->second->nsp == e.nsp;
    };
    // One offset the log does not have is enough: the session is suspect, not a writer, and its
    // offsets that the log has are replays of someone else's (a writer's offsets are all its own).
    if (ok) {
      for (const Entry& e : inbound_) {
        if (e.check == Check::InFlight && !matches(e)) {
          if (suspects_.size() >= 1024) suspects_.clear();
          suspects_[e.pid] = now;
          writers_.erase(e.pid);
        }
      }
    }
    for (Entry& e : inbound_) {
      if (e.check != Check::InFlight) continue;
      settle_check(e);
      if (!ok) {
        e.offset = 0;
        ++failed;
      } else if (!matches(e) || suspected(e.pid, now)) {
        report_forged(e);
        e.offset = 0;
      } else {
        if (writers_.size() >= 1024) writers_.clear();
        writers_[e.pid] = {e.uid, now};
      }
    }
    // What waits behind this check from the sessions it judged needs no query of its own: a flood
    // from one session costs one check, and the real messages queued behind it are not kept waiting.
    for (Entry& e : inbound_) {
      if (e.check != Check::Waiting) continue;
      if (suspected(e.pid, now)) {
        report_forged(e);
        e.offset = 0;
        settle_check(e);
      } else if (trusted(e.pid, e.uid, now)) {
        settle_check(e);
      }
    }
    if (failed > 0) {
      report("cannot check " + std::to_string(failed) + " offsets against the recovery log (delivered without): " + error,
             codes::RECOVERY_FAILED);
    }
    verify();
    deliver();
    settle_restores();
  }));
}

void Listener::fetch() {
  if (fetching_ || !connected()) return;
  std::vector<std::string> ids;
  std::unordered_set<int64_t> asked;  // an id announced several times is asked for once
  for (Entry& e : inbound_) {
    if (e.state != State::Pending) continue;
    e.state = State::Fetching;
    if (asked.insert(e.attachment_id).second) ids.push_back(std::to_string(e.attachment_id));
    if (ids.size() >= kMaxFetchBatch) break;
  }
  if (ids.empty()) return;
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) array += ',';
    array += ids[i];
  }
  array += '}';
  Query q;
  q.sql = sql::fetch_attachments(table_);
  q.params = {std::move(array), std::to_string(kMaxFetchBytes)};
  q.result_format = 1;  // binary: raw bytea and int8
  q.per_connection = true;  // on a lost connection, on_connected fetches again
  q.done = [this](PGresult* res, const std::string& error) { on_fetched(res, error); };
  fetching_ = true;
  conn().enqueue(std::move(q));
}

void Listener::on_fetched(PGresult* res, const std::string& error) {
  fetching_ = false;
  if (res == nullptr) {
    // Connection lost: the rows are still there; fetch again once reconnected.
    for (Entry& e : inbound_) {
      if (e.state == State::Fetching) e.state = State::Pending;
    }
    return;
  }
  std::unordered_map<int64_t, int> rows;
  if (error.empty() && PQnfields(res) == 3) {
    const int n = PQntuples(res);
    for (int i = 0; i < n; ++i) {
      if (PQgetlength(res, i, 0) == 8) rows.emplace(read_int8(PQgetvalue(res, i, 0)), i);
    }
  }
  for (Entry& e : inbound_) {
    if (e.state != State::Fetching) continue;
    auto row = rows.find(e.attachment_id);
    if (row != rows.end() && PQgetisnull(res, row->second, 1) && !PQgetisnull(res, row->second, 2)) {
      e.state = State::Pending;  // past this statement's byte budget: the next fetch brings it
      continue;
    }
    e.state = State::Dropped;
    const std::string id = std::to_string(e.attachment_id);
    if (!error.empty()) {
      report("cannot fetch attachment " + id + " on " + e.channel + ": " + error, codes::ATTACHMENT_FETCH_FAILED);
      continue;
    }
    auto it = rows.find(e.attachment_id);
    if (it == rows.end() || PQgetisnull(res, it->second, 1)) {
      report("attachment " + id + " on " + e.channel + " not found (deleted by the cleanup, or never committed)",
             codes::ATTACHMENT_MISSING);
      continue;
    }
    // The first announcement in stream order gets the row; the others were announced again.
    if (!first_delivery(e.attachment_id)) {
      report_announced_again(e);
      continue;
    }
    std::string_view bytes(PQgetvalue(res, it->second, 1), static_cast<size_t>(PQgetlength(res, it->second, 1)));
    Value decoded;
    std::string decode_error;
    size_t values = 0;
    if (!decode_msgpack(bytes, decoded, decode_error, kMaxNesting, &values)) {
      report("attachment " + id + " on " + e.channel + " is not valid msgpack: " + decode_error, codes::BAD_ATTACHMENT);
      continue;
    }
    const Value* type = decoded.get(notification::kType);
    if (decoded.kind != Value::Kind::Map || type == nullptr || type->kind != Value::Kind::Int) {
      report("attachment " + id + " on " + e.channel + " is not a cluster message", codes::BAD_ATTACHMENT);
      continue;
    }
    // What it holds until delivered counts against the inbound limit (a decoded tree is far larger
    // than its msgpack).
    size_t held = 0;
    Relayed relayed;
    if (relay_decoded(decoded, relayed)) {
      e.json = std::move(relayed.envelope);
      e.wire = std::move(relayed.wire);
      e.binaries = std::move(relayed.binaries);
      e.wire_text = relayed.text;
      held = e.json.size() + e.wire.size();
      for (const std::string& b : e.binaries) held += b.size();
    } else {
      e.message = std::move(decoded);
      held = values * sizeof(Value);
    }
    inbound_bytes_ = inbound_bytes_ - e.bytes + held;
    e.bytes = held;
    e.state = State::Ready;
  }
  fetch();
  deliver();
}

void Listener::deliver() {
  std::vector<Inbound> batch;
  auto flush = [&] {
    if (!batch.empty() && hooks_.deliver) hooks_.deliver(batch);
    batch.clear();
  };
  while (!inbound_.empty()) {
    Entry& e = inbound_.front();
    // Waiting for an attachment row, an offset check, or our own publish result: later messages wait too.
    if (e.state == State::Pending || e.state == State::Fetching || e.state == State::OwnPending ||
        e.check != Check::None) {
      break;
    }
    if (e.state == State::Ready && e.offset > 0) {
      // At or below the baseline: notified although it may have committed before our LISTEN took
      // effect. Delivered live (it is the only way sockets that stayed connected get it) unless it
      // was delivered already. One a restore replayed (PostgreSQL signals listeners only after a
      // commit is visible: the notification can come after the restore) is delivered too: the
      // restored sockets are left out on the JavaScript side (lib/recovery.js, exceptReplayed).
      if (e.offset <= baseline_ && e.offset <= last_offset_) {
        pop_front();
        continue;
      }
      if (e.offset <= last_offset_) {
        report("ignored the offset " + std::to_string(e.offset) + " of a notification on " + e.channel +
                   ": not above the last one delivered (" + std::to_string(last_offset_) + ")",
               codes::BAD_NOTIFICATION);
        e.offset = 0;
      } else {
        last_offset_ = e.offset;
      }
    }
    if (e.state == State::Ready) {
      batch.push_back(Inbound{std::move(e.channel), std::move(e.message), std::move(e.json), std::move(e.wire),
                              std::move(e.binaries), e.wire_text, e.offset, e.attachment_id > 0});
      pop_front();
    } else if (e.state == State::OwnReady) {
      last_offset_ = std::max(last_offset_, e.offset);
      auto fn = std::move(e.own_deliver);
      pop_front();
      flush();  // what came before it is handed over first
      if (fn) fn();
    } else {
      pop_front();
    }
  }
  flush();
  if (overflow_dropped_ > 0 && !inbound_full()) {
    report("the inbound queue drained; " + std::to_string(overflow_dropped_) + " notifications were dropped",
           codes::INBOUND_OVERFLOW);
    overflow_dropped_ = 0;
  }
}

void Listener::pop_front() {
  inbound_bytes_ -= inbound_.front().bytes;
  inbound_.pop_front();
}

}  // namespace pgadapter
