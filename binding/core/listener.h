// LISTENs on the adapter's channels and turns notifications into cluster messages, in order:
// it skips our own messages, fetches attachment rows in batches, decodes them, reports and
// skips anything malformed, and hands each ready run of messages over in one batch.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/pg_connection.h"
#include "core/value.h"

namespace pgadapter {

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
  void add(const std::string& channel);
  void remove(const std::string& channel);
  bool listening(const std::string& channel) const;
  // True while a channel waits for its first LISTEN: publishing to it waits too, so that the
  // answers to our first message (e.g. the initial heartbeat) cannot be missed.
  bool awaiting_first_listen(const std::string& channel) const;
  std::vector<Query> setup_queries();  // LISTEN every channel on a new connection
  void on_notifications(std::vector<Notification>& batch);
  void on_ready();  // retry attachment fetches cut by a lost connection

 private:
  enum class State { Ready, Pending, Fetching, Dropped };
  struct Entry {
    std::string channel;
    Value message;
    std::string json;
    int64_t attachment_id = 0;
    State state = State::Ready;
  };

  Query listen_query(const std::string& channel, bool listen);
  void accept(Notification& note);
  void fetch();
  void on_fetched(PGresult* res, const std::string& error);
  void deliver();
  void report(const std::string& message, const char* code) {
    if (hooks_.report) hooks_.report(message, code);
  }

  PgConnection& conn_;
  std::string uid_;
  Hooks hooks_;
  std::string table_;
  std::map<std::string, bool> channels_;  // channel -> LISTEN confirmed at least once
  std::deque<Entry> inbound_;
  bool fetching_ = false;
};

}  // namespace pgadapter
