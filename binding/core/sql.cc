#include "core/sql.h"

namespace pgadapter::sql {

bool quote_identifier(PGconn* conn, const std::string& name, std::string& out, std::string& error) {
  char* quoted = PQescapeIdentifier(conn, name.data(), name.size());
  if (quoted == nullptr) {
    error = PQerrorMessage(conn);
    return false;
  }
  out = quoted;
  PQfreemem(quoted);
  return true;
}

bool quote_qualified(PGconn* conn, const std::string& name, std::string& out, std::string& error) {
  out.clear();
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    std::string part;
    if (!quote_identifier(conn, name.substr(start, dot == std::string::npos ? std::string::npos : dot - start), part,
                          error)) {
      return false;
    }
    out += part;
    if (dot == std::string::npos) return true;
    out += '.';
    start = dot + 1;
  }
}

namespace {
void put_int32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}
}  // namespace

void append_binary_array(unsigned elem_oid, const std::vector<const std::string*>& items, std::string& out) {
  size_t total = 20;
  for (const auto* s : items) total += 4 + s->size();
  out.reserve(out.size() + total);
  put_int32(out, 1);         // dimensions
  put_int32(out, 0);         // no NULLs
  put_int32(out, elem_oid);  // element type
  put_int32(out, static_cast<uint32_t>(items.size()));
  put_int32(out, 1);  // lower bound
  for (const auto* s : items) {
    put_int32(out, static_cast<uint32_t>(s->size()));
    out += *s;
  }
}

std::string insert_and_notify(const std::string& table) {
  // Each row takes its id from the table's sequence explicitly, so the id given in a notification
  // is the one of its own row (RETURNING has no guaranteed order). One statement, one transaction:
  // the rows are committed when the notifications are delivered, in input order.
  return "WITH src AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence($4, 'id')) AS id, p, c, h, i"
         " FROM unnest($1::bytea[], $2::text[], $3::text[]) WITH ORDINALITY AS u(p, c, h, i)),"
         " ins AS (INSERT INTO " + table + " (id, payload) SELECT id, p FROM src)"
         " SELECT pg_notify(c, h || id::text || '\"}') FROM src ORDER BY i";
}

std::string log_and_notify(const std::string& log_table, const std::string& attachment_table, bool with_attachment) {
  std::string q =
      "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext($1))),"
      " s AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence($1, 'id')) AS id";
  if (with_attachment) q += ", nextval(pg_get_serial_sequence($10, 'id')) AS aid";
  q += " FROM l), il AS (INSERT INTO " + log_table +
       " (id, uid, nsp, rooms, except_rooms, packet) SELECT id, $2, $3, $4::text[], $5::text[], $6::bytea FROM s)";
  if (with_attachment) {
    q += ", ia AS (INSERT INTO " + attachment_table + " (id, payload) SELECT aid, $9::bytea FROM s)"
         " SELECT s.id::text, pg_notify($7, $8 || s.aid::text || '\",\"offset\":\"' || s.id::text || '\"}') FROM s";
  } else {
    q += " SELECT s.id::text, pg_notify($7, $8 || s.id::text || '\"}') FROM s";
  }
  return q;
}

std::string create_log_table(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (id bigserial PRIMARY KEY, uid text NOT NULL, nsp text NOT NULL, rooms text[] NOT NULL,"
         " except_rooms text[] NOT NULL, packet bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())";
}

std::string create_session_table(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (pid text PRIMARY KEY, sid text NOT NULL, nsp text NOT NULL, rooms text[] NOT NULL, data bytea,"
         " expires_at timestamptz NOT NULL)";
}

std::string upsert_session(const std::string& table) {
  return "INSERT INTO " + table +
         " (pid, sid, nsp, rooms, data, expires_at) VALUES ($1, $2, $3, $4::text[], $5::bytea, now() + $6::interval)"
         " ON CONFLICT (pid) DO UPDATE SET sid = EXCLUDED.sid, nsp = EXCLUDED.nsp, rooms = EXCLUDED.rooms,"
         " data = EXCLUDED.data, expires_at = EXCLUDED.expires_at";
}

std::string take_session(const std::string& session_table, const std::string& log_table) {
  // The session is taken (deleted) whatever happens: a session restores at most once.
  return "WITH s AS (DELETE FROM " + session_table +
         " WHERE pid = $1 RETURNING sid, nsp, rooms, data, expires_at),"
         " ok AS (SELECT * FROM s WHERE expires_at > now() AND nsp = $2"
         " AND EXISTS (SELECT 1 FROM " + log_table + " WHERE id = $3::bigint AND nsp = $2))"
         " SELECT 0 AS k, (SELECT coalesce(max(id), 0) FROM " + log_table + ") AS id, ok.sid AS uid,"
         " array_to_json(ok.rooms)::text AS rooms, ok.data FROM ok"
         " UNION ALL"
         " SELECT 1, l.id, l.uid, NULL, l.packet FROM " + log_table + " l, ok"
         " WHERE l.nsp = $2 AND l.id > $3::bigint"
         " AND (cardinality(l.rooms) = 0 OR l.rooms && ok.rooms) AND NOT (l.except_rooms && ok.rooms)"
         " ORDER BY k, id";
}

std::string delete_expired_sessions(const std::string& table) {
  return "DELETE FROM " + table + " WHERE expires_at < now()";
}

// The payloads whose running total (in id order) passes $2 bytes come back NULL with their size:
// the listener fetches them in a later statement. The first row always comes, however large.
std::string fetch_attachments(const std::string& table) {
  return "SELECT id, CASE WHEN running OPERATOR(pg_catalog.<=) $2::pg_catalog.int8 OR n OPERATOR(pg_catalog.=) 1"
         " THEN payload END, size FROM (SELECT id, payload, pg_catalog.octet_length(payload) AS size,"
         " pg_catalog.sum(pg_catalog.octet_length(payload)) OVER w AS running, pg_catalog.row_number() OVER w AS n"
         " FROM " + table + " WHERE id OPERATOR(pg_catalog.=) ANY($1::pg_catalog.int8[]) WINDOW w AS (ORDER BY id)) s";
}

std::string delete_older_than(const std::string& table) {
  return "DELETE FROM " + table + " WHERE created_at < now() - $1::interval";
}

std::string create_table(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)";
}

}  // namespace pgadapter::sql
