#include "core/json_codec.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace pgadapter {

namespace {

constexpr int64_t kMaxSafeInteger = 9007199254740991;  // 2^53 - 1

// Int for a safe integer other than -0 (what the rest of the tree calls an Int), else Double.
Value number_value(double d) {
  if (d >= -9007199254740991.0 && d <= 9007199254740991.0 && d == std::trunc(d) &&
      !(d == 0 && std::signbit(d))) {
    return Value::int_of(static_cast<int64_t>(d));
  }
  return Value::double_of(d);
}

void append_int(int64_t i, std::string& out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, i);
  out.append(buf, r.ptr);
}

// ---------------------------------------------------------------------------------------------
// Writer

// Bytes that need a look in a JSON string: '"', '\\', control characters, and 0xED (the lead byte
// of a WTF-8 lone surrogate, which JSON.stringify writes as \udXXX).
struct EscapeTable {
  bool special[256] = {};
  constexpr EscapeTable() {
    for (int c = 0; c < 0x20; ++c) special[c] = true;
    special[static_cast<unsigned char>('"')] = true;
    special[static_cast<unsigned char>('\\')] = true;
    special[0xED] = true;
  }
};
constexpr EscapeTable kEscape;

// True when one of the 8 bytes of `x` may be special (exact: true iff one is). Lets long runs of plain
// text be skipped 8 bytes at a time (SWAR: a byte below 0x20, or equal to '"', '\\' or 0xED).
bool any_special8(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  const auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHighs; };
  const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHighs;
  return (below_space | has_zero(x ^ (kOnes * '"')) | has_zero(x ^ (kOnes * '\\')) | has_zero(x ^ (kOnes * 0xED))) != 0;
}

// The whole 64-byte blocks at the start of [p, p + n) that hold no special byte. A block is tested in
// a loop the compiler vectorizes: twice any_special8's speed on long plain text.
size_t plain_blocks(const unsigned char* p, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    unsigned char special = 0;
    for (size_t j = 0; j < 64; ++j) {
      const unsigned char c = p[i + j];
      special |= static_cast<unsigned char>((c < 0x20) | (c == '"') | (c == '\\') | (c == 0xED));
    }
    if (special) break;
  }
  return i;
}

constexpr char kHex[] = "0123456789abcdef";

void append_u_escape(unsigned cp, std::string& out) {
  char buf[6] = {'\\', 'u', kHex[(cp >> 12) & 0xF], kHex[(cp >> 8) & 0xF], kHex[(cp >> 4) & 0xF],
                 kHex[cp & 0xF]};
  out.append(buf, 6);
}

void append_2digits(unsigned v, std::string& out) {
  char buf[2] = {static_cast<char>('0' + v / 10), static_cast<char>('0' + v % 10)};
  out.append(buf, 2);
}

// Date.prototype.toJSON: false (write null) when JS would hold an invalid Date.
bool append_iso_time(const Value& v, std::string& out) {
  if (!v.valid_time) return false;
  // Same arithmetic as @msgpack/msgpack's decode (new Date(sec * 1e3 + nsec / 1e6)), then TimeClip.
  double ms = static_cast<double>(v.seconds) * 1e3 + static_cast<double>(v.nanoseconds) / 1e6;
  if (!(std::fabs(ms) <= 8.64e15)) return false;
  int64_t t = static_cast<int64_t>(ms);  // truncates toward zero, like TimeClip
  int64_t days = t / 86400000, rem = t % 86400000;
  if (rem < 0) { rem += 86400000; --days; }
  // Civil date from days since 1970-01-01 (proleptic Gregorian, era-based).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  unsigned day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  unsigned month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  char buf[8];
  out.push_back('"');
  if (year >= 0 && year <= 9999) {
    unsigned y = static_cast<unsigned>(year);
    append_2digits(y / 100, out);
    append_2digits(y % 100, out);
  } else {
    out.push_back(year < 0 ? '-' : '+');
    int64_t a = year < 0 ? -year : year;  // at most 275760
    for (int i = 5; i >= 0; --i, a /= 10) buf[i] = static_cast<char>('0' + a % 10);
    out.append(buf, 6);
  }
  out.push_back('-');
  append_2digits(month, out);
  out.push_back('-');
  append_2digits(day, out);
  out.push_back('T');
  unsigned r = static_cast<unsigned>(rem);
  append_2digits(r / 3600000, out);
  out.push_back(':');
  append_2digits(r / 60000 % 60, out);
  out.push_back(':');
  append_2digits(r / 1000 % 60, out);
  unsigned milli = r % 1000;
  buf[0] = '.';
  buf[1] = static_cast<char>('0' + milli / 100);
  buf[2] = static_cast<char>('0' + milli / 10 % 10);
  buf[3] = static_cast<char>('0' + milli % 10);
  buf[4] = 'Z';
  buf[5] = '"';
  out.append(buf, 6);
  return true;
}

void append_buffer_json(const std::string& bytes, std::string& out) {
  out.reserve(out.size() + 27 + bytes.size() * 4);
  out.append("{\"type\":\"Buffer\",\"data\":[");
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i) out.push_back(',');
    unsigned b = static_cast<unsigned char>(bytes[i]);
    char buf[3];
    int n = 0;
    if (b >= 100) buf[n++] = static_cast<char>('0' + b / 100);
    if (b >= 10) buf[n++] = static_cast<char>('0' + b / 10 % 10);
    buf[n++] = static_cast<char>('0' + b % 10);
    out.append(buf, n);
  }
  out.append("]}");
}

void write_value(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::Null:
      out.append("null");
      return;
    case Value::Kind::Bool:
      out.append(v.boolean ? "true" : "false");
      return;
    case Value::Kind::Int:
      append_int(v.integer, out);
      return;
    case Value::Kind::Double:
      if (std::isfinite(v.number)) {
        append_js_number(v.number, out);
      } else {
        out.append("null");
      }
      return;
    case Value::Kind::String:
      append_json_string(v.str, out);
      return;
    case Value::Kind::Binary:
      append_buffer_json(v.str, out);
      return;
    case Value::Kind::Timestamp:
      if (!append_iso_time(v, out)) out.append("null");
      return;
    case Value::Kind::Array: {
      out.push_back('[');
      bool first = true;
      for (const Value& item : v.items) {
        if (!first) out.push_back(',');
        first = false;
        write_value(item, out);
      }
      out.push_back(']');
      return;
    }
    case Value::Kind::Map: {
      out.push_back('{');
      bool first = true;
      for (const auto& field : v.fields) {
        if (field.second.kind == Value::Kind::Undefined) continue;
        if (!first) out.push_back(',');
        first = false;
        append_json_string(field.first, out);
        out.push_back(':');
        write_value(field.second, out);
      }
      out.push_back('}');
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Parser

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(uint32_t cp, std::string& out) {
  char buf[4];
  int n;
  if (cp < 0x80) {
    buf[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    buf[0] = static_cast<char>(0xC0 | (cp >> 6));
    buf[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {  // lone surrogates land here too (WTF-8)
    buf[0] = static_cast<char>(0xE0 | (cp >> 12));
    buf[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    buf[0] = static_cast<char>(0xF0 | (cp >> 18));
    buf[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out.append(buf, n);
}

class Parser {
 public:
  Parser(std::string_view text, std::string& error, size_t max_depth, bool header_only = false,
         const std::vector<std::string_view>* path = nullptr, JsonSpan* span = nullptr)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()),
        error_(error), max_depth_(max_depth), header_only_(header_only), path_(path), span_(span) {}

  bool parse(Value& out) {
    skip_ws();
    if (!parse_value(out, 0)) return false;
    skip_ws();
    if (p_ != end_) return fail_unexpected();
    return true;
  }

 private:
  bool fail(const char* what) {
    error_ = what;
    error_ += " at position ";
    append_int(p_ - begin_, error_);
    return false;
  }
  bool fail_unexpected() {
    if (p_ >= end_) {
      error_ = "Unexpected end of JSON input";
      return false;
    }
    unsigned char c = static_cast<unsigned char>(*p_);
    error_ = "Unexpected token ";
    if (c >= 0x20 && c < 0x7F) {
      error_.push_back(static_cast<char>(c));
    } else {
      error_ += "0x";
      error_.push_back(kHex[c >> 4]);
      error_.push_back(kHex[c & 0xF]);
    }
    error_ += " in JSON at position ";
    append_int(p_ - begin_, error_);
    return false;
  }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool literal(const char* word, size_t len) {
    if (static_cast<size_t>(end_ - p_) < len || std::memcmp(p_, word, len) != 0) {
      // Point at the first mismatching byte, like V8 does.
      for (size_t i = 0; i < len && p_ < end_ && *p_ == word[i]; ++i) ++p_;
      return fail_unexpected();
    }
    p_ += len;
    return true;
  }

  bool parse_value(Value& out, size_t depth) {
    if (p_ >= end_) return fail_unexpected();
    switch (*p_) {
      case '{': return parse_object(out, depth + 1, header_only_ && depth == 0);
      case '[': return parse_array(out, depth + 1);
      case '"':
        out = Value::string_of(std::string());
        return parse_string(out.str);
      case 't': out = Value::boolean_of(true); return literal("true", 4);
      case 'f': out = Value::boolean_of(false); return literal("false", 5);
      case 'n': out = Value::null(); return literal("null", 4);
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return parse_number(out);
        return fail_unexpected();
    }
  }

  bool parse_array(Value& out, size_t depth) {
    if (depth > max_depth_) return fail("JSON nested too deeply");
    out = Value::array();
    ++p_;  // '['
    skip_ws();
    if (p_ < end_ && *p_ == ']') { ++p_; return true; }
    for (;;) {
      out.items.emplace_back();
      skip_ws();
      if (!parse_value(out.items.back(), depth)) return false;
      skip_ws();
      if (p_ >= end_) return fail_unexpected();
      if (*p_ == ',') { ++p_; continue; }
      if (*p_ == ']') { ++p_; return true; }
      return fail_unexpected();
    }
  }

  // on_path (header mode): the top-level object, or one reached along path_ (its scalars are built).
  bool parse_object(Value& out, size_t depth, bool on_path = false) {
    if (depth > max_depth_) return fail("JSON nested too deeply");
    out = Value::map();
    detail::MapBuilder builder(out);
    ++p_;  // '{'
    skip_ws();
    if (p_ < end_ && *p_ == '}') { ++p_; return true; }
    std::string key;
    for (;;) {
      skip_ws();
      if (p_ >= end_ || *p_ != '"') return fail_unexpected();
      key.clear();
      if (!parse_string(key)) return false;
      skip_ws();
      if (p_ >= end_ || *p_ != ':') return fail_unexpected();
      ++p_;
      skip_ws();
      // Header mode, along the path: this key's value (the later one of a repeated key) replaces
      // whatever an earlier one had found.
      const size_t level = depth - 1;
      const bool path_key = on_path && path_ != nullptr && level < path_->size() && key == (*path_)[level];
      if (path_key) *span_ = JsonSpan();
      if (path_key && level + 1 == path_->size()) {
        builder.slot(std::move(key));
        span_->begin = static_cast<size_t>(p_ - begin_);
        stable_ = true;
        ascii_ = true;
        track_numbers_ = true;
        const bool ok = skip_value(depth);
        track_numbers_ = false;
        if (!ok) return false;
        span_->end = static_cast<size_t>(p_ - begin_);
        span_->stringify_stable = stable_;
        span_->ascii = ascii_;
      } else if (path_key && p_ < end_ && *p_ == '{') {
        if (!parse_object(builder.slot(std::move(key)), depth + 1, true)) return false;
      } else if (on_path && p_ < end_ && (*p_ == '{' || *p_ == '[')) {
        // Header mode: nested values off the path are checked, not built.
        builder.slot(std::move(key));
        if (!skip_value(depth)) return false;
      } else if (!parse_value(builder.slot(std::move(key)), depth)) {
        return false;
      }
      key = std::string();
      skip_ws();
      if (p_ >= end_) return fail_unexpected();
      if (*p_ == ',') { ++p_; continue; }
      if (*p_ == '}') { ++p_; return true; }
      return fail_unexpected();
    }
  }

  // Validation without building (header mode): the same grammar and depth limit as parse_value.
  bool skip_value(size_t depth) {
    if (p_ >= end_) return fail_unexpected();
    switch (*p_) {
      case '{':
      case '[': {
        const char close = *p_ == '{' ? '}' : ']';
        const bool object = close == '}';
        if (depth + 1 > max_depth_) return fail("JSON nested too deeply");
        ++p_;
        skip_ws();
        if (p_ < end_ && *p_ == close) { ++p_; return true; }
        for (;;) {
          skip_ws();
          if (object) {
            if (p_ >= end_ || *p_ != '"') return fail_unexpected();
            if (!skip_string()) return false;
            skip_ws();
            if (p_ >= end_ || *p_ != ':') return fail_unexpected();
            ++p_;
            skip_ws();
          }
          if (!skip_value(depth + 1)) return false;
          skip_ws();
          if (p_ >= end_) return fail_unexpected();
          if (*p_ == ',') { ++p_; continue; }
          if (*p_ == close) { ++p_; return true; }
          return fail_unexpected();
        }
      }
      case '"': return skip_string();
      case 't': return literal("true", 4);
      case 'f': return literal("false", 5);
      case 'n': return literal("null", 4);
      default: {
        if (*p_ != '-' && (*p_ < '0' || *p_ > '9')) return fail_unexpected();
        Value scratch;
        if (!parse_number(scratch)) return false;
        if (track_numbers_ && scratch.kind == Value::Kind::Double &&
            (std::isinf(scratch.number) || (scratch.number == 0 && std::signbit(scratch.number)))) {
          stable_ = false;
        }
        return true;
      }
    }
  }

  bool skip_string() {
    ++p_;  // opening quote
    // Fast path, for the common string without escapes: find the closing quote with memchr and
    // check the span for backslashes and control characters in one branch-free (vectorized) pass.
    if (const void* q = std::memchr(p_, '"', static_cast<size_t>(end_ - p_))) {
      const auto* a = reinterpret_cast<const unsigned char*>(p_);
      const auto* b = static_cast<const unsigned char*>(q);
      unsigned char bad = 0, high = 0;
      for (const unsigned char* i = a; i < b; ++i) {
        bad |= static_cast<unsigned char>((*i < 0x20) | (*i == '\\'));
        high |= *i;
      }
      if (!bad) {
        if (high & 0x80) ascii_ = false;
        p_ = static_cast<const char*>(q) + 1;
        return true;
      }
    }
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') { ++p_; return true; }
      if (c < 0x20) return fail_unexpected();
      if (c >= 0x80) ascii_ = false;
      if (c != '\\') { ++p_; continue; }
      if (++p_ >= end_) break;
      const char e = *p_++;
      if (e == 'u') {
        if (read_hex4() < 0) return fail("Bad Unicode escape in JSON");
      } else if (!std::strchr("\"\\/bfnrt", e) || e == '\0') {
        --p_;
        return fail_unexpected();
      }
    }
    return fail_unexpected();
  }

  // Reads 4 hex digits after "\u" at p_; -1 when malformed.
  int32_t read_hex4() {
    if (end_ - p_ < 4) return -1;
    int32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hex_value(static_cast<unsigned char>(p_[i]));
      if (h < 0) return -1;
      cp = cp << 4 | h;
    }
    p_ += 4;
    return cp;
  }

  bool parse_string(std::string& out) {
    ++p_;  // opening quote
    for (;;) {
      const char* run = p_;
      while (p_ < end_) {
        unsigned char c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++p_;
      }
      out.append(run, p_);
      if (p_ >= end_) return fail("Unterminated string in JSON");
      char c = *p_;
      if (c == '"') { ++p_; return true; }
      if (c != '\\') return fail("Bad control character in string literal in JSON");
      ++p_;
      if (p_ >= end_) return fail("Unterminated string in JSON");
      char e = *p_++;
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          int32_t cp = read_hex4();
          if (cp < 0) return fail("Bad Unicode escape in JSON");
          if (cp >= 0xD800 && cp <= 0xDBFF && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            const char* save = p_;
            p_ += 2;
            int32_t lo = read_hex4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              p_ = save;  // not a pair: emit the high surrogate alone, re-read the next escape
            }
          }
          append_utf8(static_cast<uint32_t>(cp), out);
          break;
        }
        default:
          --p_;
          return fail("Bad escaped character in JSON");
      }
    }
  }

  bool parse_number(Value& out) {
    const char* start = p_;
    bool negative = false;
    if (*p_ == '-') { negative = true; ++p_; }
    const char* digits = p_;
    if (p_ >= end_) return fail_unexpected();
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return fail_unexpected();
    }
    size_t int_digits = static_cast<size_t>(p_ - digits);
    bool integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') return fail_unexpected();
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') return fail_unexpected();
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (integer && int_digits <= 16) {  // exact in int64; 2^53 - 1 has 16 digits
      int64_t v = 0;
      for (const char* q = digits; q < p_; ++q) v = v * 10 + (*q - '0');
      if (v <= kMaxSafeInteger) {
        if (v == 0 && negative) {
          out = Value::double_of(-0.0);
        } else {
          out = Value::int_of(negative ? -v : v);
        }
        return true;
      }
    }
    double d = 0;
    auto r = std::from_chars(start, p_, d, std::chars_format::general);
    if (r.ec == std::errc::result_out_of_range) {
      d = overflows(digits, p_) ? HUGE_VAL : 0.0;
      if (negative) d = -d;
    } else if (r.ec != std::errc() || r.ptr != p_) {
      return fail("Bad number in JSON");
    }
    out = number_value(d);
    return true;
  }

  // For a literal from_chars reports out of range: true for a huge magnitude, false for a tiny
  // one. Decimal exponent of the leading significant digit decides (the literal is validated).
  static bool overflows(const char* digits, const char* end) {
    const char* q = digits;
    int64_t magnitude = 0;  // position of the first significant digit relative to the point
    while (q < end && *q >= '0' && *q <= '9') ++q;
    int64_t int_len = q - digits;
    if (!(int_len == 1 && *digits == '0')) {
      magnitude = int_len;
    } else if (q < end && *q == '.') {
      ++q;
      while (q < end && *q == '0') { ++q; --magnitude; }
    }
    while (q < end && *q != 'e' && *q != 'E') ++q;
    if (q < end) {
      ++q;
      bool neg = false;
      if (*q == '+' || *q == '-') neg = *q++ == '-';
      int64_t e = 0;
      while (q < end && e < 100000000) e = e * 10 + (*q++ - '0');
      magnitude += neg ? -e : e;
    }
    return magnitude > 0;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::string& error_;
  size_t max_depth_;
  bool header_only_ = false;
  const std::vector<std::string_view>* path_ = nullptr;  // header mode: see JsonSpan
  JsonSpan* span_ = nullptr;
  bool track_numbers_ = false;  // inside the span: looking for numbers JSON.stringify would not write back
  bool stable_ = true;
  bool ascii_ = true;  // inside the span: no byte above 0x7F (only strings can hold one)
};

}  // namespace

// ---------------------------------------------------------------------------------------------

void append_js_number(double d, std::string& out) {
  if (std::isnan(d)) { out.append("NaN"); return; }
  if (d == 0) { out.push_back('0'); return; }
  if (std::isinf(d)) { out.append(d < 0 ? "-Infinity" : "Infinity"); return; }
  if (d < 0) { out.push_back('-'); d = -d; }

  // Shortest round-trip digits, as "D[.DDD]e[+-]XX".
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  char digits[24];
  int k = 0;
  const char* p = buf;
  digits[k++] = *p++;
  if (*p == '.') {
    ++p;
    while (*p != 'e') digits[k++] = *p++;
  }
  ++p;  // 'e'
  bool neg_exp = *p++ == '-';
  int e = 0;
  while (p < r.ptr) e = e * 10 + (*p++ - '0');
  if (neg_exp) e = -e;
  int n = e + 1;  // ECMAScript Number::toString's n: the decimal point sits after n digits

  if (k <= n && n <= 21) {
    out.append(digits, k);
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, n);
    out.push_back('.');
    out.append(digits + n, k - n);
  } else if (-6 < n && n <= 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-n), '0');
    out.append(digits, k);
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(digits + 1, k - 1);
    }
    out.push_back('e');
    out.push_back(n - 1 < 0 ? '-' : '+');
    append_int(n - 1 < 0 ? 1 - n : n - 1, out);
  }
}

void append_json_string(std::string_view s, std::string& out) {
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  const auto* bytes = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t run = 0;
  size_t blocks_from = 0;  // after a failed block test at i: i + 64 (the special byte lies before)
  for (size_t i = 0; i < n; ++i) {
    if (i >= blocks_from) {
      i += plain_blocks(bytes + i, n - i);
      blocks_from = i + 64;
    }
    for (uint64_t word; i + 8 <= n; i += 8) {
      std::memcpy(&word, bytes + i, 8);
      if (any_special8(word)) break;
    }
    if (i >= n) break;
    unsigned char c = bytes[i];
    if (!kEscape.special[c]) continue;
    if (c == 0xED) {
      // ED A0..BF xx encodes U+D800..U+DFFF: a lone surrogate (WTF-8). Valid UTF-8 never has it.
      if (i + 2 >= n || bytes[i + 1] < 0xA0 || bytes[i + 1] > 0xBF || (bytes[i + 2] & 0xC0) != 0x80)
        continue;
      out.append(s.data() + run, i - run);
      const unsigned cp = 0xD000u | (bytes[i + 1] & 0x3Fu) << 6 | (bytes[i + 2] & 0x3Fu);
      // A high surrogate followed by a low one is one character: written as such, so that reading the
      // output back (where the two escapes combine) gives the same text again.
      if (cp < 0xDC00 && i + 5 < n && bytes[i + 3] == 0xED && bytes[i + 4] >= 0xB0 && bytes[i + 4] <= 0xBF &&
          (bytes[i + 5] & 0xC0) == 0x80) {
        const unsigned low = 0xD000u | (bytes[i + 4] & 0x3Fu) << 6 | (bytes[i + 5] & 0x3Fu);
        append_utf8(0x10000u + ((cp - 0xD800u) << 10) + (low - 0xDC00u), out);
        i += 5;
      } else {
        append_u_escape(cp, out);
        i += 2;
      }
      run = i + 1;
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: append_u_escape(c, out); break;
    }
  }
  out.append(s.data() + run, n - run);
  out.push_back('"');
}

void write_json(const Value& v, std::string& out) { write_value(v, out); }

bool parse_json_header(std::string_view text, Value& out, std::string& error, size_t max_depth) {
  Parser parser(text, error, max_depth, /*header_only=*/true);
  out = Value();
  return parser.parse(out);
}

bool parse_json_header(std::string_view text, Value& out, std::string& error,
                       const std::vector<std::string_view>& path, JsonSpan& span, size_t max_depth) {
  span = JsonSpan();
  if (path.empty() || path.size() > 8) {
    error = "a JSON path has 1 to 8 keys";
    return false;
  }
  Parser parser(text, error, max_depth, /*header_only=*/true, &path, &span);
  out = Value();
  if (parser.parse(out)) return true;
  span = JsonSpan();
  return false;
}

bool parse_json(std::string_view text, Value& out, std::string& error, size_t max_depth) {
  Parser parser(text, error, max_depth);
  return parser.parse(out);
}

namespace detail {

Value& MapBuilder::slot(std::string key) {
  auto& fields = map_.fields;
  if (index_.empty()) {
    for (auto& f : fields) {
      if (f.first == key) {
        f.second = Value();
        return f.second;
      }
    }
    if (fields.size() < kLinearScanMax) {
      if (fields.capacity() == 0) fields.reserve(4);  // a cluster message's objects: 2 to 4 fields, one allocation
      fields.emplace_back(std::move(key), Value());
      return fields.back().second;
    }
    index_.reserve(fields.size() * 2);
    for (size_t i = 0; i < fields.size(); ++i) index_.emplace(fields[i].first, i);
  }
  auto [it, inserted] = index_.emplace(key, fields.size());
  if (!inserted) {
    Value& existing = fields[it->second].second;
    existing = Value();
    return existing;
  }
  fields.emplace_back(std::move(key), Value());
  return fields.back().second;
}

}  // namespace detail
}  // namespace pgadapter
