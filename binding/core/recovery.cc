#include "core/recovery.h"

#include "core/error_codes.h"
#include "core/json_codec.h"
#include "core/msgpack_codec.h"
#include "core/notification_format.h"
#include "core/room_text.h"
#include "core/sql.h"

namespace pgadapter {

namespace {

constexpr unsigned kBoolOid = 16;
constexpr unsigned kInt4Oid = 23;

std::string sqlstate(PGresult* res) {
  const char* code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  return code ? code : "";
}

std::string int4_bytes(uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  return std::string(b, 4);
}

// A binary int8/int4 column, checked against its length: rows are input like any other.
bool read_int(PGresult* res, int row, int col, int64_t& out) {
  if (PQgetisnull(res, row, col)) return false;
  const int n = PQgetlength(res, row, col);
  if (n != 4 && n != 8) return false;
  const char* p = PQgetvalue(res, row, col);
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  out = n == 4 ? static_cast<int32_t>(v) : static_cast<int64_t>(v);
  return true;
}

std::string text_of(PGresult* res, int row, int col) {
  return std::string(PQgetvalue(res, row, col), static_cast<size_t>(PQgetlength(res, row, col)));
}

std::string create_log_sql(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (id bigserial PRIMARY KEY, uid pg_catalog.text NOT NULL, nsp pg_catalog.text NOT NULL,"
         " rooms pg_catalog.text[] NOT NULL, except_rooms pg_catalog.text[] NOT NULL, packet pg_catalog.bytea NOT NULL,"
         " created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now())";
}

std::string create_session_sql(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (pid pg_catalog.text PRIMARY KEY, sid pg_catalog.text NOT NULL, nsp pg_catalog.text NOT NULL,"
         " rooms pg_catalog.text[] NOT NULL, data pg_catalog.bytea, expires_at pg_catalog.timestamptz NOT NULL)";
}

}  // namespace

Recovery::Recovery(std::string log_table, std::string session_table, uint32_t max_disconnection_ms, Report report)
    : log_table_(std::move(log_table)),
      session_table_(std::move(session_table)),
      max_disconnection_ms_(max_disconnection_ms),
      report_(std::move(report)) {}

std::string Recovery::quoted(PGconn* conn, const std::string& name) const {
  std::string out, error;
  if (!sql::quote_qualified(conn, name, out, error)) return "\"\"";
  return out;
}

void Recovery::report_missing(const std::string& why) {
  state_ = State::Unavailable;
  if (missing_reported_) return;
  missing_reported_ = true;
  const std::string& log = quoted_log_;
  const std::string& sessions = quoted_sessions_;
  report_("connection state recovery is off: " + why +
              ". Broadcasts still reach every server, but clients cannot recover. Create the tables (as a role"
              " that may) and grant this role SELECT, INSERT, UPDATE, DELETE on them and USAGE on the log's"
              " sequence:\n" +
              create_log_sql(log) + ";\n" + create_session_sql(sessions) + ";",
          codes::RECOVERY_UNAVAILABLE);
}

void Recovery::mark_unavailable(const std::string& why) { report_missing(why); }

std::vector<Query> Recovery::setup_queries(PGconn* conn) {
  create_error_.clear();
  std::vector<Query> out;
  const std::string log = quoted(conn, log_table_), sessions = quoted(conn, session_table_);
  quoted_log_ = log;
  quoted_sessions_ = sessions;
  for (std::string text : {create_log_sql(log), create_session_sql(sessions)}) {
    Query q;
    q.sql = std::move(text);
    q.done = [this](PGresult* res, const std::string& error) {
      const std::string code = sqlstate(res);
      // Two servers creating a table at once: one loses the race, harmlessly.
      if (!error.empty() && res != nullptr && code != "42P07" && code != "23505" && code != "42710") create_error_ = error;
    };
    out.push_back(std::move(q));
  }
  Query check;
  check.sql =
      "SELECT CASE WHEN pg_catalog.to_regclass($1::pg_catalog.text) IS NULL OR pg_catalog.to_regclass($2::pg_catalog.text) IS NULL THEN false"
      " ELSE pg_catalog.has_table_privilege($1::pg_catalog.text, 'insert') AND pg_catalog.has_table_privilege($1::pg_catalog.text, 'update')"
      " AND pg_catalog.has_table_privilege($2::pg_catalog.text, 'insert') AND pg_catalog.has_table_privilege($2::pg_catalog.text, 'delete') END";
  check.params = {log, sessions};
  check.done = [this](PGresult* res, const std::string& error) {
    if (res == nullptr) return;  // connection lost: checked again on the next one
    if (error.empty() && PQntuples(res) == 1 && text_of(res, 0, 0) == "t") {
      state_ = State::Available;
      return;
    }
    std::string why = "the tables " + log_table_ + " and " + session_table_ +
                      " are missing or not writable by this role";
    if (!create_error_.empty()) why += " (creating them failed: " + create_error_ + ")";
    if (!error.empty()) why += " (" + error + ")";
    report_missing(why);
  };
  out.push_back(std::move(check));
  return out;
}

// One statement, one transaction. It first upserts the log's row 0 (a row lock that only the log
// table's writers can take, held until commit), so that ids are taken, and transactions commit, one
// writer at a time: offsets are then in commit order, the order in which NOTIFY delivers them.
// Row 0 is never replayed (offsets are >= 1) nor cleaned up (created_at = infinity).
Query Recovery::log_batch(PGconn* conn, const std::string& quoted_attachment_table, const std::string& uid,
                          const std::vector<const OutMessage*>& run) const {
  const std::string log = quoted(conn, log_table_);
  std::vector<std::string> is_att, rfrom, rto, efrom, eto;
  std::vector<const std::string*> channels, heads, packets, payloads, nsps, rooms, except;
  static const std::string empty;
  for (const OutMessage* m : run) {
    const LogRecord& r = *m->log;
    channels.push_back(&m->channel);
    heads.push_back(m->attachment ? &m->header_prefix : &m->payload);
    packets.push_back(&r.packet);
    payloads.push_back(m->attachment ? &m->payload : &empty);
    is_att.push_back(std::string(1, m->attachment ? '\1' : '\0'));
    nsps.push_back(&r.nsp);
    // 1-based slice bounds into the flattened arrays; [n+1:n] is the empty array.
    rfrom.push_back(int4_bytes(static_cast<uint32_t>(rooms.size() + 1)));
    for (const auto& room : r.rooms) rooms.push_back(&room);
    rto.push_back(int4_bytes(static_cast<uint32_t>(rooms.size())));
    efrom.push_back(int4_bytes(static_cast<uint32_t>(except.size() + 1)));
    for (const auto& room : r.except) except.push_back(&room);
    eto.push_back(int4_bytes(static_cast<uint32_t>(except.size())));
  }
  auto ptrs = [](const std::vector<std::string>& v) {
    std::vector<const std::string*> out;
    for (const auto& s : v) out.push_back(&s);
    return out;
  };
  const std::string close = notification::sql_text(notification::kIdClose);
  Query q;
  q.sql =
      "WITH l AS (INSERT INTO " + log +
      " AS t (id, uid, nsp, rooms, except_rooms, packet, created_at)"
      " VALUES (0, '', '', '{}', '{}', '', 'infinity') ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at"
      " RETURNING 1),"
      " s AS MATERIALIZED (SELECT pg_catalog.nextval((SELECT pg_catalog.pg_get_serial_sequence($1::pg_catalog.text, 'id'::pg_catalog.text)::pg_catalog.regclass))"
      " AS id, CASE WHEN u.a THEN pg_catalog.nextval((SELECT pg_catalog.pg_get_serial_sequence($2::pg_catalog.text, 'id'::pg_catalog.text)::pg_catalog.regclass))"
      " END AS aid, u.c, u.h, u.p, u.ap, u.a, u.n, u.rf, u.rt, u.ef, u.et, u.i FROM ROWS FROM ("
      "pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[]),"
      " pg_catalog.unnest($5::pg_catalog.bytea[]), pg_catalog.unnest($6::pg_catalog.bytea[]),"
      " pg_catalog.unnest($7::pg_catalog.bool[]), pg_catalog.unnest($8::pg_catalog.text[]),"
      " pg_catalog.unnest($10::pg_catalog.int4[]), pg_catalog.unnest($11::pg_catalog.int4[]),"
      " pg_catalog.unnest($13::pg_catalog.int4[]), pg_catalog.unnest($14::pg_catalog.int4[]))"
      " WITH ORDINALITY AS u(c, h, p, ap, a, n, rf, rt, ef, et, i) WHERE EXISTS (SELECT FROM l)),"
      " il AS (INSERT INTO " + log + " (id, uid, nsp, rooms, except_rooms, packet)"
      " SELECT s.id, $15::pg_catalog.text, s.n, ($9::pg_catalog.text[])[s.rf:s.rt], ($12::pg_catalog.text[])[s.ef:s.et], s.p FROM s),"
      " ia AS (INSERT INTO " + quoted_attachment_table + " (id, payload) SELECT s.aid, s.ap FROM s WHERE s.a)"
      " SELECT s.id, pg_catalog.pg_notify(s.c, CASE WHEN s.a THEN s.h OPERATOR(pg_catalog.||) s.aid::pg_catalog.text"
      " OPERATOR(pg_catalog.||) " + notification::sql_text(notification::kOffsetAfterId) +
      " OPERATOR(pg_catalog.||) s.id::pg_catalog.text OPERATOR(pg_catalog.||) " + close +
      " ELSE s.h OPERATOR(pg_catalog.||) s.id::pg_catalog.text OPERATOR(pg_catalog.||) " + close +
      " END) FROM s ORDER BY s.i";
  q.params.resize(15);
  q.params[0] = log;
  q.params[1] = quoted_attachment_table;
  sql::append_binary_array(sql::kTextOid, channels, q.params[2]);
  sql::append_binary_array(sql::kTextOid, heads, q.params[3]);
  sql::append_binary_array(sql::kByteaOid, packets, q.params[4]);
  sql::append_binary_array(sql::kByteaOid, payloads, q.params[5]);
  sql::append_binary_array(kBoolOid, ptrs(is_att), q.params[6]);
  sql::append_binary_array(sql::kTextOid, nsps, q.params[7]);
  sql::append_binary_array(sql::kTextOid, rooms, q.params[8]);
  sql::append_binary_array(kInt4Oid, ptrs(rfrom), q.params[9]);
  sql::append_binary_array(kInt4Oid, ptrs(rto), q.params[10]);
  sql::append_binary_array(sql::kTextOid, except, q.params[11]);
  sql::append_binary_array(kInt4Oid, ptrs(efrom), q.params[12]);
  sql::append_binary_array(kInt4Oid, ptrs(eto), q.params[13]);
  q.params[14] = uid;
  q.param_formats = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
  return q;
}

Query Recovery::verify(PGconn* conn, const std::vector<int64_t>& ids,
                       std::function<void(bool, std::vector<LogRow>, const std::string&, bool)> done) const {
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) array += ',';
    array += std::to_string(ids[i]);
  }
  array += '}';
  Query q;
  q.sql = "SELECT id, uid, nsp FROM " + quoted(conn, log_table_) +
          " WHERE id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])";
  q.params = {std::move(array)};
  q.result_format = 1;
  q.per_connection = true;
  q.done = [done = std::move(done)](PGresult* res, const std::string& error) {
    if (res == nullptr) return done(false, {}, error, true);
    if (!error.empty() || PQnfields(res) != 3) return done(false, {}, error.empty() ? "unexpected result" : error, false);
    std::vector<LogRow> rows;
    for (int i = 0; i < PQntuples(res); ++i) {
      LogRow row;
      if (!read_int(res, i, 0, row.id) || PQgetisnull(res, i, 1) || PQgetisnull(res, i, 2)) continue;
      row.uid = text_of(res, i, 1);
      row.nsp = text_of(res, i, 2);
      rows.push_back(std::move(row));
    }
    done(true, std::move(rows), "", false);
  };
  return q;
}

Query Recovery::baseline(PGconn* conn, std::function<void(bool ok, int64_t max_id)> done) const {
  Query q;
  q.sql = "SELECT coalesce(pg_catalog.max(id), 0) FROM " + quoted(conn, log_table_);
  q.result_format = 1;
  q.per_connection = true;
  q.done = [this, done = std::move(done)](PGresult* res, const std::string& error) {
    int64_t id = 0;
    if (res != nullptr && error.empty() && PQntuples(res) == 1 && PQnfields(res) == 1 && read_int(res, 0, 0, id)) {
      return done(true, id);
    }
    // No log table (yet): nothing to replay; anything else is worth a report.
    if (res != nullptr && sqlstate(res) != "42P01") report_("cannot read the recovery log: " + error, codes::RECOVERY_FAILED);
    done(false, 0);
  };
  return q;
}

Query Recovery::persist(PGconn* conn, const std::string& pid, const std::string& sid, const std::string& nsp,
                        const std::vector<std::string>& rooms, const Value& data, uint32_t ttl_ms) const {
  std::vector<std::string> stored;
  for (const auto& r : rooms) stored.push_back(stored_room(r));
  std::vector<const std::string*> room_ptrs;
  for (const auto& r : stored) room_ptrs.push_back(&r);
  Query q;
  q.sql = "INSERT INTO " + quoted(conn, session_table_) +
          " (pid, sid, nsp, rooms, data, expires_at) VALUES ($1::pg_catalog.text, $2::pg_catalog.text,"
          " $3::pg_catalog.text, $4::pg_catalog.text[], $5::pg_catalog.bytea,"
          " pg_catalog.now() OPERATOR(pg_catalog.+) $6::pg_catalog.interval)"
          " ON CONFLICT (pid) DO UPDATE SET sid = EXCLUDED.sid, nsp = EXCLUDED.nsp, rooms = EXCLUDED.rooms,"
          " data = EXCLUDED.data, expires_at = EXCLUDED.expires_at";
  q.params.resize(6);
  q.params[0] = pid;
  q.params[1] = sid;
  q.params[2] = nsp;
  sql::append_binary_array(sql::kTextOid, room_ptrs, q.params[3]);
  encode_msgpack(data, q.params[4]);
  q.params[5] = std::to_string(ttl_ms) + " milliseconds";
  q.param_formats = {0, 0, 0, 1, 1, 0};
  return q;
}

Query Recovery::restore(PGconn* conn, const std::string& pid, const std::string& nsp, const std::string& offset,
                        uint32_t max_packets, std::function<void(bool, RestoredSession, const std::string&)> done) const {
  const std::string sessions = quoted(conn, session_table_), log = quoted(conn, log_table_);
  Query q;
  // The session is taken (deleted) whatever happens: a session restores at most once.
  q.sql = "WITH s AS (DELETE FROM " + sessions +
          " WHERE pid OPERATOR(pg_catalog.=) $1::pg_catalog.text RETURNING sid, nsp, rooms, data, expires_at),"
          " ok AS (SELECT * FROM s WHERE expires_at OPERATOR(pg_catalog.>) pg_catalog.now()"
          " AND nsp OPERATOR(pg_catalog.=) $2::pg_catalog.text AND EXISTS (SELECT FROM " + log +
          " WHERE id OPERATOR(pg_catalog.=) $3::pg_catalog.int8 AND nsp OPERATOR(pg_catalog.=) $2::pg_catalog.text))"
          " SELECT 0 AS k, (SELECT coalesce(pg_catalog.max(id), 0) FROM " + log + ") AS id, ok.sid AS uid,"
          " pg_catalog.array_to_json(ok.rooms)::pg_catalog.text AS rooms, ok.data FROM ok"
          " UNION ALL"
          // One row more than a restore may replay: the scan of the log stops there.
          " (SELECT 1, l.id, l.uid, NULL::pg_catalog.text, l.packet FROM " + log + " l, ok"
          " WHERE l.nsp OPERATOR(pg_catalog.=) $2::pg_catalog.text AND l.id OPERATOR(pg_catalog.>) $3::pg_catalog.int8"
          " AND (pg_catalog.cardinality(l.rooms) OPERATOR(pg_catalog.=) 0 OR l.rooms OPERATOR(pg_catalog.&&) ok.rooms)"
          " AND NOT (l.except_rooms OPERATOR(pg_catalog.&&) ok.rooms)"
          " ORDER BY l.id LIMIT $4::pg_catalog.int8)"
          " ORDER BY k, id";
  q.params = {pid, nsp, offset, std::to_string(static_cast<uint64_t>(max_packets) + 1)};
  q.result_format = 1;
  q.done = [this, max_packets, done = std::move(done)](PGresult* res, const std::string& error) {
    if (!error.empty() || res == nullptr) return done(false, {}, error.empty() ? "connection lost" : error);
    const int rows = PQntuples(res);
    int64_t kind = -1;
    if (rows == 0 || PQnfields(res) != 5 || !read_int(res, 0, 0, kind) || kind != 0) return done(false, {}, "");
    if (static_cast<uint64_t>(rows - 1) > max_packets) {
      // Any client can come back with an early offset: a restore never replays the whole log.
      report_("a client missed more than " + std::to_string(max_packets) +
                  " packets (maxRecoveredPackets): it gets a fresh session",
              codes::RECOVERY_FAILED);
      return done(false, {}, "");
    }
    RestoredSession session;
    std::string err;
    if (!read_int(res, 0, 1, session.snapshot_max) || PQgetisnull(res, 0, 3)) {
      return done(false, {}, "corrupt session row");
    }
    session.sid = text_of(res, 0, 2);
    if (!parse_json(text_of(res, 0, 3), session.rooms, err) ||
        (!PQgetisnull(res, 0, 4) && !decode_msgpack(text_of(res, 0, 4), session.data, err))) {
      return done(false, {}, "corrupt session row: " + err);
    }
    if (session.rooms.kind != Value::Kind::Array) return done(false, {}, "corrupt session row");
    for (Value& room : session.rooms.items) {
      if (room.kind == Value::Kind::String) room.str = restored_room(room.str);
    }
    for (int i = 1; i < rows; ++i) {
      int64_t id = 0;
      Value packet;
      if (!read_int(res, i, 1, id) || PQgetisnull(res, i, 4) ||
          !decode_msgpack(text_of(res, i, 4), packet, err) || packet.kind != Value::Kind::Array) {
        report_("skipped a corrupt recovery log row " + std::to_string(id), codes::BAD_ATTACHMENT);
        continue;
      }
      packet.items.push_back(Value::string_of(std::to_string(id)));
      session.packets.emplace_back(id, std::move(packet));
    }
    done(true, std::move(session), "");
  };
  return q;
}

std::vector<Query> Recovery::cleanup(PGconn* conn) const {
  std::vector<Query> out(2);
  out[0].sql = "DELETE FROM " + quoted(conn, session_table_) +
               " WHERE expires_at OPERATOR(pg_catalog.<) pg_catalog.now()";
  out[1].sql = "DELETE FROM " + quoted(conn, log_table_) +
               " WHERE created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1::pg_catalog.interval)";
  out[1].params = {std::to_string(max_disconnection_ms_) + " milliseconds"};
  for (Query& q : out) {
    q.per_connection = true;
    q.done = [this](PGresult* res, const std::string& error) {
      if (!error.empty() && sqlstate(res) != "42P01") report_("recovery cleanup failed: " + error, codes::CLEANUP_FAILED);
    };
  }
  return out;
}

}  // namespace pgadapter
