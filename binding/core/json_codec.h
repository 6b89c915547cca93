// JSON <-> Value, matching JavaScript's JSON.stringify / JSON.parse.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/value.h"

namespace pgadapter {

// Appends `v` as JSON.stringify would write the equivalent JS value (see value.h for the kinds).
// A top-level Undefined is written as `null`.
void write_json(const Value& v, std::string& out);

// Appends a number exactly as JavaScript's Number.prototype.toString() (radix 10) writes it:
// "NaN", "Infinity", "-Infinity", "0" for -0, "1e+21", "1.5e-7", "0.1", ...
void append_js_number(double d, std::string& out);

// Appends `s` (UTF-8) as a JSON string literal, quoted, escaped like JSON.stringify.
void append_json_string(std::string_view s, std::string& out);

// Strict RFC 8259 parser. On success replaces `out` and returns true; on failure returns false
// with a message in `error` (`out` is then unspecified). Never throws except std::bad_alloc.
// Numbers become Int when they are safe integers (other than -0), else Double.
bool parse_json(std::string_view text, Value& out, std::string& error, size_t max_depth = kMaxNesting);
// Validates like parse_json, but of a top-level object builds only the scalar fields: nested
// objects and arrays are checked and left Undefined. For reading a notification's header fields.
bool parse_json_header(std::string_view text, Value& out, std::string& error, size_t max_depth = kMaxNesting);

// Where the value at a path of object keys lies in a JSON text, as JSON.parse would see it (a key
// given twice: the later value).
struct JsonSpan {
  size_t begin = 0, end = 0;  // [begin, end) in the text; begin == end: not there
  // False when the value holds a number JSON.parse reads as -0, Infinity or -Infinity (e.g. -0,
  // -1e-400, 1e400): JSON.stringify would write those as 0 or null, so the text would not read back
  // as what the value stringifies to.
  bool stringify_stable = true;
  bool ascii = true;  // no byte above 0x7F in the span
};

// parse_json_header, but the objects along `path` (keys from the top, at most 8) have their scalar
// fields built too, and the value at the end of the path is checked, not built: its span is given.
bool parse_json_header(std::string_view text, Value& out, std::string& error, const std::vector<std::string_view>& path,
                       JsonSpan& span, size_t max_depth = kMaxNesting);

namespace detail {

// Adds a field to a Map under construction with JS object semantics for a repeated key: the later
// value replaces the earlier one in its original position (what JSON.parse and @msgpack decode do).
// Returns the slot to fill. The slot stays valid until the next call on this builder.
class MapBuilder {
 public:
  explicit MapBuilder(Value& map) : map_(map) {}
  Value& slot(std::string key);

 private:
  static constexpr size_t kLinearScanMax = 16;
  Value& map_;
  std::unordered_map<std::string, size_t> index_;  // filled once the map outgrows a linear scan
};

}  // namespace detail
}  // namespace pgadapter
