#include "core/room_text.h"

#include "core/utf8.h"

namespace pgadapter {

namespace {
constexpr char kHex[] = "0123456789abcdef";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::string stored_room(const std::string& name) {
  const bool storable = (name.empty() || name[0] != kRoomMarker) && name.find('\0') == std::string::npos &&
                        valid_wtf8(name, /*surrogates=*/false);
  if (storable) return name;
  std::string out(1, kRoomMarker);
  out.reserve(1 + 2 * name.size());
  for (unsigned char c : name) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::string restored_room(const std::string& text) {
  if (text.size() < 3 || text[0] != kRoomMarker || text.size() % 2 == 0) return text;
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 1; i < text.size(); i += 2) {
    const int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0) return text;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

}  // namespace pgadapter
