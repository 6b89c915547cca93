// The one owner of a connection: the publisher and the listener each derive from it, so each builds
// its own connection and nothing else reaches into it. What every connection does alike lives here:
// the session setup (statement timeout, then the owner's statements), and the outage bookkeeping
// (CONNECTION_LOST once per outage, RECONNECTED once the next session's setup has run).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/pg_connection.h"

namespace pgadapter {

class Stats;
struct ConnectionStats;

class ConnectionOwner {
 public:
  // From the client: the same for every connection but for on_up.
  struct Host {
    uv_loop_t* loop = nullptr;
    ReconnectPolicy reconnect;
    uint32_t statement_timeout_ms = 0;  // 0: PostgreSQL's setting
    Stats* stats = nullptr;
    std::function<void(std::function<void(bool ok, ConnParams params, std::string error)>)> get_params;
    std::function<void(const std::string& message, const char* code)> report;
    // The attachment table's name quoted for `conn` (false: reported, `out` is a harmless placeholder).
    std::function<bool(PGconn* conn, std::string& out)> quote_table;
    std::function<void()> on_up;    // connected, its setup queued (after the owner's on_connected)
    std::function<void()> on_down;  // a connect attempt failed or the session was lost (after the owner's)
    std::function<void()> on_idle;  // nothing queued or in flight
  };

  // `role` names the connection in reports ("publishing", "listening"); `counts` gets its reconnects.
  ConnectionOwner(const char* role, ConnectionStats& counts, Host host);
  virtual ~ConnectionOwner() = default;
  ConnectionOwner(const ConnectionOwner&) = delete;
  ConnectionOwner& operator=(const ConnectionOwner&) = delete;

  void start() { conn_.start(); }
  // Immediate: what is queued or in flight is settled by the connection (see PgConnection::close). The
  // client closes it before destroying its owner: those callbacks reach into the owner.
  void close_connection() { conn_.close(); }
  bool connected() const { return conn_.ready(); }
  // Connected with statements queued or in flight.
  bool busy() const { return conn_.ready() && !conn_.idle(); }
  int backend_pid() const { return conn_.backend_pid(); }
  // Down since a report of CONNECTION_LOST, not back yet (for stats() and health()).
  bool outage() const { return outage_reported_; }

  // Queues the statements `make(PGconn*)` builds for this session (a Query or a vector of them; the
  // connection is there to quote names with), behind what is queued. False, and `make` is not called,
  // while not connected.
  template <typename Make>
  bool run(Make&& make) {
    if (!conn_.ready()) return false;
    queue(std::forward<Make>(make)(conn_.raw()));
    return true;
  }

 protected:
  PgConnection& conn() { return conn_; }
  Stats* stats() const { return host_.stats; }
  void report(const std::string& message, const char* code) {
    if (host_.report) host_.report(message, code);
  }

  // The owner's statements on each new session, after the statement timeout (`table`: quoted).
  virtual void add_setup(const std::string& table, std::vector<Query>& setup) = 0;
  virtual void on_connected() {}                   // its setup is queued
  virtual void on_connection_lost() {}             // or a connect attempt failed
  virtual bool has_work() const { return false; }  // weak mode: keeps the loop alive while true
  virtual void on_notifications(std::vector<Notification>& batch) { (void)batch; }

 private:
  PgConnection::Hooks hooks();
  void on_ready();
  void on_down(const std::string& error, bool was_ready);
  void queue(Query q) { conn_.enqueue(std::move(q)); }
  void queue(std::vector<Query> qs) {
    for (Query& q : qs) conn_.enqueue(std::move(q));
  }

  const char* role_;
  ConnectionStats& counts_;
  Host host_;
  bool outage_reported_ = false;
  PgConnection conn_;  // last: its hooks use the rest
};

}  // namespace pgadapter
