// The native client behind one createAdapter() call (or one Emitter): a publisher and, for adapters, a
// listener (each owns its connection), plus what runs beside them: the periodic cleanup of the attachment
// table, and the sessions of connection state recovery.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/connection_owner.h"
#include "core/listener.h"
#include "core/pg_connection.h"
#include "core/presence.h"
#include "core/publisher.h"
#include "core/recovery.h"
#include "core/report_limiter.h"
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
  uint32_t statement_timeout_ms = 5000;  // on every session of ours (0: PostgreSQL's setting)
  std::string presence_name;  // application_name of the listening session (quiet idle); empty: left as connected
  ReconnectPolicy reconnect;
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
  // Queues a message the caller already wrote as JSON without binary (JSON.stringify is the pure-JS
  // adapter's own encoding). fits=false, and nothing queued, when it does not go in a notification:
  // the caller then publishes the message itself (an attachment).
  std::string publish_json(const std::string& channel, std::string json, bool& fits);
  // Sends what is queued and lets the statements run for callers finish (up to flush_timeout_ms), then
  // closes every connection, settles every pending callback, and calls done (every caller's, once).
  void close(uint32_t flush_timeout_ms, std::function<void()> done);

  // Connection state recovery (see recovery.h, and README.md for the argument).
  void enable_recovery(uint32_t max_disconnection_ms);
  // A recoverable broadcast. `done` gets its offset, or an empty one when it went out unlogged
  // (recovery tables unusable, PostgreSQL unreachable: local delivery never waits for them).
  // Returns an empty string, or why it was dropped (then `done` is not called).
  std::string publish_logged(const std::string& channel, const Value& message, bool has_binary,
                             std::function<void(const std::string& offset, const std::string& error)> done);
  // Written at once, or when the connection is back (kept up to max_disconnection_ms, bounded).
  void persist_session(const std::string& pid, const std::string& sid, const std::string& nsp,
                       const std::vector<std::string>& rooms, Value data,
                       std::function<void(const std::string& error)> done);
  // found=false: no such session, expired, already taken, the offset is gone, more than `max_packets`
  // missed, or too many restores are running (kMaxRestores: each is a statement on the listening
  // connection, ahead of fetches).
  void restore_session(const std::string& pid, const std::string& nsp, const std::string& offset, uint32_t max_packets,
                       std::function<void(bool found, RestoredSession session, const std::string& error)> done);
  static constexpr size_t kMaxRestores = 16;

  // Quiet idle (see README): the listening session's application_name, set now and at every connect.
  void set_presence_name(const std::string& name);
  // See presence_query (presence.h), on the listening connection. ok=false also when not connected.
  void presence(const std::string& pattern,
                std::function<void(bool ok, PresenceRows rows, const std::string& error)> done);
  static constexpr size_t kMaxPendingSessions = 10000;
  void close_now();
  bool closed() const { return closed_; }

  // Every report to the errorHandler passes here: counted in stats(), then handed to the sink unless
  // its code is over the rate limit (ReportLimiter; a summary follows). admit_report only counts and
  // tells whether a report made elsewhere (JavaScript) may be handed over.
  void report(const std::string& message, const char* code);
  bool admit_report(const std::string& code);

  // For stats() and health().
  Stats& stats() { return stats_; }
  bool listens() const { return listener_ != nullptr; }
  ConnectionStats::State connection_state(bool listening) const;
  size_t queued() const { return publisher_->size(); }  // waiting or in flight
  size_t in_flight() const { return publisher_->in_flight(); }

 private:
  // What each connection's owner gets from us; on_up: what follows its connection's setup.
  ConnectionOwner::Host host(std::function<void()> on_up);
  void on_connection_up();
  void announce_listening();
  bool quote_table(PGconn* conn, std::string& out);
  struct PendingSession {
    std::string pid, sid, nsp;
    std::vector<std::string> rooms;
    Value data;
    uint64_t queued_at;
    std::function<void(const std::string&)> done;
  };
  void flush_sessions();
  void on_recovery_tick();
  std::string enqueue(const std::string& channel, const Value& message, bool has_binary, std::unique_ptr<LogRecord> log);
  // Why a message for `channel` cannot be published now (closing, a bad channel name), or "".
  std::string refusal(const std::string& channel);
  // Hands an encoded message to the publisher; "" or why it was dropped (queue full).
  std::string queue(OutMessage out);
  void on_cleanup_tick();
  void on_report_tick();
  void report_summaries(bool all);
  void on_flush_deadline();
  bool flushed() const;
  void maybe_finish_close();
  // report_unsent: the flush deadline passed with messages still queued on a live connection.
  // report_unsent: messages never sent are reported (not from environment teardown: no JavaScript then).
  void finish_close(bool report_unsent = true);

  uv_loop_t* loop_;
  ClientOptions options_;
  ClientSink& sink_;
  Stats stats_;  // before what points to it
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Listener> listener_;  // null for an emitter
  // Runs our own statements (sessions, cleanup): the listener's connection, or the publisher's without one.
  ConnectionOwner* statements_ = nullptr;
  UvTimer<Client, &Client::on_cleanup_tick> cleanup_timer_;
  UvTimer<Client, &Client::on_flush_deadline> flush_timer_;
  UvTimer<Client, &Client::on_recovery_tick> recovery_timer_;
  UvTimer<Client, &Client::on_report_tick> report_timer_;  // runs while reports are suppressed
  ReportLimiter limiter_;
  bool cleanup_running_ = false;
  std::unique_ptr<Recovery> recovery_;
  std::deque<PendingSession> pending_sessions_;
  size_t restores_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  std::vector<std::function<void()>> close_waiters_;  // every close() call, settled together
  std::vector<std::string> listening_pending_;  // LISTEN confirmed, publishing connection not up yet
};

}  // namespace pgadapter
