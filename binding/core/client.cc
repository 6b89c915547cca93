#include "core/client.h"

#include <algorithm>

#include "core/error_codes.h"
#include "core/sql.h"

namespace pgadapter {

Client::Client(uv_loop_t* loop, ClientOptions options, ClientSink& sink)
    : loop_(loop),
      options_(std::move(options)),
      sink_(sink),
      // Outages are reported once each already, and health() follows them: never limited.
      limiter_(Stats::kCodes, [](size_t code) {
        const std::string name = Stats::code_name(code);
        return name == codes::CONNECTION_LOST || name == codes::RECONNECTED;
      }) {
  Publisher::Hooks ph;
  ph.can_send = [this](const std::string& channel) {
    return !listener_ || !listener_->awaiting_first_listen(channel);
  };
  ph.on_drained = [this] { maybe_finish_close(); };
  ph.release_own = [this] {
    if (listener_) listener_->release_own();
  };
  // The peers' answers to our first messages on a channel are heard once both connections are up.
  auto publisher_up = [this] {
    announce_listening();
    on_connection_up();
  };
  publisher_ = std::make_unique<Publisher>(host(publisher_up), stats_.publish, options_.max_queue, std::move(ph));
  if (options_.create_table) publisher_->create_table(options_.table);
  statements_ = publisher_.get();
  if (options_.log) stats_.log = [this](const std::string& line) { sink_.log(line); };

  if (options_.listen) {
    Listener::Hooks lh;
    lh.deliver = [this](std::vector<Inbound>& batch) {
      stats_.on_received(batch);
      sink_.deliver(batch);
    };
    lh.on_listening = [this](const std::string& channel) {
      stats_.note("LISTEN " + channel);
      publisher_->pump();
      // Told once our first messages on it can go out too: the INITIAL_HEARTBEAT the peers answer.
      if (publisher_->connected()) {
        sink_.listening(channel);
      } else {
        listening_pending_.push_back(channel);
      }
    };
    lh.own_backend_pid = [this] { return publisher_->backend_pid(); };
    lh.now = [this] { return static_cast<uint64_t>(uv_now(loop_)); };
    listener_ = std::make_unique<Listener>(host([this] { on_connection_up(); }), stats_.listen, options_.uid,
                                           std::move(lh));
    listener_->set_presence_name(options_.presence_name);
    statements_ = listener_.get();
  }
}

ConnectionOwner::Host Client::host(std::function<void()> on_up) {
  ConnectionOwner::Host h;
  h.loop = loop_;
  h.reconnect = options_.reconnect;
  h.statement_timeout_ms = options_.statement_timeout_ms;
  h.stats = &stats_;
  h.get_params = [this](auto answer) { sink_.get_params(std::move(answer)); };
  h.report = [this](const std::string& m, const char* code) { report(m, code); };
  h.quote_table = [this](PGconn* conn, std::string& out) { return quote_table(conn, out); };
  h.on_up = std::move(on_up);
  // Closing: queued messages keep their closeTimeout (the connection may come back); the rest settles now.
  h.on_down = [this] { maybe_finish_close(); };
  h.on_idle = [this] { maybe_finish_close(); };
  return h;
}

Client::~Client() { close_now(); }

void Client::start() {
  publisher_->start();
  if (listener_) listener_->start();
  if (options_.cleanup_interval_ms > 0) {
    cleanup_timer_.start(loop_, this, options_.cleanup_interval_ms, options_.cleanup_interval_ms);
  }
}

bool Client::quote_table(PGconn* conn, std::string& out) {
  std::string error;
  if (sql::quote_qualified(conn, options_.table, out, error)) return true;
  report("cannot quote the table name \"" + options_.table + "\": " + error, codes::BAD_TABLE_NAME);
  out = "\"\"";
  return false;
}

void Client::announce_listening() {
  if (!listener_) return;
  std::vector<std::string> pending;
  pending.swap(listening_pending_);
  for (const std::string& channel : pending) {
    if (listener_->listening(channel)) sink_.listening(channel);
  }
}

void Client::on_connection_up() {
  flush_sessions();  // (waiting only while the connection that runs them was down)
  publisher_->pump();
}

void Client::enable_recovery(uint32_t max_disconnection_ms) {
  if (recovery_ || closed_) return;
  recovery_ = std::make_unique<Recovery>(options_.log_table, options_.session_table, max_disconnection_ms,
                                         [this](const std::string& m, const char* code) { report(m, code); });
  publisher_->set_recovery(recovery_.get(), options_.uid);
  if (listener_) listener_->set_recovery(recovery_.get());
  recovery_timer_.start(loop_, this, 500, 500);
}

void Client::on_recovery_tick() {
  const uint64_t now = uv_now(loop_);
  if (listener_) listener_->expire(now);
  // Sessions that could not be written within their lifetime are of no use any more.
  while (!pending_sessions_.empty() &&
         pending_sessions_.front().queued_at + recovery_->max_disconnection_ms() <= now) {
    auto done = std::move(pending_sessions_.front().done);
    pending_sessions_.pop_front();
    if (done) done("PostgreSQL was unreachable for as long as the session could be recovered");
  }
}

std::string Client::publish_logged(const std::string& channel, const Value& message, bool has_binary,
                                   std::function<void(const std::string&, const std::string&)> done) {
  auto log = std::make_unique<LogRecord>();
  if (!recovery_ || !recovery_->usable() || !publisher_->connected() || !log_record_of(message, *log)) {
    // Not logged: delivered locally at once, to the other servers as a plain broadcast.
    std::string dropped = enqueue(channel, message, has_binary, nullptr);
    if (dropped.empty()) done("", "");
    return dropped;
  }
  auto user_done = std::make_shared<std::function<void(const std::string&, const std::string&)>>(std::move(done));
  log->done = [this, user_done](const std::string& offset, const std::string& error) {
    if (offset.empty() || !listener_) {
      // Failed, or went out unlogged: what waits for its place in the stream goes first.
      if (listener_) listener_->release_own();
      return (*user_done)(offset, error);
    }
    // Handed back (and so delivered locally) at its place in the listener's stream: see Listener::own_logged.
    listener_->own_logged(std::atoll(offset.c_str()), [user_done, offset] { (*user_done)(offset, ""); });
  };
  return enqueue(channel, message, has_binary, std::move(log));
}

void Client::persist_session(const std::string& pid, const std::string& sid, const std::string& nsp,
                             const std::vector<std::string>& rooms, Value data,
                             std::function<void(const std::string&)> done) {
  if (closed_ || !recovery_) return done("the adapter is closed");
  if (!recovery_->usable()) return done("");  // reported once: the tables are missing
  if (pending_sessions_.size() >= kMaxPendingSessions) {
    return done("too many sessions waiting for PostgreSQL (" + std::to_string(kMaxPendingSessions) + ")");
  }
  pending_sessions_.push_back(PendingSession{pid, sid, nsp, rooms, std::move(data), uv_now(loop_), std::move(done)});
  if (statements_->connected()) flush_sessions();
}

void Client::flush_sessions() {
  const uint64_t now = uv_now(loop_);
  while (recovery_ && statements_->connected() && !pending_sessions_.empty()) {
    PendingSession p = std::move(pending_sessions_.front());
    pending_sessions_.pop_front();
    const uint64_t age = now - p.queued_at;
    if (age >= recovery_->max_disconnection_ms()) {
      if (p.done) p.done("PostgreSQL was unreachable for as long as the session could be recovered");
      continue;
    }
    try {
      statements_->run([&](PGconn* conn) {
        Query q = recovery_->persist(conn, p.pid, p.sid, p.nsp, p.rooms, p.data,
                                     static_cast<uint32_t>(recovery_->max_disconnection_ms() - age));
        q.done = [done = std::move(p.done)](PGresult*, const std::string& error) {
          if (done) done(error);
        };
        return q;
      });
    } catch (const std::exception& e) {  // msgpack cannot hold it (4 GiB)
      if (p.done) p.done(std::string("cannot encode socket.data: ") + e.what());
    }
  }
}

void Client::restore_session(const std::string& pid, const std::string& nsp, const std::string& offset,
                             uint32_t max_packets, std::function<void(bool, RestoredSession, const std::string&)> done) {
  // On the listening connection: in stream order with the notifications (see Listener::restore_baseline).
  if (closed_ || !recovery_ || !recovery_->usable() || !listener_ || !listener_->connected()) {
    return done(false, {}, "");
  }
  if (restores_ >= kMaxRestores) return done(false, {}, "");
  ++restores_;
  listener_->run([&](PGconn* conn) {
    return recovery_->restore(conn, pid, nsp, offset, max_packets,
                              [this, done = std::move(done)](bool found, RestoredSession session, const std::string& error) {
                                --restores_;
                                if (!found || !listener_) return done(found, std::move(session), error);
                                auto held = std::make_shared<RestoredSession>(std::move(session));
                                listener_->restore_point([done, held](bool ok, int64_t baseline) {
                                  if (!ok) return done(false, {}, "");
                                  held->baseline = baseline;
                                  done(true, std::move(*held), "");
                                });
                              });
  });
}

void Client::set_presence_name(const std::string& name) {
  if (closed_ || !listener_) return;
  listener_->set_presence_name(name);
}

void Client::presence(const std::string& pattern,
                      std::function<void(bool, PresenceRows, const std::string&)> done) {
  if (closed_ || closing_ || !listener_ || !listener_->connected()) return done(false, {}, "not connected");
  listener_->run([&](PGconn*) { return presence_query(pattern, std::move(done)); });
}

std::string Client::publish(const std::string& channel, const Value& message, bool has_binary) {
  return enqueue(channel, message, has_binary, nullptr);
}

std::string Client::enqueue(const std::string& channel, const Value& message, bool has_binary,
                            std::unique_ptr<LogRecord> log) {
  std::string refused = refusal(channel);
  if (!refused.empty()) return refused;
  OutMessage out;
  out.channel = channel;
  try {
    encode_message(message, has_binary, options_.payload_threshold, out, /*logged=*/log != nullptr);
  } catch (const std::exception& e) {  // e.g. a string of 4 GiB or more: msgpack cannot hold it
    return std::string("cannot encode the message: ") + e.what();
  }
  out.log = std::move(log);
  return queue(std::move(out));
}

std::string Client::publish_json(const std::string& channel, std::string json, bool& fits) {
  fits = fits_notification(json.size(), options_.payload_threshold, /*logged=*/false);
  if (!fits) return "";
  std::string refused = refusal(channel);
  if (!refused.empty()) return refused;
  OutMessage out;
  out.channel = channel;
  out.payload = std::move(json);
  return queue(std::move(out));
}

std::string Client::refusal(const std::string& channel) {
  if (closing_ || closed_) {
    ++stats_.dropped_closed;
    return "the adapter is closed";
  }
  if (channel.find('\0') != std::string::npos) {
    // PostgreSQL refuses it (and LISTEN would have heard a name cut at the NUL).
    return "channel name \"" + channel.substr(0, channel.find('\0')) + "\\0...\" contains a NUL byte";
  }
  if (channel.size() > kMaxChannelBytes) {
    return "channel name \"" + channel + "\" is " + std::to_string(channel.size()) +
           " bytes; PostgreSQL allows at most 63";
  }
  return "";
}

std::string Client::queue(OutMessage out) {
  out.queued_at_ns = uv_hrtime();
  if (!publisher_->push(std::move(out))) {
    ++stats_.dropped_queue_full;
    return "the publish queue is full (" + std::to_string(options_.max_queue) +
           " messages waiting for PostgreSQL): message dropped";
  }
  return "";
}

ConnectionStats::State Client::connection_state(bool listening) const {
  const ConnectionOwner* owner = listening ? static_cast<const ConnectionOwner*>(listener_.get()) : publisher_.get();
  if (owner != nullptr && owner->connected()) return ConnectionStats::State::Connected;
  if (owner == nullptr || closed_ || owner->outage()) return ConnectionStats::State::Down;
  return ConnectionStats::State::Connecting;
}

void Client::listen(const std::string& channel) {
  if (listener_ && !closed_) listener_->add(channel);
}

void Client::unlisten(const std::string& channel) {
  if (listener_ && !closed_) listener_->remove(channel);
}

void Client::on_cleanup_tick() {
  if (cleanup_running_ || !statements_->connected()) return;
  statements_->run([this](PGconn* conn) {
    std::vector<Query> out;
    std::string table;
    if (!quote_table(conn, table)) return out;
    Query q;
    q.sql = sql::delete_older_than(table);
    q.params = {std::to_string(options_.cleanup_interval_ms) + " milliseconds"};
    q.done = [this](PGresult*, const std::string& error) {
      cleanup_running_ = false;
      if (!error.empty()) report("cleanup of " + options_.table + " failed: " + error, codes::CLEANUP_FAILED);
    };
    q.per_connection = true;
    cleanup_running_ = true;
    out.push_back(std::move(q));
    if (recovery_ && recovery_->usable()) {
      for (Query& r : recovery_->cleanup(conn)) out.push_back(std::move(r));
    }
    return out;
  });
}

void Client::report(const std::string& message, const char* code) {
  if (admit_report(code)) sink_.report(message, code);
}

bool Client::admit_report(const std::string& code) {
  const size_t index = stats_.on_error(code);
  if (index < Stats::kCodes) report_summaries(false);  // what was suppressed is said before what follows
  if (limiter_.admit(index, uv_now(loop_))) return true;
  if (!report_timer_.active()) report_timer_.start(loop_, this, ReportLimiter::kWindowMs, ReportLimiter::kWindowMs);
  return false;
}

void Client::on_report_tick() {
  report_summaries(false);
  if (!limiter_.suppressing()) report_timer_.stop();
}

void Client::report_summaries(bool all) {
  auto summary = [this](size_t code, uint64_t n, uint64_t span_ms) {
    const char* name = Stats::code_name(code);
    const uint64_t seconds = std::max<uint64_t>(1, (span_ms + 500) / 1000);
    sink_.report(std::to_string(n) + " more " + name + " reports suppressed in the last " + std::to_string(seconds) +
                     " s (rate limit: " + std::to_string(ReportLimiter::kPerWindow) +
                     " a second per code; stats().errors counts every one)",
                 name);
  };
  const uint64_t now = uv_now(loop_);
  all ? limiter_.take_all(now, summary) : limiter_.take_summaries(now, summary);
}

void Client::close(uint32_t flush_timeout_ms, std::function<void()> done) {
  if (closed_) {
    if (done) done();
    return;
  }
  if (done) close_waiters_.push_back(std::move(done));
  if (closing_) return;  // a close() is already flushing: this one ends with it
  report_summaries(true);
  closing_ = true;
  cleanup_timer_.stop();
  if (!flushed() && flush_timeout_ms > 0 &&
      flush_timer_.start(loop_, this, flush_timeout_ms, 0, /*keep_alive=*/true)) {
    return;  // finish_close runs once flushed, on the deadline, or if the publishing connection drops
  }
  finish_close();
}

// Nothing left that a live connection could still do for someone: queued messages, and the statements
// run for callers (a session persisted or restored while the sockets were disconnected by io.close()).
bool Client::flushed() const {
  // Queued messages wait for the deadline even while the database is away: a reconnect may still send them.
  if (!publisher_->drained() || publisher_->busy()) return false;
  return !listener_ || !listener_->busy();
}

void Client::maybe_finish_close() {
  if (closing_ && !closed_ && flushed()) finish_close();
}

void Client::on_flush_deadline() {
  if (!closed_) finish_close();
}

void Client::finish_close(bool report_unsent) {
  closed_ = true;
  closing_ = true;
  cleanup_timer_.stop();
  flush_timer_.stop();
  recovery_timer_.stop();
  report_timer_.stop();
  for (PendingSession& p : pending_sessions_) {
    if (p.done) p.done("the adapter is closed");
  }
  pending_sessions_.clear();
  // Every callback settles, in order: the messages never sent, the statements queued or in
  // flight (by their connections), then own logged broadcasts waiting for their turn in the stream.
  publisher_->abandon("the adapter is closed", report_unsent);
  if (listener_) listener_->close_connection();
  publisher_->close_connection();
  if (listener_) listener_->abandon();
  std::vector<std::function<void()>> waiters = std::move(close_waiters_);
  close_waiters_.clear();
  for (auto& done : waiters) done();
}

void Client::close_now() {
  close_waiters_.clear();      // the environment is going away: nobody is left to tell
  pending_sessions_.clear();  // torn down without JavaScript: no callback may run
  if (!closed_) finish_close(/*report_unsent=*/false);
}

}  // namespace pgadapter
