// Checks on the UTF-8 the core hands on (to clients, to PostgreSQL).
#pragma once

#include <string_view>

namespace pgadapter {

// UTF-8, where with `surrogates` the encoded surrogates of WTF-8 (ED A0..BF xx, what our codecs
// use for lone surrogates) count as valid too: JSON writes them as \uXXXX escapes.
bool valid_wtf8(std::string_view s, bool surrogates = true);

}  // namespace pgadapter
