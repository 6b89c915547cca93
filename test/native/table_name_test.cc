// Unit tests of the table name reader (core/table_name): names as SQL reads them.
#include <cstdio>
#include <string>
#include <vector>

#include "core/table_name.h"

#include "check.h"

static void expect_parts(const std::string& name, const std::vector<std::string>& want) {
  std::vector<std::string> parts;
  std::string error;
  const bool ok = pgadapter::parse_table_name(name, parts, error) && parts == want;
  check::record(ok, __FILE__, __LINE__, "[" + name + "]: unexpected result (" + error + ")");
}

static void expect_refused(const std::string& name) {
  std::vector<std::string> parts;
  std::string error;
  const bool ok = !pgadapter::parse_table_name(name, parts, error) && !error.empty() && parts.empty();
  check::record(ok, __FILE__, __LINE__, "[" + name + "]: accepted");
}

int main() {
  expect_parts("socket_io_attachments", {"socket_io_attachments"});
  expect_parts("MyTable", {"mytable"});  // folded, as PostgreSQL folds unquoted names
  expect_parts("\"MyTable\"", {"MyTable"});
  expect_parts("public.Events", {"public", "events"});
  expect_parts(" a . \"b.c\" . d ", {"a", "b.c", "d"});
  expect_parts("\"My Schema\".\"My \"\"Table\"\"\"", {"My Schema", "My \"Table\""});
  expect_parts("tablé_$1", {"tablé_$1"});  // non-ASCII bytes kept as they are
  expect_parts("_x", {"_x"});
  for (const char* bad : {"", " ", "\"abc", "abc\"", "\"a\"b", "a..b", ".a", "a.", "\"\"", "a\"b", "my schema.x",
                          "a;drop", "1abc", "$a", "a-b", "a.b.c.d", "\"a\"."}) {
    expect_refused(bad);
  }
  expect_refused(std::string("a\0b", 3));
  expect_refused(std::string("\"a\0b\"", 5));
  return check::finish("table_name_test");
}
