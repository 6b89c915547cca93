// Table names as SQL reads them, as users of the pure-JS adapter (which splices the name into its
// SQL) write them: one to three dot-separated parts (catalog.schema.table), spaces allowed around
// each, every part either
//  - double-quoted: taken as written, "" standing for one quote (dots and spaces allowed inside), or
//  - unquoted: a letter, "_" or a non-ASCII character, then also digits and "$"; folded to lower
//    case (ASCII only), as PostgreSQL folds it. So `MyTable` is the table mytable, `"MyTable"` not.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgadapter {

// The parts of `name` (unquoted, ready for PQescapeIdentifier), or false and why in `error`.
bool parse_table_name(std::string_view name, std::vector<std::string>& parts, std::string& error);

}  // namespace pgadapter
