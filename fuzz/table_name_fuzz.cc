// libFuzzer target: the table name reader (core/table_name). Whatever it accepts must read back the
// same when each part is written quoted (what the SQL we send holds), and no part may be empty or
// hold a NUL byte.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/table_name.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view name(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  std::string error;
  if (!pgadapter::parse_table_name(name, parts, error)) {
    if (error.empty() || !parts.empty()) {
      std::fprintf(stderr, "a refused name must give a reason and no parts\n");
      std::abort();
    }
    return 0;
  }
  if (parts.empty() || parts.size() > 3) std::abort();
  std::string quoted;
  for (const std::string& part : parts) {
    if (part.empty() || part.find('\0') != std::string::npos) std::abort();
    if (!quoted.empty()) quoted += '.';
    quoted += '"';
    for (char c : part) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    quoted += '"';
  }
  std::vector<std::string> again;
  if (!pgadapter::parse_table_name(quoted, again, error) || again != parts) {
    std::fprintf(stderr, "quoted parts do not read back the same: %s\n", quoted.c_str());
    std::abort();
  }
  return 0;
}
