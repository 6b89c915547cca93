#include "core/client.h"

#include <algorithm>

#include "core/error_codes.h"
#include "core/sql.h"

namespace pgadapter {

// One connection and its only user (the publisher or the listener): what that user adds to the connection's
// life is fixed here before the connection is built, so nothing branches on which link it is.
struct Client::Link {
  const char* role;
  ConnectionStats* stats;
  std::function<void(PgConnection& conn, const std::string& table, std::vector<Query>& setup)> setup;
  std::function<void()> after_setup;  // its setup is queued
  std::function<void()> on_down;
  std::function<bool()> has_work;  // weak mode: the user holds messages for this connection
  std::function<void(std::vector<Notification>&)> on_notifications;
  std::unique_ptr<PgConnection> conn;
  bool outage_reported = false;
};

namespace {
std::string sqlstate(PGresult* res) {
  const char* code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  return code ? code : "";
}
}  // namespace

Client::Client(uv_loop_t* loop, ClientOptions options, ClientSink& sink)
    : loop_(loop),
      options_(std::move(options)),
      sink_(sink),
      // Outages are reported once each already, and health() follows them: never limited.
      limiter_(Stats::kCodes, [](size_t code) {
        const std::string name = Stats::code_name(code);
        return name == codes::CONNECTION_LOST || name == codes::RECONNECTED;
      }) {
  auto make_link = [this](std::unique_ptr<Link> link) {
    Link* l = link.get();
    PgConnection::Hooks hooks;
    hooks.get_params = [this](auto answer) { sink_.get_params(std::move(answer)); };
    hooks.on_ready = [this, l] { on_connection_ready(*l); };
    hooks.on_down = [this, l](const std::string& error, bool was_ready) { on_connection_down(*l, error, was_ready); };
    hooks.on_idle = [this] { maybe_finish_close(); };
    hooks.has_work = l->has_work;
    hooks.on_notifications = l->on_notifications;
    l->conn = std::make_unique<PgConnection>(loop_, l->role, options_.reconnect, std::move(hooks));
    return link;
  };

  auto publishing = std::make_unique<Link>();
  publishing->role = "publishing";
  publishing->stats = &stats_.publish;
  publishing->has_work = [this] { return publisher_ && !publisher_->drained(); };
  publishing->setup = [this](PgConnection& conn, const std::string& table, std::vector<Query>& setup) {
    publisher_->set_table(table);
    if (options_.create_table) {
      Query create;
      create.sql = sql::create_table(table);
      create.done = [this](PGresult* res, const std::string& error) {
        // Two servers creating the table at once: one of them loses the race (on the table or its row
        // type), harmlessly.
        const std::string code = sqlstate(res);
        if (!error.empty() && res != nullptr && code != "42P07" && code != "23505" && code != "42710") {
          report("cannot create table " + options_.table + ": " + error, codes::CREATE_TABLE_FAILED);
        }
      };
      setup.push_back(std::move(create));
    }
    if (recovery_) {
      for (Query& q : recovery_->setup_queries(conn.raw())) setup.push_back(std::move(q));
    }
    for (Query& q : publisher_->setup_queries()) setup.push_back(std::move(q));
  };
  publishing->after_setup = [this] {
    if (!listener_) return;
    std::vector<std::string> pending;
    pending.swap(listening_pending_);
    for (const std::string& channel : pending) {
      if (listener_->listening(channel)) sink_.listening(channel);
    }
  };
  publishing->on_down = [this] {
    // What waits for an offset now would wait for the database: it goes out unlogged (delivered
    // locally at once, to the other servers when the connection is back).
    if (listener_) listener_->release_own();
    publisher_->unlog_queued();
  };
  publish_link_ = make_link(std::move(publishing));
  Publisher::Hooks ph;
  ph.report = [this](const std::string& m, const char* code) { report(m, code); };
  ph.can_send = [this](const std::string& channel) {
    return !listener_ || !listener_->awaiting_first_listen(channel);
  };
  ph.on_drained = [this] { maybe_finish_close(); };
  ph.release_own = [this] {
    if (listener_) listener_->release_own();
  };
  publisher_ = std::make_unique<Publisher>(*publish_link_->conn, options_.max_queue, std::move(ph));
  publisher_->set_stats(&stats_);
  if (options_.log) stats_.log = [this](const std::string& line) { sink_.log(line); };

  if (options_.listen) {
    auto listening = std::make_unique<Link>();
    listening->role = "listening";
    listening->stats = &stats_.listen;
    listening->on_notifications = [this](std::vector<Notification>& batch) { listener_->on_notifications(batch); };
    listening->setup = [this](PgConnection&, const std::string& table, std::vector<Query>& setup) {
      listener_->set_table(table);
      // Before the LISTENs: a peer that hears us is sure to see our presence.
      if (!options_.presence_name.empty()) setup.push_back(presence_name_query());
      for (Query& q : listener_->setup_queries()) setup.push_back(std::move(q));
    };
    listening->after_setup = [this] { listener_->on_ready(); };
    listening->on_down = [this] { listener_->on_down(); };
    listen_link_ = make_link(std::move(listening));
    Listener::Hooks lh;
    lh.deliver = [this](std::vector<Inbound>& batch) {
      stats_.on_received(batch);
      sink_.deliver(batch);
    };
    lh.report = [this](const std::string& m, const char* code) { report(m, code); };
    lh.on_listening = [this](const std::string& channel) {
      stats_.note("LISTEN " + channel);
      publisher_->pump();
      // Told once our first messages on it can go out too: the INITIAL_HEARTBEAT the peers answer.
      if (publish_link_->conn->ready()) {
        sink_.listening(channel);
      } else {
        listening_pending_.push_back(channel);
      }
    };
    lh.own_backend_pid = [this] { return publish_link_->conn->backend_pid(); };
    lh.now = [this] { return static_cast<uint64_t>(uv_now(loop_)); };
    listener_ = std::make_unique<Listener>(*listen_link_->conn, options_.uid, std::move(lh));
    listener_->set_stats(&stats_);
  }
}

Client::~Client() { close_now(); }

void Client::start() {
  publish_link_->conn->start();
  if (listen_link_) listen_link_->conn->start();
  if (options_.cleanup_interval_ms > 0) {
    cleanup_timer_.start(loop_, this, options_.cleanup_interval_ms, options_.cleanup_interval_ms);
  }
}

bool Client::quote(PGconn* conn, const std::string& name, std::string& out) {
  std::string error;
  if (sql::quote_qualified(conn, name, out, error)) return true;
  report("cannot quote the table name \"" + name + "\": " + error, codes::BAD_TABLE_NAME);
  out = "\"\"";
  return false;
}

bool Client::quote_table(PGconn* conn, std::string& out) { return quote(conn, options_.table, out); }

void Client::on_connection_ready(Link& link) {
  PgConnection& conn = *link.conn;
  stats_.note(std::string(link.role) + " connection ready (backend pid " + std::to_string(conn.backend_pid()) + ")");
  stats_.note(std::string(link.role) + " connection: " +
              (conn.pipelined() ? "pipeline mode (up to " + std::to_string(PgConnection::kPipelineDepth) +
                                      " statements in flight)"
                                : std::string("one statement at a time (libpq without pipeline mode)")));
  std::string table;
  quote_table(conn.raw(), table);
  std::vector<Query> setup;
  if (options_.statement_timeout_ms > 0) {
    // Nothing of ours may wait forever on a lock or a stuck statement.
    Query timeout;
    timeout.sql = "SELECT pg_catalog.set_config('statement_timeout', $1, false)";
    timeout.params = {std::to_string(options_.statement_timeout_ms)};
    setup.push_back(std::move(timeout));
  }
  link.setup(conn, table, setup);
  if (link.outage_reported) {
    // Reported once the setup (the re-LISTENs) has run: from then on nothing is missed.
    Query mark;
    mark.sql = "SELECT 1";
    mark.done = [this, &link](PGresult*, const std::string& error) {
      if (!error.empty() || !link.outage_reported) return;
      link.outage_reported = false;
      ++link.stats->reconnects;
      report(std::string("reconnected the ") + link.role + " connection to PostgreSQL", codes::RECONNECTED);
    };
    setup.push_back(std::move(mark));
  }
  conn.enqueue_front(std::move(setup));
  link.after_setup();
  if (&session_conn() == &conn) flush_sessions();
  publisher_->pump();
}

void Client::on_connection_down(Link& link, const std::string& error, bool was_ready) {
  stats_.note(std::string(link.role) + " connection " + (was_ready ? "lost: " : "failed: ") + error);
  if (!link.outage_reported) {
    // Once per outage: no report flood while the database stays down.
    link.outage_reported = true;
    report(std::string(link.role) + " connection to PostgreSQL " + (was_ready ? "lost: " : "failed: ") + error +
                     " (reconnecting)",
                 codes::CONNECTION_LOST);
  }
  link.on_down();
  // Closing: queued messages keep their closeTimeout (the connection may come back); the rest settles now.
  maybe_finish_close();
}

void Client::enable_recovery(uint32_t max_disconnection_ms) {
  if (recovery_ || closed_) return;
  recovery_ = std::make_unique<Recovery>(options_.log_table, options_.session_table, max_disconnection_ms,
                                         [this](const std::string& m, const char* code) { report(m, code); });
  publisher_->set_recovery(recovery_.get(), options_.uid);
  PgConnection& pc = *publish_link_->conn;
  if (pc.ready()) pc.enqueue_front(recovery_->setup_queries(pc.raw()));
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
  if (!recovery_ || !recovery_->usable() || !publish_link_->conn->ready() || !log_record_of(message, *log)) {
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

PgConnection& Client::session_conn() const { return listen_link_ ? *listen_link_->conn : *publish_link_->conn; }

void Client::persist_session(const std::string& pid, const std::string& sid, const std::string& nsp,
                             const std::vector<std::string>& rooms, Value data,
                             std::function<void(const std::string&)> done) {
  if (closed_ || !recovery_) return done("the adapter is closed");
  if (!recovery_->usable()) return done("");  // reported once: the tables are missing
  if (pending_sessions_.size() >= kMaxPendingSessions) {
    return done("too many sessions waiting for PostgreSQL (" + std::to_string(kMaxPendingSessions) + ")");
  }
  pending_sessions_.push_back(PendingSession{pid, sid, nsp, rooms, std::move(data), uv_now(loop_), std::move(done)});
  if (session_conn().ready()) flush_sessions();
}

void Client::flush_sessions() {
  PgConnection& conn = session_conn();
  const uint64_t now = uv_now(loop_);
  while (recovery_ && conn.ready() && !pending_sessions_.empty()) {
    PendingSession p = std::move(pending_sessions_.front());
    pending_sessions_.pop_front();
    const uint64_t age = now - p.queued_at;
    if (age >= recovery_->max_disconnection_ms()) {
      if (p.done) p.done("PostgreSQL was unreachable for as long as the session could be recovered");
      continue;
    }
    Query q;
    try {
      q = recovery_->persist(conn.raw(), p.pid, p.sid, p.nsp, p.rooms, p.data,
                             static_cast<uint32_t>(recovery_->max_disconnection_ms() - age));
    } catch (const std::exception& e) {  // msgpack cannot hold it (4 GiB)
      if (p.done) p.done(std::string("cannot encode socket.data: ") + e.what());
      continue;
    }
    q.done = [done = std::move(p.done)](PGresult*, const std::string& error) {
      if (done) done(error);
    };
    conn.enqueue(std::move(q));
  }
}

void Client::restore_session(const std::string& pid, const std::string& nsp, const std::string& offset,
                             std::function<void(bool, RestoredSession, const std::string&)> done) {
  // On the listening connection: in stream order with the notifications (see Listener::baseline).
  if (closed_ || !recovery_ || !recovery_->usable() || !listener_ || !listen_link_->conn->ready()) {
    return done(false, {}, "");
  }
  if (restores_ >= kMaxRestores) return done(false, {}, "");
  ++restores_;
  PgConnection& conn = *listen_link_->conn;
  conn.enqueue(recovery_->restore(conn.raw(), pid, nsp, offset,
                                  [this, done = std::move(done)](bool found, RestoredSession session, const std::string& error) {
                                    --restores_;
                                    if (found && listener_) session.baseline = listener_->restore_baseline();
                                    done(found, std::move(session), error);
                                  }));
}

Query Client::presence_name_query() const {
  Query q;
  q.sql = "SELECT pg_catalog.set_config('application_name', $1, false)";
  q.params = {options_.presence_name};
  q.per_connection = true;  // rerun by the next connect's setup
  return q;
}

void Client::set_presence_name(const std::string& name) {
  if (closed_ || !listen_link_ || name.empty() || name == options_.presence_name) return;
  options_.presence_name = name;
  if (listen_link_->conn->ready()) listen_link_->conn->enqueue(presence_name_query());
}

void Client::presence(const std::string& pattern,
                      std::function<void(bool, std::vector<std::pair<std::string, std::string>>, const std::string&)> done) {
  if (closed_ || closing_ || !listen_link_ || !listen_link_->conn->ready()) return done(false, {}, "not connected");
  Query q;
  // A plain SELECT takes no transaction id: nothing is written, nothing committed.
  q.sql =
      "SELECT application_name, pg_catalog.date_part('epoch'::pg_catalog.text, "
      "pg_catalog.timestamptz_mi(pg_catalog.statement_timestamp(), state_change))::pg_catalog.text "
      "FROM pg_catalog.pg_stat_activity "
      "WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database() "
      "AND application_name OPERATOR(pg_catalog.~~) $1::pg_catalog.text LIMIT " +
      std::to_string(kMaxPresenceRows);
  q.params = {pattern};
  q.done = [done = std::move(done)](PGresult* res, const std::string& error) {
    if (!error.empty() || res == nullptr || PQnfields(res) != 2) return done(false, {}, error.empty() ? "no result" : error);
    std::vector<std::pair<std::string, std::string>> rows;
    const int n = std::min(PQntuples(res), kMaxPresenceRows);
    rows.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      rows.emplace_back(std::string(PQgetvalue(res, i, 0), static_cast<size_t>(PQgetlength(res, i, 0))),
                        PQgetisnull(res, i, 1) ? std::string() : std::string(PQgetvalue(res, i, 1)));
    }
    done(true, std::move(rows), "");
  };
  listen_link_->conn->enqueue(std::move(q));
}

std::string Client::publish(const std::string& channel, const Value& message, bool has_binary) {
  return enqueue(channel, message, has_binary, nullptr);
}

std::string Client::enqueue(const std::string& channel, const Value& message, bool has_binary,
                            std::unique_ptr<LogRecord> log) {
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
  OutMessage out;
  out.channel = channel;
  try {
    encode_message(message, has_binary, options_.payload_threshold, out, /*logged=*/log != nullptr);
  } catch (const std::exception& e) {  // e.g. a string of 4 GiB or more: msgpack cannot hold it
    return std::string("cannot encode the message: ") + e.what();
  }
  out.log = std::move(log);
  out.queued_at_ns = uv_hrtime();
  if (!publisher_->push(std::move(out))) {
    ++stats_.dropped_queue_full;
    return "the publish queue is full (" + std::to_string(options_.max_queue) +
           " messages waiting for PostgreSQL): message dropped";
  }
  return "";
}

ConnectionStats::State Client::connection_state(bool listening) const {
  const Link* link = listening ? listen_link_.get() : publish_link_.get();
  if (link != nullptr && link->conn->ready()) return ConnectionStats::State::Connected;
  if (link == nullptr || closed_ || link->outage_reported) return ConnectionStats::State::Down;
  return ConnectionStats::State::Connecting;
}

void Client::listen(const std::string& channel) {
  if (listener_ && !closed_) listener_->add(channel);
}

void Client::unlisten(const std::string& channel) {
  if (listener_ && !closed_) listener_->remove(channel);
}

void Client::on_cleanup_tick() {
  Link& link = listen_link_ ? *listen_link_ : *publish_link_;
  if (cleanup_running_ || !link.conn->ready()) return;
  std::string table;
  if (!quote_table(link.conn->raw(), table)) return;
  Query q;
  q.sql = sql::delete_older_than(table);
  q.params = {std::to_string(options_.cleanup_interval_ms) + " milliseconds"};
  q.done = [this](PGresult*, const std::string& error) {
    cleanup_running_ = false;
    if (!error.empty()) report("cleanup of " + options_.table + " failed: " + error, codes::CLEANUP_FAILED);
  };
  q.per_connection = true;
  cleanup_running_ = true;
  link.conn->enqueue(std::move(q));
  if (recovery_ && recovery_->usable()) {
    for (Query& r : recovery_->cleanup(link.conn->raw())) link.conn->enqueue(std::move(r));
  }
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
  if (!publisher_->drained()) return false;
  if (publish_link_->conn->ready() && !publish_link_->conn->idle()) return false;
  return !listen_link_ || !listen_link_->conn->ready() || listen_link_->conn->idle();
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
  if (listen_link_) listen_link_->conn->close();
  publish_link_->conn->close();
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
