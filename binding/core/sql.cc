#include "core/sql.h"

#include "core/notification_format.h"
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
         " OPERATOR(pg_catalog.||) " + notification::sql_text(notification::kIdClose) + ") FROM src ORDER BY i";
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
