// A JavaScript-like value tree shared by the JSON and msgpack codecs and the N-API face.
// The core never touches N-API: the face converts napi_value <-> Value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pgadapter {

// How deep arrays and objects may nest in a message, the message itself counting as level 1: the
// one limit for what we publish (the N-API face refuses deeper values) and what we accept from
// the wire (the JSON and msgpack decoders), so that nothing sent is dropped by every receiver.
inline constexpr size_t kMaxNesting = 512;

// How many values (array elements and object keys, counted over the whole message) one message may
// hold: the one limit for what we publish (the N-API face refuses more: ENCODE_FAILED) and what we
// decode (BAD_ATTACHMENT), so that nothing sent is dropped by every receiver. A decoded value costs
// about 120 bytes and a map entry 150, so a byte of msgpack (a nil) would otherwise cost 120 times its
// size: this keeps a message under about 300 MB decoded, whatever a row of a few MB claims.
inline constexpr size_t kMaxMessageValues = size_t{1} << 21;

// The longest string JavaScript can hold: V8's String::kMaxLength (UTF-16 units, 64-bit builds).
// Decoders refuse longer strings rather than build what the face could not hand over. (Binaries
// need no such check: msgpack sizes are 32-bit and a Node.js Buffer holds up to 2^32 bytes.)
inline constexpr size_t kMaxJsStringLength = (size_t{1} << 29) - 24;

struct Value {
  enum class Kind : uint8_t {
    Undefined,  // JS undefined (JSON: dropped in objects, null in arrays; msgpack: nil)
    Null,
    Bool,
    Int,        // a safe integer (|x| <= 2^53 - 1)
    Double,     // any other JS number, including NaN and +-Infinity
    String,     // UTF-8
    Binary,     // Buffer / ArrayBuffer / typed array bytes
    Array,
    Map,        // plain object: own enumerable string keys, in insertion order
    Timestamp,  // JS Date (msgpack ext type -1)
  };

  Kind kind = Kind::Undefined;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  // Timestamp: seconds since the epoch (may be negative) and nanoseconds in [0, 1e9).
  int64_t seconds = 0;
  uint32_t nanoseconds = 0;
  // Timestamp only: false for an invalid Date (new Date(NaN)); JSON writes it as null.
  bool valid_time = true;
  std::string str;                                  // String (UTF-8) or Binary (raw bytes)
  std::vector<Value> items;                          // Array
  std::vector<std::pair<std::string, Value>> fields; // Map

  static Value undefined() { return Value{}; }
  static Value null() { Value v; v.kind = Kind::Null; return v; }
  static Value boolean_of(bool b) { Value v; v.kind = Kind::Bool; v.boolean = b; return v; }
  static Value int_of(int64_t i) { Value v; v.kind = Kind::Int; v.integer = i; return v; }
  static Value double_of(double d) { Value v; v.kind = Kind::Double; v.number = d; return v; }
  static Value string_of(std::string s) { Value v; v.kind = Kind::String; v.str = std::move(s); return v; }
  static Value binary_of(std::string bytes) { Value v; v.kind = Kind::Binary; v.str = std::move(bytes); return v; }
  static Value array() { Value v; v.kind = Kind::Array; return v; }
  static Value map() { Value v; v.kind = Kind::Map; return v; }
  static Value timestamp_of(int64_t sec, uint32_t nsec) {
    Value v; v.kind = Kind::Timestamp; v.seconds = sec; v.nanoseconds = nsec; return v;
  }

  // Map lookup (first match); nullptr when absent or when this is not a Map.
  const Value* get(const std::string& key) const {
    if (kind != Kind::Map) return nullptr;
    for (const auto& f : fields) if (f.first == key) return &f.second;
    return nullptr;
  }
};

}  // namespace pgadapter
