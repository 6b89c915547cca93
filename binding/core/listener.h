// LISTENs on the adapter's channels and turns notifications into cluster messages, in order:
// it skips our own messages, fetches attachment rows in batches, decodes them, reports and
// skips anything malformed, and hands each ready run of messages over in one batch.
// Anyone may NOTIFY on our channels, so what waits here is bounded (messages and bytes, reported
// and dropped past the bound) and an attachment id announced again is reported, not fetched again.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/pg_connection.h"
#include "core/value.h"

namespace pgadapter {

class Stats;

struct Inbound {
  std::string channel;
  Value message;     // a decoded attachment, or
  std::string json;  // a validated inline notification, parsed on the JavaScript side (faster there)
};

class Listener {
 public:
  struct Hooks {
    std::function<void(std::vector<Inbound>& batch)> deliver;
    std::function<void(const std::string& message, const char* code)> report;
    std::function<void(const std::string& channel)> on_listening;  // first LISTEN confirmed
    std::function<int()> own_backend_pid;                           // our publisher's session
  };

  Listener(PgConnection& conn, std::string uid, Hooks hooks);

  void set_table(std::string quoted_table) { table_ = std::move(quoted_table); }
  void set_stats(Stats* stats) { stats_ = stats; }
  void add(const std::string& channel);
  void remove(const std::string& channel);
  bool listening(const std::string& channel) const;
  // True while a channel waits for its first LISTEN: publishing to it waits too, so that the
  // answers to our first message (e.g. the initial heartbeat) cannot be missed.
  bool awaiting_first_listen(const std::string& channel) const;
  std::vector<Query> setup_queries();  // LISTEN every channel on a new connection
  void on_notifications(std::vector<Notification>& batch);
  void on_ready();  // retry attachment fetches cut by a lost connection

  // Connection state recovery. Every logged broadcast has an offset (a log id, in commit order).
  // delivered_offset(): the highest offset of another server that this listener has handed over,
  // or that committed before our LISTENs took effect (the baseline): those never arrive live.
  void enable_recovery(std::string quoted_log_table);
  int64_t delivered_offset() const { return std::max(last_offset_, baseline_); }
  int64_t baseline() const { return baseline_; }
  // Our own logged broadcast `offset` was committed: `deliver` runs when its notification comes by in
  // the stream, so a server hands its clients its own and the others' packets in one order (the
  // offsets' order), which is what a client's last offset means.
  void own_logged(int64_t offset, std::function<void()> deliver);
  // The publishing connection was lost: an own notification without a result will never get one.
  void drop_unmatched_own();
  // Runs `q` on the listening connection, in stream order with the notifications.
  void run(Query q) { conn_.enqueue(std::move(q)); }

 private:
  enum class State { Ready, Pending, Fetching, Dropped, OwnPending, OwnReady };
  struct Entry {
    std::string channel;
    Value message;
    std::string json;
    int64_t attachment_id = 0;
    int64_t offset = 0;
    State state = State::Ready;
    size_t bytes = 0;                   // counted in inbound_bytes_: the JSON or the attachment's msgpack
    std::function<void()> own_deliver;  // OwnReady
  };

  Query listen_query(const std::string& channel, bool listen);
  Query baseline_query();
  void accept(Notification& note);
  bool accept_own(const Notification& note);
  bool inbound_full() const;
  bool first_announcement(int64_t attachment_id);
  void fetch();
  void on_fetched(PGresult* res, const std::string& error);
  void deliver();
  void pop_front();
  void report(const std::string& message, const char* code) {
    if (hooks_.report) hooks_.report(message, code);
  }

  PgConnection& conn_;
  std::string uid_;
  Hooks hooks_;
  std::string table_;
  std::map<std::string, bool> channels_;  // channel -> LISTEN confirmed at least once
  std::deque<Entry> inbound_;
  size_t inbound_bytes_ = 0;
  size_t overflow_dropped_ = 0;  // notifications dropped since the queue was last below its bounds
  std::unordered_set<int64_t> seen_ids_;  // the latest attachment ids announced, oldest first in seen_order_
  std::deque<int64_t> seen_order_;
  bool fetching_ = false;
  Stats* stats_ = nullptr;
  std::string log_table_;  // quoted; empty while recovery is off
  int64_t last_offset_ = 0;
  int64_t baseline_ = 0;
  std::map<int64_t, std::function<void()>> own_results_;  // committed, notification not seen yet
};

}  // namespace pgadapter
