// LISTENs on the adapter's channels and turns notifications into cluster messages, in order:
// it skips our own messages, fetches attachment rows in batches, decodes them, reports and
// skips anything malformed, and hands each ready run of messages over in one batch.
// Anyone may NOTIFY on our channels, so what waits here is bounded (messages and bytes, reported
// and dropped past the bound) and an attachment id announced again after its row was handed over is
// reported, not fetched again.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/broadcast_relay.h"
#include "core/connection_owner.h"
#include "core/recovery.h"
#include "core/value.h"

namespace pgadapter {

struct Inbound {
  std::string channel;
  Value message;     // a decoded attachment, or
  std::string json;  // a validated inline notification, parsed on the JavaScript side (faster there)
  // A plain broadcast (broadcast_relay.h): its packet's data as JSON; `json` is then the envelope.
  std::string wire;
  std::vector<std::string> binaries;  // its binaries, beside `wire` (Relayed::binaries)
  WireText wire_text = WireText::Other;  // Relayed::text
  int64_t offset = 0;  // connection state recovery: a verified offset, in stream order (0: none)
  bool attachment = false;  // its content came from the attachment table
};

// It owns the listening connection (see ConnectionOwner): what else runs there (session restores,
// presence) goes through run(), in stream order with the notifications.
class Listener : public ConnectionOwner {
 public:
  struct Hooks {
    std::function<void(std::vector<Inbound>& batch)> deliver;
    std::function<void(const std::string& channel)> on_listening;  // first LISTEN confirmed
    std::function<int()> own_backend_pid;                           // our publisher's session
    std::function<uint64_t()> now;                                  // ms, for the bounds on own results
  };

  Listener(Host host, ConnectionStats& counts, std::string uid, Hooks hooks);

  void add(const std::string& channel);
  void remove(const std::string& channel);
  bool listening(const std::string& channel) const;
  // True while a channel waits for its first LISTEN: publishing to it waits too, so that the
  // answers to our first message (e.g. the initial heartbeat) cannot be missed.
  bool awaiting_first_listen(const std::string& channel) const;
  // Quiet idle (see README): this session's application_name, set now and at every connect, before the LISTENs.
  void set_presence_name(const std::string& name);

  // Connection state recovery (see README.md, "Why no packet is missed"). Every logged broadcast has
  // an offset (a log id, in commit order). Another server's offset is handed over only once checked
  // against the log (same id, uid and namespace) and only if above every offset handed over before.
  // Offsets at or below the baseline (the log's highest id once our LISTENs took effect) may or may
  // not be notified: those that are, are delivered live unless a restore replayed them already.
  // Our own results are ordered by our own notifications (our publishing session's pid), never by
  // offsets from the wire, and wait for them at most kOwnWaitMs.
  void set_recovery(Recovery* recovery);
  // For a restore, which replays the log's rows up to `baseline` as delivered here: the baseline,
  // lowered below the notifications still waiting to be delivered; nothing at or below it is
  // delivered live afterwards (a restored socket would get it twice). Waits until no offset it
  // depends on waits for its check (a forged one must not lower it); ok=false: the listening
  // connection was lost or we are closing meanwhile.
  void restore_point(std::function<void(bool ok, int64_t baseline)> done);
  // Our own logged broadcast `offset` was committed: `deliver` runs at its place in the stream.
  void own_logged(int64_t offset, std::function<void()> deliver);
  // Our own results will not be matched any more (publishing connection lost, or logging refused):
  // hand back those waiting, forget the notifications waiting for theirs.
  void release_own();
  void expire(uint64_t now_ms);  // called periodically: ends waits past kOwnWaitMs
  // Closing: settles every own logged broadcast still waiting for its turn in the stream.
  void abandon();
  static constexpr uint64_t kOwnWaitMs = 3000;

 private:
  void add_setup(const std::string& table, std::vector<Query>& setup) override;
  std::vector<Query> setup_queries();  // LISTEN every channel on a new connection
  void on_notifications(std::vector<Notification>& batch) override;
  void on_connected() override;        // retry attachment fetches cut by a lost connection
  void on_connection_lost() override;

  enum class State { Ready, Pending, Fetching, Dropped, OwnPending, OwnReady };
  enum class Check { None, Waiting, InFlight };  // of a foreign offset against the log
  struct Entry {
    std::string channel;
    Value message;
    std::string json;
    std::string wire;  // see Inbound
    std::vector<std::string> binaries;
    WireText wire_text = WireText::Other;
    int64_t attachment_id = 0;
    int64_t offset = 0;
    State state = State::Ready;
    Check check = Check::None;
    std::string uid, nsp;               // what the log row of `offset` must say
    int pid = 0;                        // the notifying session
    size_t bytes = 0;                   // counted in inbound_bytes_: the JSON or the attachment's msgpack
    std::function<void()> own_deliver;  // OwnReady
    uint64_t since = 0;                 // OwnPending
  };
  struct OwnResult {
    std::function<void()> deliver;
    uint64_t since;
  };

  Query listen_query(const std::string& channel, bool listen);
  Query baseline_query();
  void accept(Notification& note);
  void accept_own(const Notification& note);
  void insert_own(int64_t offset, std::function<void()> deliver);
  void verify();
  bool inbound_full() const;
  bool first_delivery(int64_t attachment_id);  // false: this id was handed over already
  void report_announced_again(const Entry& e);
  void fetch();
  void on_fetched(PGresult* res, const std::string& error);
  void deliver();
  void pop_front();

  std::string uid_;
  Hooks hooks_;
  std::string table_;  // quoted for the current session
  std::string presence_name_;  // empty: application_name left as connected
  std::map<std::string, bool> channels_;  // channel -> its first LISTEN was answered (confirmed or refused)
  std::deque<Entry> inbound_;
  size_t inbound_bytes_ = 0;
  size_t overflow_dropped_ = 0;  // notifications dropped since the queue was last below its bounds
  std::unordered_set<int64_t> delivered_ids_;  // the latest attachment ids fetched and handed over, oldest first
  std::deque<int64_t> delivered_order_;
  bool fetching_ = false;
  Recovery* recovery_ = nullptr;  // null while recovery is off
  bool verifying_ = false;
  // Sessions one of whose offsets the log confirmed (pid -> uid, when): a writer of the log, whose
  // later offsets need no query for kWriterTrustMs. PostgreSQL sets the pid; no payload can.
  std::unordered_map<int, std::pair<std::string, uint64_t>> writers_;
  // Sessions that sent an offset the log does not have (pid -> when): for kWriterTrustMs, their
  // offsets are ignored at once (reported), without a query and without waiting in the queue.
  std::unordered_map<int, uint64_t> suspects_;
  // Offsets waiting for their check, by session: bounded per session (kMaxWaitingPerSession, past
  // it the session's notifications are dropped and reported), so that a flood from one session
  // cannot fill the queue before its first check (one round trip) judges it.
  std::unordered_map<int, size_t> waiting_checks_;
  static constexpr size_t kMaxWaitingPerSession = 10000;
  void settle_check(Entry& e);
  bool trusted(int pid, const std::string& uid, uint64_t now) const;
  bool suspected(int pid, uint64_t now) const;
  void report_forged(const Entry& e);
  static constexpr uint64_t kWriterTrustMs = 10000;
  bool synced_ = false;       // the baseline of this listening session is known
  int64_t last_offset_ = 0;   // highest offset handed over
  int64_t baseline_ = 0;
  int64_t restored_ = 0;      // highest baseline handed to a restore
  std::vector<std::function<void(bool, int64_t)>> waiting_restores_;  // see restore_point
  bool restore_ready() const;
  int64_t restore_baseline();
  void settle_restores();
  void fail_restores();
  int64_t own_claimed_ = 0;   // highest own offset handed back or queued to be
  std::map<int64_t, OwnResult> own_results_;  // committed, our notification not seen yet
};

}  // namespace pgadapter
