#include "core/presence.h"

#include <algorithm>

namespace pgadapter {

Query presence_name_query(const std::string& name) {
  Query q;
  q.sql = "SELECT pg_catalog.set_config('application_name', $1, false)";
  q.params = {name};
  q.per_connection = true;  // rerun by the next connect's setup
  return q;
}

Query presence_query(const std::string& pattern,
                     std::function<void(bool ok, PresenceRows rows, const std::string& error)> done) {
  Query q;
  // A plain SELECT takes no transaction id: nothing is written, nothing committed.
  q.sql =
      "SELECT application_name, pg_catalog.date_part('epoch'::pg_catalog.text, "
      "pg_catalog.timestamptz_mi(pg_catalog.statement_timestamp(), state_change))::pg_catalog.text "
      "FROM pg_catalog.pg_stat_activity "
      "WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database() "
      "AND application_name OPERATOR(pg_catalog.~~) $1::pg_catalog.text LIMIT " +
      std::to_string(kMaxPresenceRows);
  q.params = {pattern};
  q.done = [done = std::move(done)](PGresult* res, const std::string& error) {
    if (!error.empty() || res == nullptr || PQnfields(res) != 2)
      return done(false, {}, error.empty() ? "no result" : error);
    PresenceRows rows;
    const int n = std::min(PQntuples(res), kMaxPresenceRows);
    rows.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      rows.emplace_back(std::string(PQgetvalue(res, i, 0), static_cast<size_t>(PQgetlength(res, i, 0))),
                        PQgetisnull(res, i, 1) ? std::string() : std::string(PQgetvalue(res, i, 1)));
    }
    done(true, std::move(rows), "");
  };
  return q;
}

}  // namespace pgadapter
