// Room names in the recovery tables' text[] columns (the log's rooms and except_rooms, a session's
// rooms). A client may choose a room name (many apps join the names clients send), and PostgreSQL text
// holds neither a NUL nor a lone surrogate: one such name would make it refuse the whole statement,
// and every broadcast logged with it would lose its recovery. Such a name is stored as kMarker and the
// hex of its bytes; so is a name that starts with kMarker, so that no two names are stored alike. Every
// other name is stored as it is (as earlier versions stored it).
#pragma once

#include <string>

namespace pgadapter {

inline constexpr char kRoomMarker = '\x01';

// The text stored for room `name` (UTF-8, lone surrogates as WTF-8).
std::string stored_room(const std::string& name);

// The room name stored as `text` (the inverse of stored_room). Text that is not in the escaped form
// (written by an earlier version) is the name itself.
std::string restored_room(const std::string& text);

}  // namespace pgadapter
