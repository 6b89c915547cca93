#include "core/client.h"

#include <algorithm>

#include "core/json_codec.h"
#include "core/msgpack_codec.h"
#include "core/sql.h"
#include "core/error_codes.h"

namespace pgadapter {

struct Client::Link {
  const char* role;
  ConnectionStats* stats;
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
    : loop_(loop), options_(std::move(options)), sink_(sink) {
  auto make_link = [this](const char* role, ConnectionStats* stats) {
    auto link = std::make_unique<Link>();
    link->role = role;
    link->stats = stats;
    Link* l = link.get();
    PgConnection::Hooks hooks;
    hooks.get_params = [this](auto answer) { sink_.get_params(std::move(answer)); };
    hooks.on_ready = [this, l] { on_connection_ready(*l); };
    hooks.on_down = [this, l](const std::string& error, bool was_ready) { on_connection_down(*l, error, was_ready); };
    hooks.has_work = [this, l] { return l == publish_link_.get() && publisher_ && !publisher_->drained(); };
    link->conn = std::make_unique<PgConnection>(loop_, role, options_.reconnect, std::move(hooks));
    return link;
  };

  publish_link_ = make_link("publishing", &stats_.publish);
  Publisher::Hooks ph;
  ph.report = [this](const std::string& m, const char* code) { sink_.report(m, code); };
  ph.can_send = [this](const std::string& channel) {
    return !listener_ || !listener_->awaiting_first_listen(channel);
  };
  ph.on_drained = [this] {
    if (closing_ && !closed_) finish_close();
  };
  publisher_ = std::make_unique<Publisher>(*publish_link_->conn, options_.max_queue, std::move(ph));
  publisher_->set_stats(&stats_);
  if (options_.log) stats_.log = [this](const std::string& line) { sink_.log(line); };

  if (options_.listen) {
    listen_link_ = make_link("listening", &stats_.listen);
    Listener::Hooks lh;
    lh.deliver = [this](std::vector<Inbound>& batch) {
      stats_.on_received(batch);
      sink_.deliver(batch);
    };
    lh.report = [this](const std::string& m, const char* code) { sink_.report(m, code); };
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
    listener_ = std::make_unique<Listener>(*listen_link_->conn, options_.uid, std::move(lh));
    listener_->set_stats(&stats_);
    PgConnection* lc = listen_link_->conn.get();
    // The connection's hooks were fixed at construction; route notifications to the listener.
    lc->set_notification_handler([this](std::vector<Notification>& batch) { listener_->on_notifications(batch); });
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
  sink_.report("cannot quote the table name \"" + name + "\": " + error, codes::BAD_TABLE_NAME);
  out = "\"\"";
  return false;
}

bool Client::quote_table(PGconn* conn, std::string& out) { return quote(conn, options_.table, out); }

void Client::on_connection_ready(Link& link) {
  PgConnection& conn = *link.conn;
  stats_.note(std::string(link.role) + " connection ready (backend pid " + std::to_string(conn.backend_pid()) + ")");
  std::string table;
  quote_table(conn.raw(), table);
  std::vector<Query> setup;
  if (&link == publish_link_.get()) {
    publisher_->set_table(table);
    if (options_.create_table) {
      Query create;
      create.sql = sql::create_table(table);
      create.done = [this](PGresult* res, const std::string& error) {
        // Two servers creating the table at once: one of them loses the race, harmlessly.
        const std::string code = sqlstate(res);
        if (!error.empty() && res != nullptr && code != "42P07" && code != "23505") {
          sink_.report("cannot create table " + options_.table + ": " + error, codes::CREATE_TABLE_FAILED);
        }
      };
      setup.push_back(std::move(create));
    }
    if (recovery_) {
      std::string log_table;
      quote(conn.raw(), options_.log_table, log_table);
      publisher_->set_log_table(log_table);
      for (Query& q : recovery_setup(conn.raw())) setup.push_back(std::move(q));
    }
    for (Query& q : publisher_->setup_queries()) setup.push_back(std::move(q));
  } else if (listener_) {
    listener_->set_table(table);
    if (recovery_) {
      std::string log_table;
      quote(conn.raw(), options_.log_table, log_table);
      listener_->enable_recovery(log_table);
    }
    setup = listener_->setup_queries();
  }
  if (link.outage_reported) {
    // Reported once the setup (the re-LISTENs) has run: from then on nothing is missed.
    Query mark;
    mark.sql = "SELECT 1";
    mark.done = [this, &link](PGresult*, const std::string& error) {
      if (!error.empty() || !link.outage_reported) return;
      link.outage_reported = false;
      ++link.stats->reconnects;
      sink_.report(std::string("reconnected the ") + link.role + " connection to PostgreSQL", codes::RECONNECTED);
    };
    setup.push_back(std::move(mark));
  }
  conn.enqueue_front(std::move(setup));
  if (&link == listen_link_.get() && listener_) listener_->on_ready();
  publisher_->pump();
  if (&link == publish_link_.get() && listener_) {
    std::vector<std::string> pending;
    pending.swap(listening_pending_);
    for (const std::string& channel : pending) {
      if (listener_->listening(channel)) sink_.listening(channel);
    }
  }
}

void Client::on_connection_down(Link& link, const std::string& error, bool was_ready) {
  stats_.note(std::string(link.role) + " connection " + (was_ready ? "lost: " : "failed: ") + error);
  if (!link.outage_reported) {
    // Once per outage: no report flood while the database stays down.
    link.outage_reported = true;
    sink_.report(std::string(link.role) + " connection to PostgreSQL " + (was_ready ? "lost: " : "failed: ") + error +
                     " (reconnecting)",
                 codes::CONNECTION_LOST);
  }
  if (&link == publish_link_.get() && listener_) listener_->drop_unmatched_own();
  if (closing_ && !closed_ && &link == publish_link_.get()) finish_close();
}

std::vector<Query> Client::recovery_setup(PGconn* conn) {
  std::vector<Query> out;
  if (!options_.create_table) return out;
  std::string log_table, session_table;
  quote(conn, options_.log_table, log_table);
  quote(conn, options_.session_table, session_table);
  for (std::string text : {sql::create_log_table(log_table), sql::create_session_table(session_table)}) {
    Query q;
    q.sql = std::move(text);
    q.done = [this](PGresult* res, const std::string& error) {
      const std::string code = sqlstate(res);
      if (!error.empty() && res != nullptr && code != "42P07" && code != "23505") {
        sink_.report("cannot create the recovery tables: " + error, codes::CREATE_TABLE_FAILED);
      }
    };
    out.push_back(std::move(q));
  }
  return out;
}

void Client::enable_recovery(uint32_t max_disconnection_ms) {
  if (recovery_ || closed_) return;
  recovery_ = true;
  max_disconnection_ms_ = max_disconnection_ms;
  PgConnection& pc = *publish_link_->conn;
  if (pc.ready()) {
    std::string log_table;
    quote(pc.raw(), options_.log_table, log_table);
    publisher_->set_log_table(log_table);
    for (Query& q : recovery_setup(pc.raw())) pc.enqueue(std::move(q));
  }
  if (listener_ && listen_link_->conn->ready()) {
    std::string log_table;
    quote(listen_link_->conn->raw(), options_.log_table, log_table);
    listener_->enable_recovery(log_table);
  }
}

std::string Client::publish_logged(const std::string& channel, const Value& message, bool has_binary,
                                   std::unique_ptr<LogRecord> log) {
  if (!recovery_) return "connection state recovery is not enabled";
  auto user_done = std::make_shared<std::function<void(const std::string&, const std::string&)>>(std::move(log->done));
  log->done = [this, user_done](const std::string& offset, const std::string& error) {
    const int64_t id = error.empty() ? std::atoll(offset.c_str()) : 0;
    if (id <= 0 || !listener_) {
      if (error.empty() && id <= 0) return (*user_done)("", "no offset returned");
      return (*user_done)(offset, error);
    }
    // Handed back (and so delivered locally) in the listener's stream order: see Listener::own_logged.
    listener_->own_logged(id, [user_done, offset] { (*user_done)(offset, ""); });
  };
  return enqueue(channel, message, has_binary, std::move(log));
}

void Client::persist_session(const std::string& pid, const std::string& sid, const std::string& nsp,
                             const std::vector<std::string>& rooms, const Value& data,
                             std::function<void(const std::string&)> done) {
  PgConnection& conn = listen_link_ ? *listen_link_->conn : *publish_link_->conn;
  if (closed_ || !conn.ready()) return done("not connected to PostgreSQL");
  std::string table;
  quote(conn.raw(), options_.session_table, table);
  std::vector<const std::string*> room_ptrs;
  for (const auto& r : rooms) room_ptrs.push_back(&r);
  Query q;
  q.sql = sql::upsert_session(table);
  q.params.resize(6);
  q.params[0] = pid;
  q.params[1] = sid;
  q.params[2] = nsp;
  sql::append_binary_array(sql::kTextOid, room_ptrs, q.params[3]);
  encode_msgpack(data, q.params[4]);
  q.params[5] = std::to_string(max_disconnection_ms_) + " milliseconds";
  q.param_formats = {0, 0, 0, 1, 1, 0};
  q.done = [done = std::move(done)](PGresult*, const std::string& error) { done(error); };
  conn.enqueue(std::move(q));
}

namespace {
int64_t read_be(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return n == 4 ? static_cast<int32_t>(v) : static_cast<int64_t>(v);
}
}  // namespace

void Client::restore_session(const std::string& pid, const std::string& nsp, const std::string& offset,
                             std::function<void(bool, RestoredSession, const std::string&)> done) {
  // On the listening connection: every notification that comes before this result in the stream
  // was committed before its snapshot (see Listener::delivered_offset).
  if (closed_ || !listener_ || !listen_link_->conn->ready()) return done(false, {}, "not connected to PostgreSQL");
  PgConnection& conn = *listen_link_->conn;
  std::string session_table, log_table;
  quote(conn.raw(), options_.session_table, session_table);
  quote(conn.raw(), options_.log_table, log_table);
  Query q;
  q.sql = sql::take_session(session_table, log_table);
  q.params = {pid, nsp, offset};
  q.result_format = 1;
  q.done = [this, done = std::move(done)](PGresult* res, const std::string& error) {
    if (!error.empty() || res == nullptr) return done(false, {}, error.empty() ? "connection lost" : error);
    const int rows = PQntuples(res);
    if (rows == 0 || PQnfields(res) != 5 || read_be(PQgetvalue(res, 0, 0), 4) != 0) return done(false, {}, "");
    RestoredSession session;
    std::string err;
    session.sid.assign(PQgetvalue(res, 0, 2), PQgetlength(res, 0, 2));
    if (!parse_json(std::string_view(PQgetvalue(res, 0, 3), PQgetlength(res, 0, 3)), session.rooms, err) ||
        (!PQgetisnull(res, 0, 4) &&
         !decode_msgpack(std::string_view(PQgetvalue(res, 0, 4), PQgetlength(res, 0, 4)), session.data, err))) {
      return done(false, {}, "corrupt session row: " + err);
    }
    // Which of these the socket missed is decided on the JavaScript side, which knows what it has
    // delivered (see PostgresAdapter.restoreSession).
    session.snapshot_max = read_be(PQgetvalue(res, 0, 1), 8);
    session.baseline = listener_->baseline();
    for (int i = 1; i < rows; ++i) {
      const int64_t id = read_be(PQgetvalue(res, i, 1), 8);
      Value packet;
      if (!decode_msgpack(std::string_view(PQgetvalue(res, i, 4), PQgetlength(res, i, 4)), packet, err) ||
          packet.kind != Value::Kind::Array) {
        sink_.report("skipped a corrupt recovery log row " + std::to_string(id), codes::BAD_ATTACHMENT);
        continue;
      }
      packet.items.push_back(Value::string_of(std::to_string(id)));
      session.packets.emplace_back(id, std::move(packet));
    }
    done(true, std::move(session), "");
  };
  conn.enqueue(std::move(q));
}

void Client::cleanup_recovery(PgConnection& conn) {
  std::string session_table, log_table;
  quote(conn.raw(), options_.session_table, session_table);
  quote(conn.raw(), options_.log_table, log_table);
  Query sessions;
  sessions.sql = sql::delete_expired_sessions(session_table);
  Query log;
  log.sql = sql::delete_older_than(log_table);
  log.params = {std::to_string(max_disconnection_ms_) + " milliseconds"};
  for (Query* q : {&sessions, &log}) {
    q->per_connection = true;
    q->done = [this](PGresult*, const std::string& error) {
      if (!error.empty()) sink_.report("recovery cleanup failed: " + error, codes::CLEANUP_FAILED);
    };
    conn.enqueue(std::move(*q));
  }
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
  const bool pushed = publisher_->push(std::move(out));
  publish_link_->conn->update_keepalive();
  if (!pushed) {
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
    if (!error.empty()) sink_.report("cleanup of " + options_.table + " failed: " + error, codes::CLEANUP_FAILED);
  };
  q.per_connection = true;
  cleanup_running_ = true;
  link.conn->enqueue(std::move(q));
  if (recovery_) cleanup_recovery(*link.conn);
}

void Client::close(uint32_t flush_timeout_ms, std::function<void()> done) {
  if (closed_) {
    if (done) done();
    return;
  }
  close_done_ = std::move(done);
  closing_ = true;
  cleanup_timer_.stop();
  if (publish_link_->conn->ready() && !publisher_->drained() && flush_timeout_ms > 0) {
    flush_timer_.start(loop_, this, flush_timeout_ms, 0, /*keep_alive=*/true);
    return;  // finish_close runs once drained, on the deadline, or if the connection drops
  }
  finish_close();
}

void Client::on_flush_deadline() {
  if (!closed_) {
    sink_.report("closing with " + std::to_string(publisher_->size()) + " messages not yet published",
                 codes::PUBLISH_FAILED);
    finish_close();
  }
}

void Client::finish_close() {
  closed_ = true;
  closing_ = true;
  cleanup_timer_.stop();
  flush_timer_.stop();
  if (listen_link_) listen_link_->conn->close();
  publish_link_->conn->close();
  if (auto done = std::move(close_done_)) done();
}

void Client::close_now() {
  close_done_ = nullptr;
  if (!closed_) finish_close();
}

}  // namespace pgadapter
