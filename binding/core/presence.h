// Quiet idle (see README): the statements that name our listening session and read the others' names.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/pg_connection.h"

namespace pgadapter {

using PresenceRows = std::vector<std::pair<std::string, std::string>>;

// Sets this session's application_name to `name` (a per-connection statement: rerun by each setup).
Query presence_name_query(const std::string& name);

// The sessions of this database whose application_name is LIKE `pattern`, read-only (no XID): for each,
// its name and the seconds since its last state change as text (empty when not visible to our role).
// ok=false: the query failed (error says why). At most kMaxPresenceRows.
constexpr int kMaxPresenceRows = 1000;
Query presence_query(const std::string& pattern,
                     std::function<void(bool ok, PresenceRows rows, const std::string& error)> done);

}  // namespace pgadapter
