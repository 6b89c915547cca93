// Shared by the bench's standalone libpq tools (notify_ceiling, notify_latency): fail loudly and exit.
#pragma once

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>

namespace pg_tool {

inline const char* program = "pg_tool";  // set by main()

[[noreturn]] inline void die(const char* what, PGconn* c) {
  std::fprintf(stderr, "%s: %s: %s\n", program, what, c ? PQerrorMessage(c) : "");
  std::exit(1);
}

inline PGconn* connect_or_die(const char* conninfo) {
  PGconn* c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) die("connect", c);
  return c;
}

inline void exec_or_die(PGconn* c, const char* sql) {
  PGresult* r = PQexec(c, sql);
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) die(sql, c);
  PQclear(r);
}

}  // namespace pg_tool
