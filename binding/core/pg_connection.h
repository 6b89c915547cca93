// One libpq connection in non-blocking mode, driven by a uv_poll on PQsocket in Node's loop.
// It connects, runs queued commands in order, hands notifications to its owner, and reconnects by
// itself with capped exponential backoff and jitter when the connection is lost. With libpq 14+ it
// keeps up to kPipelineDepth commands in flight (pipeline mode, each command followed by its own
// sync: its own implicit transaction, which a refused neighbour cannot abort); with an older libpq
// (looked up at run time: the binary must load against libpq 13) one at a time.
#pragma once

#include <libpq-fe.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/uv_handle.h"

namespace pgadapter {

struct ConnParams {
  std::vector<std::string> keys;
  std::vector<std::string> values;
};

struct Notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;
};

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// A command. With `prepare` set it creates the prepared statement `name` from `sql`;
// else it runs `name` (a prepared statement) when not empty, or `sql` with parameters.
struct Query {
  std::string sql;
  std::string name;
  bool prepare = false;
  std::vector<std::string> params;
  std::vector<int> param_formats;  // 1 = binary; empty = all text
  int result_format = 0;           // 1 = binary
  bool per_connection = false;     // setup for one session: dropped, not rerun, if it is lost first
  // res: the command's result (may be null when the connection was lost); error: empty on success.
  std::function<void(PGresult* res, const std::string& error)> done;
};

struct ReconnectPolicy {
  uint32_t initial_delay_ms = 100;
  uint32_t max_delay_ms = 10000;
  uint32_t connect_timeout_ms = 10000;
  uint32_t health_check_ms = 15000;  // a "SELECT 1" on a connection idle this long (0 = off)
  // A command that gets no byte back for this long means a frozen server or a black-holed network, which
  // TCP may never notice (the peer's kernel still acknowledges): the connection is dropped (0 = off).
  uint32_t response_timeout_ms = 10000;
  // Weak: the connection keeps Node's loop alive only while it has work (an emitter in a script).
  bool weak = false;
};

class PgConnection {
 public:
  struct Hooks {
    // Asks the owner for connection parameters (maybe asynchronously); answer exactly once.
    std::function<void(std::function<void(bool ok, ConnParams params, std::string error)>)> get_params;
    std::function<void()> on_ready;  // connected: queue setup commands with enqueue_front
    // A connect attempt failed or an established connection was lost.
    std::function<void(const std::string& error, bool was_ready)> on_down;
    std::function<void(std::vector<Notification>& batch)> on_notifications;
    std::function<void()> on_idle;  // no command in flight and none queued
    std::function<bool()> has_work;  // the owner holds messages for this connection (weak mode)
  };

  PgConnection(uv_loop_t* loop, std::string name, ReconnectPolicy policy, Hooks hooks);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  void start();
  void enqueue(Query q);
  void enqueue_front(std::vector<Query> setup);  // runs these first, in order
  // Immediate. Commands queued or in flight are settled with an error (null result), but for the
  // per-connection ones (setup, health checks, maintenance): nobody waits for those.
  void close();
  // Weak mode: re-evaluates whether this connection keeps the loop alive.
  void update_keepalive();

  bool ready() const { return state_ == State::Ready; }
  bool closed() const { return state_ == State::Closed; }
  bool idle() const { return in_flight_.empty() && queue_.empty(); }
  size_t queued() const { return queue_.size() + in_flight_.size(); }
  // Commands sent before the first result is back. 4: enough to keep the connection busy during a
  // round trip and the commits PostgreSQL serialises (its NOTIFY lock), while the publisher's batches
  // stay large (messages waiting for a free slot join one statement); more only queue on the server.
  static constexpr size_t kPipelineDepth = 4;
  size_t depth() const { return pipelined_ ? kPipelineDepth : 1; }
  bool pipelined() const { return pipelined_; }
  int backend_pid() const { return backend_pid_; }
  PGconn* raw() const { return conn_.get(); }
  const std::string& name() const { return name_; }
  uv_loop_t* loop() const { return loop_; }

 private:
  enum class State { Idle, WaitingParams, Connecting, Ready, Backoff, Closed };
  struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };

  void begin_connect();
  void on_params(uint64_t attempt, bool ok, ConnParams params, std::string error);
  void watch(int events);
  static void on_poll(uv_poll_t* handle, int status, int events);
  void handle_connecting();
  void handle_ready_io(int status, int events);
  void became_ready();
  void fail(const std::string& error);
  void pump();
  bool send(const Query& q);
  void complete_front();
  void flush();
  void deliver_notifications();
  void on_connect_timeout();
  void on_backoff_done();
  void on_health_tick();
  bool start_timer_or_fail(bool started);
  std::string conn_error() const;

  uv_loop_t* loop_;
  std::string name_;
  ReconnectPolicy policy_;
  Hooks hooks_;
  State state_ = State::Idle;
  std::unique_ptr<PGconn, ConnDeleter> conn_;
  UvHandle<uv_poll_t> poll_;
  int poll_fd_ = -1;
  int poll_events_ = 0;
  UvTimer<PgConnection, &PgConnection::on_connect_timeout> connect_timer_;
  UvTimer<PgConnection, &PgConnection::on_backoff_done> backoff_timer_;
  UvTimer<PgConnection, &PgConnection::on_health_tick> health_timer_;
  std::deque<Query> queue_;
  struct InFlight {
    Query query;
    uint64_t sent_at;    // loop time it was sent
    PgResultPtr result;  // the first error, else the last result
  };
  std::deque<InFlight> in_flight_;  // in the order sent, which is the order of the results
  bool pipeline_allowed_;           // libpq has pipeline mode (and the test switch is off)
  bool pipelined_ = false;          // this session is in pipeline mode
  uint64_t attempt_ = 0;   // identifies the current connect attempt (stale answers are ignored)
  uint32_t failures_ = 0;  // consecutive failed attempts, for the backoff
  uint64_t last_activity_ = 0;  // loop time of the last byte read
  bool overdue_ = false;        // the oldest command in flight was already overdue at the previous tick
  int backend_pid_ = 0;
  bool processing_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pgadapter
