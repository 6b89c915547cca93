#include "core/msgpack_codec.h"

#include <msgpack.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <vector>

#include "core/json_codec.h"

namespace pgadapter {

namespace {

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1
constexpr int8_t kExtTimestamp = -1;

// ---------------------------------------------------------------------------------------------
// Encoder

struct StringSink {
  std::string& s;
  void write(const char* p, size_t n) { s.append(p, n); }
};
using Packer = msgpack::packer<StringSink>;

uint32_t checked_size(size_t n) {
  if (n > 0xFFFFFFFFu) throw std::length_error("value too large for msgpack");
  return static_cast<uint32_t>(n);
}

void store_be32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

// packer::pack_double would write integral doubles (2^53, 1e300) as ints; JS writes float64.
void pack_float64(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  char buf[9];
  buf[0] = static_cast<char>(0xcb);
  store_be32(buf + 1, static_cast<uint32_t>(bits >> 32));
  store_be32(buf + 5, static_cast<uint32_t>(bits));
  out.append(buf, 9);
}

void pack_timestamp(Packer& pk, int64_t sec, uint32_t nsec) {
  char buf[12];
  if (sec >= 0 && sec <= 0x3FFFFFFFFLL) {
    if (nsec == 0 && sec <= 0xFFFFFFFFLL) {  // timestamp 32: sec32
      store_be32(buf, static_cast<uint32_t>(sec));
      pk.pack_ext(4, kExtTimestamp);
      pk.pack_ext_body(buf, 4);
    } else {  // timestamp 64: nsec30 | sec34
      store_be32(buf, nsec << 2 | static_cast<uint32_t>(sec >> 32));
      store_be32(buf + 4, static_cast<uint32_t>(sec));
      pk.pack_ext(8, kExtTimestamp);
      pk.pack_ext_body(buf, 8);
    }
  } else {  // timestamp 96: nsec32, sec64 (signed)
    uint64_t s = static_cast<uint64_t>(sec);
    store_be32(buf, nsec);
    store_be32(buf + 4, static_cast<uint32_t>(s >> 32));
    store_be32(buf + 8, static_cast<uint32_t>(s));
    pk.pack_ext(12, kExtTimestamp);
    pk.pack_ext_body(buf, 12);
  }
}

void pack_value(Packer& pk, StringSink& sink, const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::Null:
      pk.pack_nil();
      return;
    case Value::Kind::Bool:
      if (v.boolean) pk.pack_true(); else pk.pack_false();
      return;
    case Value::Kind::Int:
      pk.pack_int64(v.integer);
      return;
    case Value::Kind::Double:
      // Number.isSafeInteger(x) decides in JS, so 2.0 and -0 go out as ints there too.
      if (v.number >= -kMaxSafe && v.number <= kMaxSafe && v.number == std::trunc(v.number)) {
        pk.pack_int64(static_cast<int64_t>(v.number));
      } else {
        pack_float64(sink.s, v.number);
      }
      return;
    case Value::Kind::String:
      pk.pack_str(checked_size(v.str.size()));
      pk.pack_str_body(v.str.data(), static_cast<uint32_t>(v.str.size()));
      return;
    case Value::Kind::Binary:
      pk.pack_bin(checked_size(v.str.size()));
      pk.pack_bin_body(v.str.data(), static_cast<uint32_t>(v.str.size()));
      return;
    case Value::Kind::Timestamp:
      if (v.valid_time) pack_timestamp(pk, v.seconds, v.nanoseconds); else pk.pack_nil();
      return;
    case Value::Kind::Array:
      pk.pack_array(checked_size(v.items.size()));
      for (const Value& item : v.items) pack_value(pk, sink, item);
      return;
    case Value::Kind::Map:
      pk.pack_map(checked_size(v.fields.size()));
      for (const auto& field : v.fields) {
        pk.pack_str(checked_size(field.first.size()));
        pk.pack_str_body(field.first.data(), static_cast<uint32_t>(field.first.size()));
        pack_value(pk, sink, field.second);
      }
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoder: a visitor for msgpack-cxx's iterative parser (msgpack::parse) that builds the Value
// tree directly. Unlike msgpack::unpack it allocates nothing up front for a container's claimed
// length, so a 5-byte header claiming 2^32 elements costs nothing, and nesting is bounded here.

// UTF-16 units of UTF-8 text, as JavaScript counts a string's length (4-byte sequences are two).
size_t utf16_length(const char* p, size_t n) {
  size_t units = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if ((c & 0xC0) != 0x80) units += c >= 0xF0 ? 2 : 1;
  }
  return units;
}

Value number_value(double d) {
  if (d >= -kMaxSafe && d <= kMaxSafe && d == std::trunc(d) && !(d == 0 && std::signbit(d))) {
    return Value::int_of(static_cast<int64_t>(d));
  }
  return Value::double_of(d);
}

class Builder : public msgpack::null_visitor {
 public:
  Builder(Value& root, std::string& error, size_t max_depth)
      : root_(root), error_(error), max_depth_(max_depth) {}

  bool visit_nil() { return put(Value::null()); }
  bool visit_boolean(bool b) { return put(Value::boolean_of(b)); }
  bool visit_positive_integer(uint64_t u) {
    return put_number(u <= static_cast<uint64_t>(kMaxSafe) ? Value::int_of(static_cast<int64_t>(u))
                                                         : Value::double_of(static_cast<double>(u)));
  }
  // msgpack-cxx calls this for every signed format (int8..int64), whatever the sign.
  bool visit_negative_integer(int64_t i) {
    const auto safe = static_cast<int64_t>(kMaxSafe);
    return put_number(i >= -safe && i <= safe ? Value::int_of(i)
                                                          : Value::double_of(static_cast<double>(i)));
  }
  bool visit_float32(float f) { return put_number(number_value(f)); }
  bool visit_float64(double d) { return put_number(number_value(d)); }

  bool visit_str(const char* p, uint32_t size) {
    if (size > kMaxJsStringLength && utf16_length(p, size) > kMaxJsStringLength) {
      return fail("msgpack string too long for JavaScript (" + std::to_string(size) + " bytes)");
    }
    Value* s = slot_for_key_or_value();
    if (!s) return false;
    *s = Value::string_of(std::string(p, size));
    return true;
  }
  bool visit_bin(const char* p, uint32_t size) {
    return put(Value::binary_of(std::string(p, size)));
  }
  // `p` points at the type byte; `size` counts it (0 only when an ext 32 length overflowed).
  bool visit_ext(const char* p, uint32_t size) {
    if (size == 0) return fail("msgpack ext too large");
    int8_t type = static_cast<int8_t>(p[0]);
    const auto* d = reinterpret_cast<const unsigned char*>(p + 1);
    uint32_t n = size - 1;
    if (type != kExtTimestamp) {
      Value ext = Value::map();
      ext.fields.emplace_back("type", Value::int_of(type));
      ext.fields.emplace_back("data", Value::binary_of(std::string(p + 1, n)));
      return put(std::move(ext));
    }
    auto be32 = [d](int at) {
      return uint32_t{d[at]} << 24 | uint32_t{d[at + 1]} << 16 | uint32_t{d[at + 2]} << 8 | d[at + 3];
    };
    int64_t sec;
    uint64_t nsec;
    if (n == 4) {
      sec = be32(0);
      nsec = 0;
    } else if (n == 8) {
      uint32_t hi = be32(0);
      sec = int64_t{hi & 3} << 32 | be32(4);
      nsec = hi >> 2;
    } else if (n == 12) {
      nsec = be32(0);
      sec = static_cast<int64_t>(uint64_t{be32(4)} << 32 | be32(8));
    } else {
      return fail("msgpack timestamp ext must be 4, 8 or 12 bytes");
    }
    // Out-of-spec nanoseconds (>= 1e9): carry into seconds, as JS's Date arithmetic would.
    if (nsec >= 1000000000u) {
      int64_t carry = static_cast<int64_t>(nsec / 1000000000u);
      if (sec > INT64_MAX - carry) return fail("msgpack timestamp out of range");
      sec += carry;
      nsec %= 1000000000u;
    }
    return put(Value::timestamp_of(sec, static_cast<uint32_t>(nsec)));
  }

  bool start_array(uint32_t n) {
    if (!take_values(n)) return false;
    Value* s = container_slot();
    if (!s) return false;
    *s = Value::array();
    s->items.reserve(std::min<uint32_t>(n, 1024));
    stack_.push_back(Frame{s, std::nullopt, Value(), nullptr, false});
    return true;
  }
  bool end_array() { stack_.pop_back(); return true; }
  bool start_map(uint32_t n) {
    if (!take_values(n)) return false;
    Value* s = container_slot();
    if (!s) return false;
    *s = Value::map();
    s->fields.reserve(std::min<uint32_t>(n, 16));  // capped: n is what the sender claims
    stack_.push_back(Frame{s, detail::MapBuilder(*s), Value(), nullptr, false});
    return true;
  }
  bool start_map_key() { stack_.back().in_key = true; return true; }
  bool end_map_key() {
    Frame& f = stack_.back();
    f.in_key = false;
    std::string key;
    switch (f.key.kind) {
      case Value::Kind::String: key = std::move(f.key.str); break;
      case Value::Kind::Int: key = std::to_string(f.key.integer); break;
      default: append_js_number(f.key.number, key); break;  // Double (String(number) in JS)
    }
    f.value_slot = &f.builder->slot(std::move(key));
    return true;
  }
  bool end_map() { stack_.pop_back(); return true; }

  size_t count() const { return count_; }

  void parse_error(size_t /*parsed*/, size_t at) {
    if (error_.empty()) error_ = "Invalid msgpack data at offset " + std::to_string(at);
  }
  void insufficient_bytes(size_t /*parsed*/, size_t /*at*/) {
    if (error_.empty()) error_ = "Truncated msgpack data";
  }

 private:
  struct Frame {
    Value* container;
    std::optional<detail::MapBuilder> builder;  // maps only
    Value key;                                  // maps: the key being read
    Value* value_slot;                          // maps: where the current value goes
    bool in_key;
  };

  // Counted as the sender counts them, from the sizes the data claims: refused before it is built.
  bool take_values(uint32_t n) {
    if (n > kMaxMessageValues - count_) {
      return fail("msgpack message holds more than " + std::to_string(kMaxMessageValues) + " values");
    }
    count_ += n;
    return true;
  }

  bool fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
    return false;
  }

  // Where the next value goes. Map keys are collected in the frame and converted at end_map_key.
  Value* slot_for_key_or_value() {
    if (stack_.empty()) {
      if (root_done_) return nullptr;  // cannot happen: the parser stops after one object
      root_done_ = true;
      return &root_;
    }
    Frame& f = stack_.back();
    if (f.container->kind == Value::Kind::Array) {
      f.container->items.emplace_back();
      return &f.container->items.back();
    }
    return f.in_key ? &f.key : f.value_slot;
  }
  bool in_key() const { return !stack_.empty() && stack_.back().in_key; }

  Value* value_slot() {
    if (in_key()) { fail("msgpack map key must be a string or number"); return nullptr; }
    return slot_for_key_or_value();
  }
  Value* container_slot() {
    if (stack_.size() >= max_depth_) { fail("msgpack nested too deeply"); return nullptr; }
    return value_slot();
  }
  bool put(Value v) {
    Value* s = value_slot();
    if (!s) return false;
    *s = std::move(v);
    return true;
  }
  bool put_number(Value v) {
    Value* s = slot_for_key_or_value();
    if (!s) return false;
    *s = std::move(v);
    return true;
  }

  Value& root_;
  std::string& error_;
  size_t max_depth_;
  bool root_done_ = false;
  std::vector<Frame> stack_;
  size_t count_ = 0;  // array elements and map keys so far (kMaxMessageValues)
};

}  // namespace

void encode_msgpack(const Value& v, std::string& out) {
  StringSink sink{out};
  Packer pk(sink);
  pack_value(pk, sink, v);
}

bool decode_msgpack(std::string_view bytes, Value& out, std::string& error, size_t max_depth, size_t* values) {
  error.clear();
  try {
    out = Value();
    Builder builder(out, error, max_depth);
    size_t off = 0;
    const bool parsed = msgpack::parse(bytes.data(), bytes.size(), off, builder);
    if (values != nullptr) *values = builder.count();
    if (!parsed) {
      if (error.empty()) error = "Invalid msgpack data";
      return false;
    }
    if (off != bytes.size()) {
      error = "Extra " + std::to_string(bytes.size() - off) + " byte(s) after the msgpack object";
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    error = std::string("msgpack decode failed: ") + e.what();
  } catch (...) {
    error = "msgpack decode failed";
  }
  return false;
}

}  // namespace pgadapter
