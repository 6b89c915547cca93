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

void append_text_array(const std::vector<const std::string*>& items, std::string& out) {
  size_t total = 2;
  for (const auto* s : items) total += s->size() + 3;
  out.reserve(out.size() + total + total / 8);
  out += '{';
  bool first = true;
  for (const auto* s : items) {
    if (!first) out += ',';
    first = false;
    out += '"';
    size_t run = 0;
    for (size_t i = 0; i < s->size(); ++i) {
      const char c = (*s)[i];
      if (c == '"' || c == '\\') {
        out.append(*s, run, i - run);
        out += '\\';
        run = i;
      }
    }
    out.append(*s, run, std::string::npos);
    out += '"';
  }
  out += '}';
}

std::string insert_and_notify(const std::string& table) {
  // One statement, one transaction: the row is committed when the notification is delivered.
  return "WITH ins AS (INSERT INTO " + table +
         " (payload) VALUES ($1) RETURNING id) SELECT pg_notify($2, $3 || ins.id::text || $4) FROM ins";
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
