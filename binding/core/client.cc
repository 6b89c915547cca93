#include "core/client.h"

#include "core/sql.h"

namespace pgadapter {

struct Client::Link {
  const char* role;
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
  auto make_link = [this](const char* role) {
    auto link = std::make_unique<Link>();
    link->role = role;
    Link* l = link.get();
    PgConnection::Hooks hooks;
    hooks.get_params = [this](auto answer) { sink_.get_params(std::move(answer)); };
    hooks.on_ready = [this, l] { on_connection_ready(*l); };
    hooks.on_down = [this, l](const std::string& error, bool was_ready) { on_connection_down(*l, error, was_ready); };
    hooks.has_work = [this, l] { return l == publish_link_.get() && publisher_ && !publisher_->drained(); };
    link->conn = std::make_unique<PgConnection>(loop_, role, options_.reconnect, std::move(hooks));
    return link;
  };

  publish_link_ = make_link("publishing");
  Publisher::Hooks ph;
  ph.report = [this](const std::string& m, const char* code) { sink_.report(m, code); };
  ph.can_send = [this](const std::string& channel) {
    return !listener_ || !listener_->awaiting_first_listen(channel);
  };
  ph.on_drained = [this] {
    if (closing_ && !closed_) finish_close();
  };
  publisher_ = std::make_unique<Publisher>(*publish_link_->conn, options_.max_queue, std::move(ph));

  if (options_.listen) {
    listen_link_ = make_link("listening");
    Listener::Hooks lh;
    lh.deliver = [this](std::vector<Inbound>& batch) { sink_.deliver(batch); };
    lh.report = [this](const std::string& m, const char* code) { sink_.report(m, code); };
    lh.on_listening = [this](const std::string&) { publisher_->pump(); };
    lh.own_backend_pid = [this] { return publish_link_->conn->backend_pid(); };
    listener_ = std::make_unique<Listener>(*listen_link_->conn, options_.uid, std::move(lh));
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

bool Client::quote_table(PGconn* conn, std::string& out) {
  std::string error;
  if (sql::quote_qualified(conn, options_.table, out, error)) return true;
  sink_.report("cannot quote the table name \"" + options_.table + "\": " + error, "BAD_TABLE_NAME");
  out = "\"\"";
  return false;
}

void Client::on_connection_ready(Link& link) {
  PgConnection& conn = *link.conn;
  std::string table;
  quote_table(conn.raw(), table);
  if (&link == publish_link_.get()) {
    publisher_->set_table(table);
    std::vector<Query> setup;
    if (options_.create_table) {
      Query create;
      create.sql = sql::create_table(table);
      create.done = [this](PGresult* res, const std::string& error) {
        // Two servers creating the table at once: one of them loses the race, harmlessly.
        const std::string code = sqlstate(res);
        if (!error.empty() && res != nullptr && code != "42P07" && code != "23505") {
          sink_.report("cannot create table " + options_.table + ": " + error, "CREATE_TABLE_FAILED");
        }
      };
      setup.push_back(std::move(create));
    }
    for (Query& q : publisher_->setup_queries()) setup.push_back(std::move(q));
    conn.enqueue_front(std::move(setup));
  } else if (listener_) {
    listener_->set_table(table);
    conn.enqueue_front(listener_->setup_queries());
    listener_->on_ready();
  }
  if (link.outage_reported) {
    link.outage_reported = false;
    sink_.report(std::string("reconnected the ") + link.role + " connection to PostgreSQL", "RECONNECTED");
  }
  publisher_->pump();
}

void Client::on_connection_down(Link& link, const std::string& error, bool was_ready) {
  if (!link.outage_reported) {
    // Once per outage: no report flood while the database stays down.
    link.outage_reported = true;
    sink_.report(std::string(link.role) + " connection to PostgreSQL " + (was_ready ? "lost: " : "failed: ") + error +
                     " (reconnecting)",
                 "CONNECTION_LOST");
  }
  if (closing_ && !closed_ && &link == publish_link_.get()) finish_close();
}

std::string Client::publish(const std::string& channel, const Value& message, bool has_binary) {
  if (closing_ || closed_) return "the adapter is closed";
  if (channel.size() > kMaxChannelBytes) {
    return "channel name \"" + channel + "\" is " + std::to_string(channel.size()) +
           " bytes; PostgreSQL allows at most 63";
  }
  OutMessage out;
  out.channel = channel;
  try {
    encode_message(message, has_binary, options_.payload_threshold, out);
  } catch (const std::exception& e) {  // e.g. a string of 4 GiB or more: msgpack cannot hold it
    return std::string("cannot encode the message: ") + e.what();
  }
  const bool pushed = publisher_->push(std::move(out));
  publish_link_->conn->update_keepalive();
  if (!pushed) {
    return "the publish queue is full (" + std::to_string(options_.max_queue) +
           " messages waiting for PostgreSQL): message dropped";
  }
  return "";
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
    if (!error.empty()) sink_.report("cleanup of " + options_.table + " failed: " + error, "CLEANUP_FAILED");
  };
  q.per_connection = true;
  cleanup_running_ = true;
  link.conn->enqueue(std::move(q));
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
                 "PUBLISH_FAILED");
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
