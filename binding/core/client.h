// The native client behind one createAdapter() call (or one Emitter): a publishing connection
// and, for adapters, a listening connection, plus the periodic cleanup of the attachment table.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/listener.h"
#include "core/pg_connection.h"
#include "core/publisher.h"
#include "core/stats.h"
#include "core/uv_handle.h"

namespace pgadapter {

struct ClientOptions {
  std::string uid;
  std::string table = "socket_io_attachments";
  size_t payload_threshold = 8000;
  uint32_t cleanup_interval_ms = 30000;  // 0: no cleanup
  size_t max_queue = 10000;
  bool create_table = false;
  bool listen = true;
  bool log = false;  // lifecycle lines to ClientSink::log (debug logging is on)
  std::string log_table = "socket_io_log";             // connection state recovery
  std::string session_table = "socket_io_sessions";
  ReconnectPolicy reconnect;
};

struct RestoredSession {
  int64_t snapshot_max = 0;    // highest log id the restore query could see
  int64_t baseline = 0;        // what committed before our LISTEN (see Listener::delivered_offset)
  std::string sid;
  Value rooms;                 // Array of strings
  Value data;                  // socket.data
  std::vector<std::pair<int64_t, Value>> packets;  // (offset, the packet's data array + its offset)
};

// Implemented by the N-API face: everything the core hands to JavaScript goes through here.
class ClientSink {
 public:
  virtual ~ClientSink() = default;
  virtual void get_params(std::function<void(bool ok, ConnParams params, std::string error)> answer) = 0;
  virtual void deliver(std::vector<Inbound>& batch) = 0;
  virtual void report(const std::string& message, const char* code) = 0;
  virtual void log(const std::string& /*line*/) {}
  // The first LISTEN on `channel` took effect and the publishing connection is up: every later
  // notification on it will be delivered, and our first messages on it go out.
  virtual void listening(const std::string& channel) { (void)channel; }
};

class Client {
 public:
  Client(uv_loop_t* loop, ClientOptions options, ClientSink& sink);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void start();
  void listen(const std::string& channel);
  void unlisten(const std::string& channel);
  // Encodes and queues a message. Returns an empty string, or why it was dropped.
  std::string publish(const std::string& channel, const Value& message, bool has_binary);
  // Sends what is queued (up to flush_timeout_ms), then closes every connection and calls done.
  void close(uint32_t flush_timeout_ms, std::function<void()> done);

  // Connection state recovery (see sql.h and lib/adapter.js for the argument).
  void enable_recovery(uint32_t max_disconnection_ms);
  std::string publish_logged(const std::string& channel, const Value& message, bool has_binary,
                             std::unique_ptr<LogRecord> log);
  void persist_session(const std::string& pid, const std::string& sid, const std::string& nsp,
                       const std::vector<std::string>& rooms, const Value& data,
                       std::function<void(const std::string& error)> done);
  // found=false: no such session, expired, already taken, or the offset is gone.
  void restore_session(const std::string& pid, const std::string& nsp, const std::string& offset,
                       std::function<void(bool found, RestoredSession session, const std::string& error)> done);
  void close_now();
  bool closed() const { return closed_; }

  // For stats() and health().
  Stats& stats() { return stats_; }
  bool listens() const { return listen_link_ != nullptr; }
  ConnectionStats::State connection_state(bool listening) const;
  size_t queued() const { return publisher_->size(); }  // waiting or in flight
  size_t in_flight() const { return publisher_->in_flight(); }

 private:
  struct Link;  // one connection and its outage bookkeeping
  void on_connection_ready(Link& link);
  void on_connection_down(Link& link, const std::string& error, bool was_ready);
  bool quote_table(PGconn* conn, std::string& out);
  bool quote(PGconn* conn, const std::string& name, std::string& out);
  std::vector<Query> recovery_setup(PGconn* conn);
  void cleanup_recovery(PgConnection& conn);
  std::string enqueue(const std::string& channel, const Value& message, bool has_binary, std::unique_ptr<LogRecord> log);
  void on_cleanup_tick();
  void on_flush_deadline();
  void finish_close();

  uv_loop_t* loop_;
  ClientOptions options_;
  ClientSink& sink_;
  Stats stats_;  // before what points to it
  std::unique_ptr<Link> publish_link_;
  std::unique_ptr<Link> listen_link_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Listener> listener_;
  UvTimer<Client, &Client::on_cleanup_tick> cleanup_timer_;
  UvTimer<Client, &Client::on_flush_deadline> flush_timer_;
  bool cleanup_running_ = false;
  bool recovery_ = false;
  uint32_t max_disconnection_ms_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  std::function<void()> close_done_;
  std::vector<std::string> listening_pending_;  // LISTEN confirmed, publishing connection not up yet
};

}  // namespace pgadapter
