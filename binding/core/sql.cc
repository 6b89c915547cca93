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

std::string fetch_attachments(const std::string& table) {
  return "SELECT id, payload FROM " + table + " WHERE id = ANY($1::bigint[])";
}

std::string delete_older_than(const std::string& table) {
  return "DELETE FROM " + table + " WHERE created_at < now() - $1::interval";
}

std::string create_table(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS " + table +
         " (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)";
}

}  // namespace pgadapter::sql
