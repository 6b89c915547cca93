// Unit tests of core/room_text: room names as the recovery tables store them, one-to-one.
#include <set>
#include <string>
#include <vector>

#include "core/room_text.h"

#include "check.h"

int main() {
  using pgadapter::restored_room;
  using pgadapter::stored_room;
  // Names PostgreSQL text holds are stored as they are (as earlier versions stored them).
  for (const std::string name : {"", "room", "caf\xC3\xA9", "\xF0\x9F\x98\x80", "\"quoted\" {a,b} \\"}) {
    CHECK_EQ(stored_room(name), name);
  }
  // A NUL, a lone surrogate (WTF-8), bytes that are not UTF-8, the marker first: escaped.
  const std::vector<std::string> escaped = {std::string("a\0b", 3), "x\xED\xA0\x80", "\xED\xB0\x80", "\xFF",
                                            "\x01", "\x01" "6100", "\x01" "zz"};
  std::set<std::string> seen;
  for (const std::string& name : escaped) {
    const std::string text = stored_room(name);
    CHECK(text != name);
    CHECK(text.find('\0') == std::string::npos);
    CHECK_EQ(restored_room(text), name);
    seen.insert(text);
  }
  CHECK(seen.size() == escaped.size());  // no two names stored alike
  CHECK_EQ(stored_room(std::string("a\0b", 3)), "\x01" "610062");
  // Text in no escaped form (an earlier version's, or the marker alone) is the name itself.
  for (const std::string text : {"\x01", "\x01" "6", "\x01" "zz", "\x01" "6G", "plain"}) CHECK_EQ(restored_room(text), text);
  return check::finish("room_text");
}
