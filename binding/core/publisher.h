// Publishes cluster messages in order on one connection. Messages pushed during one phase of Node's
// loop, and those waiting while the connection's statements are in flight, are grouped: a run of small
// messages goes out as one statement (one transaction, one round trip), and so does a run of
// attachments (rows inserted and announced together). Up to the connection's depth of statements are in
// flight at once (pipeline mode), each owning the next messages of the queue. A batch PostgreSQL refuses
// is sent again in halves, so one bad message fails alone; the statements already in flight then go first.
#pragma once

#include <deque>
#include <functional>
#include <string>

#include "core/connection_owner.h"
#include "core/message_encoder.h"
#include "core/recovery.h"
#include "core/uv_handle.h"

namespace pgadapter {

// It owns the publishing connection (see ConnectionOwner).
class Publisher : public ConnectionOwner {
 public:
  struct Hooks {
    std::function<bool(const std::string& channel)> can_send;  // false until the channel is LISTENed
    std::function<void()> on_drained;
    std::function<void()> release_own;  // before logged messages are handed back unlogged
  };

  Publisher(Host host, ConnectionStats& counts, size_t max_queue, Hooks hooks);

  // Queues a message; false when the queue is full (the message is dropped). It is sent at the end of the
  // current phase of the loop (check, or prepare: before the loop waits for I/O), with the others pushed
  // meanwhile: a synchronous burst is one statement, and a message from a timer does not wait a turn.
  bool push(OutMessage message);
  // Each new session first creates the attachment table `name` if missing (CREATE_TABLE_FAILED if it cannot).
  void create_table(std::string name) { create_table_ = std::move(name); }
  // Connection state recovery: runs of logged messages go out as one statement (Recovery::log_batch). Each
  // session, this one at once, first runs the recovery's setup.
  void set_recovery(Recovery* recovery, std::string uid);
  // The queued logged messages go out unlogged; their `done` gets an empty offset now.
  void unlog_queued();
  void pump();
  bool drained() const { return queue_.empty() && statements_.empty(); }
  size_t size() const { return queue_.size(); }
  // Closing: what is still queued will not be sent. Rejects the waiting logged broadcasts (the statement
  // in flight is settled by its connection) and, with `report_unsent`, says how many messages (PUBLISH_FAILED).
  void abandon(const std::string& why, bool report_unsent);
  size_t in_flight() const { return sent_; }  // of size(), those in the statements being run

 private:
  void add_setup(const std::string& table, std::vector<Query>& setup) override;
  // What waits for an offset now would wait for the database: it goes out unlogged (delivered
  // locally at once, to the other servers when the connection is back).
  void on_connection_lost() override;
  bool has_work() const override { return !drained(); }
  // Statements to run first on each new connection.
  std::vector<Query> setup_queries() const;
  void on_loop_turn();
  void send_attachments();
  void send_logged();
  void on_logged(size_t count, PGresult* res, const std::string& error);
  void unlog(size_t from, size_t count);
  void send_batch();
  size_t batch_limit() const;
  void sent(size_t count, bool logged, Query q);
  // The oldest statement in flight is done (results come in the order sent).
  void done(size_t count);
  // lost: the connection dropped with the statement in flight (it may have run: not resent).
  void finish(size_t count, bool lost, const std::string& error);

  size_t max_queue_;
  size_t turn_added_ = 0;  // pushed since the last turn of the loop (see push)
  Hooks hooks_;
  std::string create_table_;  // empty: not created
  std::string table_;         // quoted for the current session
  Recovery* recovery_ = nullptr;
  std::string uid_;
  // The first sent_ messages are in the statements in flight, in order; the rest wait.
  std::deque<OutMessage> queue_;
  struct Statement {
    size_t count;  // its messages: the next ones of the queue
    bool alone;    // nothing else in flight meanwhile: logged (see send_logged), or a retried piece
  };
  std::deque<Statement> statements_;  // in flight, oldest first
  size_t sent_ = 0;
  // After a refused batch: how many of the waiting messages each next statement may take, in order
  // (the halves of the refused batch, halved again when one is refused too).
  std::deque<size_t> pieces_;
  bool abandoned_ = false;
  UvLoopHook<uv_check_t, Publisher, &Publisher::on_loop_turn> after_io_;
  UvLoopHook<uv_prepare_t, Publisher, &Publisher::on_loop_turn> before_io_;
};

}  // namespace pgadapter
