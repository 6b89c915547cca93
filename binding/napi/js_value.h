// napi_value <-> Value (the shared tree the JSON and msgpack codecs work on).
#pragma once

#include <napi.h>

#include "core/value.h"

namespace pgadapter {
namespace napi {

struct ToValueResult {
  bool has_binary = false;  // a Buffer / TypedArray / DataView / ArrayBuffer was seen
};

// Converts a JS value the way JSON.stringify sees it (own enumerable string keys, toJSON honoured),
// except that Dates become Timestamp and binary data becomes Binary.
// Throws Napi::TypeError for a BigInt, or for nesting deeper than 1000 (or a cycle), an Error with
// code ENCODE_FAILED past kMaxMessageValues (2^21) values (array elements and object keys) or 1 GiB
// of strings and binaries (checked before anything is reserved), and rethrows whatever a toJSON
// method throws.
Value ToValue(Napi::Env env, napi_value v, ToValueResult& info);

// A JS string's UTF-8, read as ToValue reads every string (in one pass when short enough, kept at its
// own size, lone surrogates as WTF-8); ENCODE_FAILED past 1 GiB.
std::string Utf8Of(napi_env env, napi_value v);

// setUnboxer(fn): fn(object) returns the primitive JSON.stringify writes for a boxed String, Number,
// Boolean or BigInt, else the object itself (lib/plain-json.js registers it).
Napi::Value SetUnboxer(const Napi::CallbackInfo& info);

// The inverse: Binary -> Buffer (copied), Timestamp -> Date, Map -> plain object.
Napi::Value FromValue(Napi::Env env, const Value& v);

}  // namespace napi
}  // namespace pgadapter
