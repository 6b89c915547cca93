// SQL text for the adapter's statements. Identifiers are always quoted with libpq's
// PQescapeIdentifier; every value travels as a parameter; every function, operator and type is
// schema-qualified (pg_catalog) with exact argument types, so no search_path can redirect a call.
#pragma once

#include <libpq-fe.h>

#include <string>
#include <vector>

namespace pgadapter::sql {

// Quotes a table name read as SQL reads it (see table_name.h): each part quoted by libpq.
// Returns false (and an error) for a malformed name or one libpq cannot escape.
bool quote_qualified(PGconn* conn, const std::string& name, std::string& out, std::string& error);
bool quote_identifier(PGconn* conn, const std::string& name, std::string& out, std::string& error);

// Appends `items` as a one-dimensional array in PostgreSQL's binary format (array_send), so that
// nothing is escaped by us nor parsed back by the server. elem_oid: 25 text, 17 bytea.
inline constexpr unsigned kTextOid = 25;
inline constexpr unsigned kByteaOid = 17;
void append_binary_array(unsigned elem_oid, const std::vector<const std::string*>& items, std::string& out);

// Prepared statement names and texts (fixed SQL, no identifiers).
inline constexpr const char* kNotifyOne = "pga_notify_one";
inline constexpr const char* kNotifyOneSql = "SELECT pg_catalog.pg_notify($1::pg_catalog.text, $2::pg_catalog.text)";
inline constexpr const char* kNotifyMany = "pga_notify_many";
// unnest() of a function scan yields rows in array order, so notifications keep their order.
inline constexpr const char* kNotifyManySql =
    "SELECT pg_catalog.pg_notify(c, p) FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),"
    " pg_catalog.unnest($2::pg_catalog.text[])) AS m(c, p)";

// Statements on the attachment table (quoted name given).
// $1 payloads bytea[], $2 channels text[], $3 header prefixes text[], $4 the quoted table name as text.
std::string insert_and_notify(const std::string& table);
// $1 bigint[], $2 byte budget -> (id, payload or NULL when past the budget, octet_length(payload))
std::string fetch_attachments(const std::string& table);

// Connection state recovery's statements are in recovery.cc.
std::string delete_older_than(const std::string& table);  // $1 interval
std::string create_table(const std::string& table);

}  // namespace pgadapter::sql
