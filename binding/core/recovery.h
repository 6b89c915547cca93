// Connection state recovery in the core: the log and session tables (names, DDL, whether they are
// usable), every statement on them, and the decoding of their rows. The publisher logs batches with
// it, the listener verifies offsets and reads its baseline with it, the client persists, restores
// and cleans up with it. The ordering argument is in README.md ("Why no packet is missed").
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/message_encoder.h"
#include "core/pg_connection.h"
#include "core/value.h"

namespace pgadapter {

struct RestoredSession {
  int64_t snapshot_max = 0;  // highest log id the restore query could see
  int64_t baseline = 0;      // what committed before our LISTEN (see Listener::baseline)
  std::string sid;
  Value rooms;  // Array of strings
  Value data;   // socket.data
  std::vector<std::pair<int64_t, Value>> packets;  // (offset, the packet's data array + its offset)
};

// One row of a log lookup: who logged `id`, for which namespace.
struct LogRow {
  int64_t id = 0;
  std::string uid, nsp;
};

class Recovery {
 public:
  enum class State { Unknown, Available, Unavailable };
  using Report = std::function<void(const std::string& message, const char* code)>;

  Recovery(std::string log_table, std::string session_table, uint32_t max_disconnection_ms, Report report);

  // On each new publishing connection: create the tables if missing (when the role may), then
  // find out whether they are there. Missing: reported once (RECOVERY_UNAVAILABLE) with their DDL,
  // and broadcasts go out unlogged (cross-server delivery never depends on these tables).
  std::vector<Query> setup_queries(PGconn* conn);
  State state() const { return state_; }
  bool usable() const { return state_ != State::Unavailable; }
  // A logged statement failed for a reason that will not go away by itself.
  void mark_unavailable(const std::string& why);
  uint32_t max_disconnection_ms() const { return max_disconnection_ms_; }

  // The statement logging and announcing a run of recoverable broadcasts (see publisher.cc).
  Query log_batch(PGconn* conn, const std::string& quoted_attachment_table, const std::string& uid,
                  const std::vector<const OutMessage*>& run) const;
  // $1 bigint[] -> (id, uid, nsp) of the rows that exist.
  Query verify(PGconn* conn, const std::vector<int64_t>& ids,
               std::function<void(bool ok, std::vector<LogRow> rows, const std::string& error, bool lost)> done) const;
  // The highest log id committed (visible to a statement that starts now); 0 when there is none.
  Query baseline(PGconn* conn, std::function<void(bool ok, int64_t max_id)> done) const;
  Query persist(PGconn* conn, const std::string& pid, const std::string& sid, const std::string& nsp,
                const std::vector<std::string>& rooms, const Value& data, uint32_t ttl_ms) const;
  // found=false: no such session, expired, already taken, the offset is gone, or the client missed
  // more than `max_packets` packets (reported; the log is read no further than that).
  Query restore(PGconn* conn, const std::string& pid, const std::string& nsp, const std::string& offset,
                uint32_t max_packets, std::function<void(bool found, RestoredSession session, const std::string& error)> done) const;
  std::vector<Query> cleanup(PGconn* conn) const;

  const std::string& log_table() const { return log_table_; }
  const std::string& session_table() const { return session_table_; }

 private:
  std::string quoted(PGconn* conn, const std::string& name) const;
  void report_missing(const std::string& why);

  std::string log_table_, session_table_;
  uint32_t max_disconnection_ms_;
  Report report_;
  State state_ = State::Unknown;
  bool missing_reported_ = false;
  std::string create_error_;  // why creating a table failed on this connection, if it did
  std::string quoted_log_, quoted_sessions_;  // as last quoted by a connection (for the report)
};

}  // namespace pgadapter
