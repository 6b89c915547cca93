#include "core/sql.h"

#include "core/table_name.h"

namespace pgadapter::sql {

bool quote_identifier(PGconn* conn, const std::string& name, std::string& out, std::string& error) {
  if (name.find('\0') != std::string::npos) {
    error = "an identifier cannot contain a NUL byte";  // libpq would quote only what precedes it
    return false;
  }
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
  std::vector<std::string> parts;
  if (!parse_table_name(name, parts, error)) {
    error = "malformed table name: " + error;
    return false;
  }
  out.clear();
  for (const std::string& part : parts) {
    std::string quoted;
    if (!quote_identifier(conn, part, quoted, error)) return false;
    if (!out.empty()) out += '.';
    out += quoted;
  }
  return true;
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

// Every function, operator and type below is schema-qualified and given exact argument types: an
// unqualified call resolves through the session's search_path, where another role may have planted
// a better-matching overload (see README, "search_path"). Only table names follow the search_path.

std::string insert_and_notify(const std::string& table) {
  // Each row takes its id from the table's sequence explicitly, so the id given in a notification
  // is the one of its own row (RETURNING has no guaranteed order). One statement, one transaction:
  // the rows are committed when the notifications are delivered, in input order.
  return "WITH src AS MATERIALIZED (SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence($4::pg_catalog.text,"
         " 'id')::pg_catalog.regclass) AS id, p, c, h, i"
         " FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.bytea[]), pg_catalog.unnest($2::pg_catalog.text[]),"
         " pg_catalog.unnest($3::pg_catalog.text[])) WITH ORDINALITY AS u(p, c, h, i)),"
         " ins AS (INSERT INTO " + table + " (id, payload) SELECT id, p FROM src)"
         " SELECT pg_catalog.pg_notify(c, h OPERATOR(pg_catalog.||) id::pg_catalog.text"
         " OPERATOR(pg_catalog.||) '\"}'::pg_catalog.text) FROM src ORDER BY i";
}

std::string log_and_notify(const std::string& log_table, const std::string& attachment_table, bool with_attachment) {
  std::string q =
      "WITH l AS MATERIALIZED (SELECT pg_catalog.pg_advisory_xact_lock("
      "pg_catalog.hashtext($1::pg_catalog.text)::pg_catalog.int8)),"
      " s AS MATERIALIZED (SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence($1::pg_catalog.text, 'id')"
      "::pg_catalog.regclass) AS id";
  if (with_attachment) {
    q += ", pg_catalog.nextval(pg_catalog.pg_get_serial_sequence($10::pg_catalog.text, 'id')::pg_catalog.regclass)"
         " AS aid";
  }
  q += " FROM l), il AS (INSERT INTO " + log_table +
       " (id, uid, nsp, rooms, except_rooms, packet) SELECT id, $2::pg_catalog.text, $3::pg_catalog.text,"
       " $4::pg_catalog.text[], $5::pg_catalog.text[], $6::pg_catalog.bytea FROM s)";
  if (with_attachment) {
    q += ", ia AS (INSERT INTO " + attachment_table + " (id, payload) SELECT aid, $9::pg_catalog.bytea FROM s)"
         " SELECT s.id::pg_catalog.text, pg_catalog.pg_notify($7::pg_catalog.text, $8::pg_catalog.text"
         " OPERATOR(pg_catalog.||) s.aid::pg_catalog.text OPERATOR(pg_catalog.||) '\",\"offset\":\"'::pg_catalog.text"
         " OPERATOR(pg_catalog.||) s.id::pg_catalog.text OPERATOR(pg_catalog.||) '\"}'::pg_catalog.text) FROM s";
  } else {
    q += " SELECT s.id::pg_catalog.text, pg_catalog.pg_notify($7::pg_catalog.text, $8::pg_catalog.text"
         " OPERATOR(pg_catalog.||) s.id::pg_catalog.text OPERATOR(pg_catalog.||) '\"}'::pg_catalog.text) FROM s";
  }
  return q;
}

std::string create_log_table(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (id bigserial PRIMARY KEY, uid pg_catalog.text NOT NULL, nsp pg_catalog.text NOT NULL,"
         " rooms pg_catalog.text[] NOT NULL, except_rooms pg_catalog.text[] NOT NULL, packet pg_catalog.bytea NOT NULL,"
         " created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now())";
}

std::string create_session_table(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (pid pg_catalog.text PRIMARY KEY, sid pg_catalog.text NOT NULL, nsp pg_catalog.text NOT NULL,"
         " rooms pg_catalog.text[] NOT NULL, data pg_catalog.bytea, expires_at pg_catalog.timestamptz NOT NULL)";
}

std::string upsert_session(const std::string& table) {
  return "INSERT INTO " + table +
         " (pid, sid, nsp, rooms, data, expires_at) VALUES ($1::pg_catalog.text, $2::pg_catalog.text,"
         " $3::pg_catalog.text, $4::pg_catalog.text[], $5::pg_catalog.bytea,"
         " pg_catalog.now() OPERATOR(pg_catalog.+) $6::pg_catalog.interval)"
         " ON CONFLICT (pid) DO UPDATE SET sid = EXCLUDED.sid, nsp = EXCLUDED.nsp, rooms = EXCLUDED.rooms,"
         " data = EXCLUDED.data, expires_at = EXCLUDED.expires_at";
}

std::string take_session(const std::string& session_table, const std::string& log_table) {
  // The session is taken (deleted) whatever happens: a session restores at most once.
  return "WITH s AS (DELETE FROM " + session_table +
         " WHERE pid OPERATOR(pg_catalog.=) $1::pg_catalog.text RETURNING sid, nsp, rooms, data, expires_at),"
         " ok AS (SELECT * FROM s WHERE expires_at OPERATOR(pg_catalog.>) pg_catalog.now()"
         " AND nsp OPERATOR(pg_catalog.=) $2::pg_catalog.text"
         " AND EXISTS (SELECT 1 FROM " + log_table + " WHERE id OPERATOR(pg_catalog.=) $3::pg_catalog.int8"
         " AND nsp OPERATOR(pg_catalog.=) $2::pg_catalog.text))"
         " SELECT 0 AS k, (SELECT coalesce(pg_catalog.max(id), 0) FROM " + log_table + ") AS id, ok.sid AS uid,"
         " pg_catalog.array_to_json(ok.rooms)::pg_catalog.text AS rooms, ok.data FROM ok"
         " UNION ALL"
         " SELECT 1, l.id, l.uid, NULL, l.packet FROM " + log_table + " l, ok"
         " WHERE l.nsp OPERATOR(pg_catalog.=) $2::pg_catalog.text AND l.id OPERATOR(pg_catalog.>) $3::pg_catalog.int8"
         " AND (pg_catalog.cardinality(l.rooms) OPERATOR(pg_catalog.=) 0 OR l.rooms OPERATOR(pg_catalog.&&) ok.rooms)"
         " AND NOT (l.except_rooms OPERATOR(pg_catalog.&&) ok.rooms)"
         " ORDER BY k, id";
}

std::string delete_expired_sessions(const std::string& table) {
  return "DELETE FROM " + table + " WHERE expires_at OPERATOR(pg_catalog.<) pg_catalog.now()";
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
  // OPERATOR() forms all share one precedence: the parentheses are needed.
  return "DELETE FROM " + table +
         " WHERE created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1::pg_catalog.interval)";
}

std::string create_table(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (id bigserial UNIQUE, created_at pg_catalog.timestamptz DEFAULT pg_catalog.now(), payload pg_catalog.bytea)";
}

}  // namespace pgadapter::sql
