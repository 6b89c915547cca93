// MessagePack <-> Value, byte-compatible with @msgpack/msgpack 2.8 (encode() / decode() defaults).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/value.h"

namespace pgadapter {

// Appends the encoding of `v`. Ints (and Doubles holding a safe integer, as JS cannot tell them
// apart) use the smallest int format, other numbers float64; Undefined/Null -> nil (Undefined map
// values are kept); Timestamp -> ext -1 (32/64/96-bit form), an invalid one -> nil.
// Throws std::length_error only for a string/binary/array/map of 2^32 or more entries or bytes.
void encode_msgpack(const Value& v, std::string& out);

// Decodes exactly one object spanning all of `bytes`. Returns false with a message in `error` for
// malformed, truncated or trailing data, nesting deeper than max_depth, a map key that is not a
// string or number, a timestamp ext of a size other than 4/8/12, a string longer than JavaScript
// can hold (kMaxJsStringLength), or more than kMaxMessageValues values. Never throws. With `values`,
// tells how many (array elements and map keys) it counted.
// Ints beyond 2^53-1 become Double; an ext of another type becomes {"type": Int, "data": Binary}.
bool decode_msgpack(std::string_view bytes, Value& out, std::string& error, size_t max_depth = kMaxNesting,
                    size_t* values = nullptr);

}  // namespace pgadapter
