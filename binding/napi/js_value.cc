#include "napi/js_value.h"

#include <cmath>
#include <cstring>
#include <string>

#include "core/error_codes.h"
#include "napi/coded_error.h"
#include "napi/instance_data.h"

namespace pgadapter {
namespace napi {

namespace {

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1
// What one message may hold, checked before anything is reserved or copied: kMaxMessageValues
// (value.h; new Array(2 ** 32 - 1) would ask for 500 GB), and PostgreSQL stores at most 1 GB in a field.
constexpr size_t kMaxBytes = size_t{1} << 30;

inline void check(napi_env env, napi_status status) {
  if (status != napi_ok) throw Napi::Error::New(env);  // picks up a pending JS exception if any
}

[[noreturn]] void too_large(napi_env env, const std::string& what) {
  throw CodedError(Napi::Env(env), "Message too large to publish: " + what, codes::ENCODE_FAILED);
}

// napi_get_value_string_utf8 writes a lone surrogate as U+FFFD, where JSON.stringify writes \udXXX
// and @msgpack/msgpack its three WTF-8 bytes. A string showing U+FFFD is read again as UTF-16 and its
// lone surrogates kept as WTF-8 (the same length), which the codecs write as the pure-JS packages do.
void keep_lone_surrogates(napi_env env, napi_value v, std::string& out) {
  size_t n = 0;
  check(env, napi_get_value_string_utf16(env, v, nullptr, 0, &n));
  std::u16string u(n, u'\0');
  check(env, napi_get_value_string_utf16(env, v, u.data(), n + 1, &n));
  std::string w;
  w.reserve(out.size());
  for (size_t i = 0; i < n; ++i) {
    uint32_t c = u[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (u[i + 1] - 0xDC00);
      ++i;
    }
    if (c < 0x80) {
      w.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      w.push_back(static_cast<char>(0xC0 | (c >> 6)));
      w.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {  // lone surrogates too (WTF-8)
      w.push_back(static_cast<char>(0xE0 | (c >> 12)));
      w.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      w.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      w.push_back(static_cast<char>(0xF0 | (c >> 18)));
      w.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      w.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      w.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  out = std::move(w);
}

bool shows_replacement_char(const std::string& s) { return s.find("\xEF\xBF\xBD") != std::string::npos; }

// Up to this many UTF-16 units, a string is written in one pass into room for its longest UTF-8 (3
// bytes a unit), without V8 measuring it first; longer ones are measured, not to take 3 times their room.
constexpr size_t kOnePassUnits = size_t{64} * 1024;

// `budget`: bytes the message may still take; the string's UTF-8 length is taken from it.
void read_string(napi_env env, napi_value v, std::string& out, size_t& budget) {
  // The room a one-pass read writes into, kept from string to string and message to message (at most 3 x
  // kOnePassUnits bytes): `out` takes the string's bytes only. Kept in `out`, 3 bytes a unit would let a
  // message hold 3 times its limit; made per message, it would leave holes between queued payloads.
  static thread_local std::string scratch;
  // One call for short strings: with 4+ bytes to spare, V8 cannot have stopped early.
  char buf[256];
  size_t n = 0;
  check(env, napi_get_value_string_utf8(env, v, buf, sizeof buf, &n));
  if (n + 4 < sizeof buf) {
    out.assign(buf, n);
  } else {
    size_t units = 0;  // the string's length, not its bytes: no pass over it
    check(env, napi_get_value_string_utf16(env, v, nullptr, 0, &units));
    // Each unit takes at least a byte of UTF-8: past the budget, refused before anything is reserved.
    if (units > budget) too_large(env, "more than " + std::to_string(kMaxBytes) + " bytes");
    if (units > kOnePassUnits) {
      check(env, napi_get_value_string_utf8(env, v, nullptr, 0, &n));  // its UTF-8 length: a pass
      if (n > budget) too_large(env, "more than " + std::to_string(kMaxBytes) + " bytes");
      out.resize(n);
      check(env, napi_get_value_string_utf8(env, v, out.data(), n + 1, &n));
      out.resize(n);
    } else {
      if (scratch.size() < units * 3) scratch.resize(units * 3);
      check(env, napi_get_value_string_utf8(env, v, scratch.data(), scratch.size() + 1, &n));
      out.assign(scratch.data(), n);
    }
  }
  if (n > budget) too_large(env, "more than " + std::to_string(kMaxBytes) + " bytes");
  budget -= n;
  if (shows_replacement_char(out)) keep_lone_surrogates(env, v, out);
}

size_t typed_array_element_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    default: return 8;  // float64, bigint64, biguint64
  }
}

class Converter {
 public:
  // `unboxing`: boxed primitives written as their primitive (JSON.stringify's rule), else as their own
  // fields (what Socket.IO writes for the objects of a packet holding binary, and @msgpack/msgpack).
  Converter(napi_env env, ToValueResult& info, bool unboxing) : env_(env), info_(info), unboxing_(unboxing) {
    check(env, napi_create_string_utf8(env, "toJSON", 6, &tojson_key_));
  }

  bool unboxed() const { return unboxed_; }

  // `holder_key` is what JSON.stringify would pass to toJSON: the property name, the array index
  // (as a string, built only when needed) or "" at the top.
  void convert(napi_value v, Value& out, int depth, napi_value holder_key, uint32_t index,
               bool allow_tojson) {
    napi_valuetype type;
    check(env_, napi_typeof(env_, v, &type));
    switch (type) {
      case napi_undefined: out = Value::undefined(); return;
      case napi_null: out = Value::null(); return;
      case napi_boolean: {
        bool b;
        check(env_, napi_get_value_bool(env_, v, &b));
        out = Value::boolean_of(b);
        return;
      }
      case napi_number: {
        double d;
        check(env_, napi_get_value_double(env_, v, &d));
        if (d >= -kMaxSafe && d <= kMaxSafe && d == std::trunc(d) && !(d == 0 && std::signbit(d))) {
          out = Value::int_of(static_cast<int64_t>(d));
        } else {
          out = Value::double_of(d);
        }
        return;
      }
      case napi_string:
        out = Value::string_of(std::string());
        read_string(env_, v, out.str, bytes_left_);
        return;
      case napi_bigint:
        throw Napi::TypeError::New(env_, "Do not know how to serialize a BigInt");
      case napi_object:
        convert_object(v, out, depth, holder_key, index, allow_tojson);
        return;
      default:  // function, symbol, external: dropped like JSON.stringify does
        out = Value::undefined();
        return;
    }
  }

 private:
  void convert_object(napi_value v, Value& out, int depth, napi_value holder_key, uint32_t index,
                      bool allow_tojson) {
    bool is;
    check(env_, napi_is_array(env_, v, &is));
    if (is) {
      check_depth(depth);
      uint32_t len;
      check(env_, napi_get_array_length(env_, v, &len));
      take_values(len);
      out = Value::array();
      out.items.resize(len);
      for (uint32_t i = 0; i < len; ++i) {
        napi_value item;
        check(env_, napi_get_element(env_, v, i, &item));
        convert(item, out.items[i], depth + 1, nullptr, i, true);
      }
      return;
    }
    // Ordered so that a plain object costs few calls: Dates are found through their toJSON, and
    // DataView / ArrayBuffer (no own enumerable keys) only when the key list is empty.
    check(env_, napi_is_typedarray(env_, v, &is));  // Buffer is a Uint8Array
    if (is) {
      napi_typedarray_type t;
      size_t length, offset;
      void* data;
      napi_value ab;
      check(env_, napi_get_typedarray_info(env_, v, &t, &length, &data, &ab, &offset));
      set_binary(out, data, length * typed_array_element_size(t));
      return;
    }
    if (allow_tojson) {
      napi_value fn;
      napi_valuetype fn_type;
      check(env_, napi_get_property(env_, v, tojson_key_, &fn));
      check(env_, napi_typeof(env_, fn, &fn_type));
      if (fn_type == napi_function) {
        if (convert_date(v, out)) return;
        napi_value key = holder_key;
        if (!key) {
          std::string k = index == UINT32_MAX ? std::string() : std::to_string(index);
          check(env_, napi_create_string_utf8(env_, k.data(), k.size(), &key));
        }
        napi_value result;
        check(env_, napi_call_function(env_, v, fn, 1, &key, &result));
        // JSON.stringify does not call toJSON again on what toJSON returned, which takes the
        // object's place (and level).
        convert(result, out, depth, holder_key, index, false);
        return;
      }
    }
    napi_value names;
    check(env_, napi_get_all_property_names(
                    env_, v, napi_key_own_only,
                    static_cast<napi_key_filter>(napi_key_enumerable | napi_key_skip_symbols),
                    napi_key_numbers_to_strings, &names));
    uint32_t len;
    check(env_, napi_get_array_length(env_, names, &len));
    if (len == 0 && (convert_date(v, out) || convert_other_binary(v, out))) return;
    std::string first_key;
    napi_value first = nullptr;
    if (len > 0) {
      check(env_, napi_get_element(env_, names, 0, &first));
      read_string(env_, first, first_key, bytes_left_);
    }
    // A boxed String has the keys "0".."n-1", a boxed Number or Boolean none, unless it has fields of
    // its own (a subclass's, an own valueOf) and then it is not an Object.prototype object: only such
    // objects are asked (one call into JavaScript) whether they are boxed primitives, which
    // JSON.stringify writes as their primitive.
    if ((len == 0 || first_key == "0" || !plain_prototype(v)) && unbox(v, out, depth, holder_key, index)) return;
    check_depth(depth);
    take_values(len);
    out = Value::map();
    out.fields.resize(len);
    if (len > 0) out.fields[0].first = std::move(first_key);  // read above already
    for (uint32_t i = 0; i < len; ++i) {
      napi_value key, item;
      if (i == 0) {
        key = first;
      } else {
        check(env_, napi_get_element(env_, names, i, &key));
        read_string(env_, key, out.fields[i].first, bytes_left_);
      }
      check(env_, napi_get_property(env_, v, key, &item));
      convert(item, out.fields[i].second, depth + 1, key, 0, true);
    }
  }

  // A boxed String, Number or Boolean (BigInt too, which convert() then refuses as JSON.stringify
  // does): converted as the primitive lib/ 's unboxer returns for it. False for any other object
  // (the unboxer returns the object itself), or when no unboxer is registered.
  bool unbox(napi_value v, Value& out, int depth, napi_value holder_key, uint32_t index) {
    if (!unboxing_) return false;
    auto* data = Napi::Env(env_).GetInstanceData<InstanceData>();
    if (data == nullptr || data->unbox.IsEmpty()) return false;
    napi_value result;
    check(env_, napi_call_function(env_, v, data->unbox.Value(), 1, &v, &result));
    bool same;
    check(env_, napi_strict_equals(env_, result, v, &same));
    if (same) return false;
    convert(result, out, depth, holder_key, index, false);
    unboxed_ = true;
    return true;
  }

  // Whether v's prototype is Object.prototype (a literal's). Should reading it fail, yes: the caller
  // then asks nothing (JSON.stringify reads no prototype).
  bool plain_prototype(napi_value v) {
    if (object_prototype_ == nullptr) {
      napi_value literal;
      check(env_, napi_create_object(env_, &literal));
      check(env_, napi_get_prototype(env_, literal, &object_prototype_));
    }
    napi_value proto;
    if (napi_get_prototype(env_, v, &proto) != napi_ok) {
      napi_value ignored;
      check(env_, napi_get_and_clear_last_exception(env_, &ignored));
      return true;
    }
    bool same;
    check(env_, napi_strict_equals(env_, proto, object_prototype_, &same));
    return same;
  }

  // An array or object at `depth` (0 at the top) is at level depth + 1 of kMaxNesting.
  void check_depth(int depth) {
    if (static_cast<size_t>(depth) >= kMaxNesting) {
      throw Napi::TypeError::New(env_, "Message is too deeply nested or circular (more than " +
                                           std::to_string(kMaxNesting) + " levels of arrays and objects)");
    }
  }

  bool convert_date(napi_value v, Value& out) {
    bool is;
    check(env_, napi_is_date(env_, v, &is));
    if (!is) return false;
    double ms;
    check(env_, napi_get_date_value(env_, v, &ms));
    if (std::isnan(ms)) {
      out = Value::timestamp_of(0, 0);
      out.valid_time = false;
    } else {
      double sec = std::floor(ms / 1000);
      out = Value::timestamp_of(static_cast<int64_t>(sec),
                                static_cast<uint32_t>(std::llround((ms - sec * 1000) * 1e6)));
    }
    return true;
  }

  // DataView or ArrayBuffer (typed arrays are handled earlier).
  bool convert_other_binary(napi_value v, Value& out) {
    bool is;
    void* data = nullptr;
    size_t bytes = 0;
    check(env_, napi_is_dataview(env_, v, &is));
    if (is) {
      napi_value ab;
      size_t offset;
      check(env_, napi_get_dataview_info(env_, v, &bytes, &data, &ab, &offset));
    } else {
      check(env_, napi_is_arraybuffer(env_, v, &is));
      if (!is) return false;
      check(env_, napi_get_arraybuffer_info(env_, v, &data, &bytes));
    }
    set_binary(out, data, bytes);
    return true;
  }

  void take_values(size_t n) {
    if (n > values_left_) too_large(env_, "more than " + std::to_string(kMaxMessageValues) + " values");
    values_left_ -= n;
  }

  void set_binary(Value& out, const void* data, size_t bytes) {
    if (bytes > bytes_left_) too_large(env_, "more than " + std::to_string(kMaxBytes) + " bytes");
    bytes_left_ -= bytes;
    out = Value::binary_of(bytes ? std::string(static_cast<const char*>(data), bytes) : std::string());
    info_.has_binary = true;
  }

  napi_env env_;
  ToValueResult& info_;
  napi_value tojson_key_;
  napi_value object_prototype_ = nullptr;  // read at the first use
  bool unboxing_;
  bool unboxed_ = false;
  size_t values_left_ = kMaxMessageValues;
  size_t bytes_left_ = kMaxBytes;
};

// parse_json turns a lone \uD800-\uDFFF escape into WTF-8 (ED A0..BF xx), which
// napi_create_string_utf8 would replace by three U+FFFD. Such strings go through UTF-16 instead.
bool has_lone_surrogate(const std::string& s) {
  const char* p = s.data();
  const char* end = p + s.size();
  while ((p = static_cast<const char*>(std::memchr(p, 0xED, end - p))) != nullptr) {
    if (end - p >= 3 && (static_cast<unsigned char>(p[1]) & 0xE0) == 0xA0) return true;
    ++p;
  }
  return false;
}

napi_value make_wtf8_string(napi_env env, const std::string& s) {
  std::u16string u;
  u.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  auto cont = [&](size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c < 0x80) {
      u.push_back(static_cast<char16_t>(c));
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) {
      u.push_back(static_cast<char16_t>((c & 0x1F) << 6 | (p[i + 1] & 0x3F)));
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2) && (c != 0xE0 || p[i + 1] >= 0xA0)) {
      u.push_back(static_cast<char16_t>((c & 0x0F) << 12 | (p[i + 1] & 0x3F) << 6 | (p[i + 2] & 0x3F)));
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3) &&
               (c != 0xF0 || p[i + 1] >= 0x90) && (c != 0xF4 || p[i + 1] <= 0x8F)) {
      uint32_t cp = (c & 0x07) << 18 | (p[i + 1] & 0x3F) << 12 | (p[i + 2] & 0x3F) << 6 | (p[i + 3] & 0x3F);
      cp -= 0x10000;
      u.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      u.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
      i += 4;
    } else {
      u.push_back(u'\uFFFD');
      i += 1;
    }
  }
  napi_value r;
  check(env, napi_create_string_utf16(env, u.data(), u.size(), &r));
  return r;
}

napi_value make_string(napi_env env, const std::string& s) {
  if (has_lone_surrogate(s)) return make_wtf8_string(env, s);
  napi_value r;
  check(env, napi_create_string_utf8(env, s.data(), s.size(), &r));
  return r;
}

napi_value from_value(napi_env env, const Value& v) {
  napi_value r;
  switch (v.kind) {
    case Value::Kind::Undefined: check(env, napi_get_undefined(env, &r)); break;
    case Value::Kind::Null: check(env, napi_get_null(env, &r)); break;
    case Value::Kind::Bool: check(env, napi_get_boolean(env, v.boolean, &r)); break;
    case Value::Kind::Int: check(env, napi_create_int64(env, v.integer, &r)); break;
    case Value::Kind::Double: check(env, napi_create_double(env, v.number, &r)); break;
    case Value::Kind::String:
      r = make_string(env, v.str);
      break;
    case Value::Kind::Binary:
      check(env, napi_create_buffer_copy(env, v.str.size(), v.str.data(), nullptr, &r));
      break;
    case Value::Kind::Timestamp: {
      double ms = v.valid_time ? static_cast<double>(v.seconds) * 1e3 + v.nanoseconds / 1e6 : NAN;
      check(env, napi_create_date(env, ms, &r));
      break;
    }
    case Value::Kind::Array:
      check(env, napi_create_array_with_length(env, v.items.size(), &r));
      for (size_t i = 0; i < v.items.size(); ++i) {
        check(env, napi_set_element(env, r, static_cast<uint32_t>(i), from_value(env, v.items[i])));
      }
      break;
    case Value::Kind::Map:
      check(env, napi_create_object(env, &r));
      for (const auto& f : v.fields) {
        napi_value item = from_value(env, f.second);
        if (f.first != "__proto__" && f.first.find('\0') == std::string::npos && !has_lone_surrogate(f.first)) {
          // A C-string key is created internalized: V8 then skips hashing and looking it up per set.
          check(env, napi_set_named_property(env, r, f.first.c_str(), item));
          continue;
        }
        napi_value key = make_string(env, f.first);
        if (f.first == "__proto__") {
          // An own data property, as JSON.parse makes; a plain set would change the prototype.
          napi_property_descriptor d{nullptr, key, nullptr, nullptr, nullptr, item,
                                     napi_default_jsproperty, nullptr};
          check(env, napi_define_properties(env, r, 1, &d));
        } else {
          check(env, napi_set_property(env, r, key, item));
        }
      }
      break;
  }
  return r;
}

}  // namespace

Napi::Value SetUnboxer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "setUnboxer expects a function");
  Instance(env).unbox = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Value ToValue(Napi::Env env, napi_value v, ToValueResult& info) {
  Value out;
  Converter converter(env, info, true);
  converter.convert(v, out, 0, nullptr, UINT32_MAX, true);
  if (!info.has_binary || !converter.unboxed()) return out;
  // A message with binary: Socket.IO writes the objects of such a packet field by field, a boxed
  // primitive as its own fields, and so do the pure-JS adapter's msgpack attachments. Converted again
  // (rare: binary and a boxed primitive in one message), so toJSON methods and getters run twice.
  ToValueResult again;
  Converter fields(env, again, false);
  Value out2;
  fields.convert(v, out2, 0, nullptr, UINT32_MAX, true);
  info = again;
  return out2;
}

std::string Utf8Of(napi_env env, napi_value v) {
  std::string out;
  size_t budget = kMaxBytes;
  read_string(env, v, out, budget);
  return out;
}

Napi::Value FromValue(Napi::Env env, const Value& v) {
  return Napi::Value(env, from_value(env, v));
}

}  // namespace napi
}  // namespace pgadapter
