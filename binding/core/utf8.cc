#include "core/utf8.h"

#include <cstdint>
#include <cstring>

namespace pgadapter {

bool valid_wtf8(std::string_view s, bool surrogates) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return k < n && (p[k] & 0xC0) == 0x80; };
  while (i < n) {
    // ASCII runs, eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
    } else if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) {
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2) && (c != 0xE0 || p[i + 1] >= 0xA0) &&
               (surrogates || c != 0xED || p[i + 1] <= 0x9F)) {
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3) && (c != 0xF0 || p[i + 1] >= 0x90) &&
               (c != 0xF4 || p[i + 1] <= 0x8F)) {
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace pgadapter
