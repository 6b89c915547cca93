#include "core/table_name.h"

namespace pgadapter {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// PostgreSQL's lexer: ident_start [A-Za-z\200-\377_], ident_cont adds [0-9$].
bool is_ident_char(char c, bool first) {
  const auto u = static_cast<unsigned char>(c);
  if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_' || u >= 0x80) return true;
  return !first && ((u >= '0' && u <= '9') || u == '$');
}

char fold(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr size_t kMaxParts = 3;
constexpr const char* kQuoteHint =
    "; a name with other characters goes in double quotes, e.g. \"my schema\".\"my table\"";

}  // namespace

bool parse_table_name(std::string_view name, std::vector<std::string>& parts, std::string& error) {
  parts.clear();
  auto fail = [&](const std::string& why) {
    error = why;
    parts.clear();
    return false;
  };
  if (name.find('\0') != std::string_view::npos) return fail("it contains a NUL byte");
  size_t i = 0;
  const size_t n = name.size();
  auto skip_spaces = [&] {
    while (i < n && is_space(name[i])) ++i;
  };
  for (;;) {
    skip_spaces();
    std::string part;
    if (i < n && name[i] == '"') {
      bool closed = false;
      for (++i; i < n; ++i) {
        if (name[i] != '"') {
          part += name[i];
        } else if (i + 1 < n && name[i + 1] == '"') {
          part += '"';
          ++i;
        } else {
          closed = true;
          ++i;
          break;
        }
      }
      if (!closed) return fail("a double quote is not closed");
      if (part.empty()) return fail("a quoted part is empty");
    } else {
      for (; i < n && is_ident_char(name[i], part.empty()); ++i) part += fold(name[i]);
      if (part.empty()) {
        if (i == n || name[i] == '.') return fail("a part is empty");
        return fail("unexpected '" + std::string(1, name[i]) + "' at byte " + std::to_string(i) + kQuoteHint);
      }
    }
    parts.push_back(std::move(part));
    if (parts.size() > kMaxParts) return fail("more than 3 dot-separated parts");
    skip_spaces();
    if (i == n) return true;
    if (name[i] != '.') {
      return fail("unexpected '" + std::string(1, name[i]) + "' at byte " + std::to_string(i) + kQuoteHint);
    }
    ++i;
  }
}

}  // namespace pgadapter
