// Publishes cluster messages in order on one connection. Messages waiting while a batch is in
// flight are grouped: a run of small messages goes out as one statement (one transaction, one
// round trip), and so does a run of attachments (rows inserted and announced together). A batch
// PostgreSQL refuses is sent again in halves, so one bad message fails alone.
#pragma once

#include <deque>
#include <functional>
#include <string>

#include "core/message_encoder.h"
#include "core/pg_connection.h"

namespace pgadapter {

class Stats;

class Publisher {
 public:
  struct Hooks {
    std::function<void(const std::string& message, const char* code)> report;
    std::function<bool(const std::string& channel)> can_send;  // false until the channel is LISTENed
    std::function<void()> on_drained;
  };

  Publisher(PgConnection& conn, size_t max_queue, Hooks hooks);

  // Queues a message; false when the queue is full (the message is dropped).
  bool push(OutMessage message);
  // Statements to run first on each new connection.
  std::vector<Query> setup_queries() const;
  void set_table(std::string quoted_table) { table_ = std::move(quoted_table); }
  void set_log_table(std::string quoted_table) { log_table_ = std::move(quoted_table); }
  void pump();
  bool drained() const { return queue_.empty() && !busy_; }
  size_t size() const { return queue_.size(); }
  size_t in_flight() const { return busy_ ? in_flight_ : 0; }  // of size(), those in the statement being run
  void set_stats(Stats* stats) { stats_ = stats; }

 private:
  void send_attachments();
  void send_logged();
  void send_batch();
  size_t batch_limit() const;
  // lost: the connection dropped with the statement in flight (it may have run: not resent).
  void finish(size_t count, bool lost, const std::string& error);

  PgConnection& conn_;
  size_t max_queue_;
  Hooks hooks_;
  std::string table_;
  std::string log_table_;
  std::deque<OutMessage> queue_;
  // After a refused batch: how many messages at the front of the queue each next statement may
  // take, in order (the halves of the refused batch, halved again when one is refused too).
  std::deque<size_t> pieces_;
  bool busy_ = false;
  size_t in_flight_ = 0;
  Stats* stats_ = nullptr;
};

}  // namespace pgadapter
