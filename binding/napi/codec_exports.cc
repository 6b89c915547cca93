#include "napi/codec_exports.h"

#include <string>

#include "core/json_codec.h"
#include "core/msgpack_codec.h"
#include "napi/js_value.h"

namespace pgadapter {
namespace napi {

namespace {

Napi::Value ToJson(const Napi::CallbackInfo& info) {
  ToValueResult r;
  Value v = ToValue(info.Env(), info[0], r);
  std::string out;
  write_json(v, out);
  return Napi::String::New(info.Env(), out);
}

Napi::Value FromJson(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "fromJson expects a string");
  std::string text = info[0].As<Napi::String>().Utf8Value();
  Value v;
  std::string error;
  if (!parse_json(text, v, error)) throw Napi::Error::New(info.Env(), error);
  return FromValue(info.Env(), v);
}

Napi::Value ToMsgpack(const Napi::CallbackInfo& info) {
  ToValueResult r;
  Value v = ToValue(info.Env(), info[0], r);
  std::string out;
  encode_msgpack(v, out);
  return Napi::Buffer<char>::Copy(info.Env(), out.data(), out.size());
}

Napi::Value FromMsgpack(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "fromMsgpack expects a Buffer");
  auto bytes = info[0].As<Napi::TypedArray>();
  if (bytes.TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), "fromMsgpack expects a Buffer or Uint8Array");
  }
  auto u8 = bytes.As<Napi::Uint8Array>();
  Value v;
  std::string error;
  if (!decode_msgpack(std::string_view(reinterpret_cast<const char*>(u8.Data()), u8.ByteLength()), v, error)) {
    throw Napi::Error::New(info.Env(), error);
  }
  return FromValue(info.Env(), v);
}

// Anything but a Napi::Error (std::bad_alloc, ...) would abort the process when it reaches Node.
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return Fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), "codec failed");
  }
}

}  // namespace

void InitCodecExports(Napi::Env env, Napi::Object exports) {
  Napi::Object codec = Napi::Object::New(env);
  codec.Set("toJson", Napi::Function::New(env, Guarded<ToJson>, "toJson"));
  codec.Set("fromJson", Napi::Function::New(env, Guarded<FromJson>, "fromJson"));
  codec.Set("toMsgpack", Napi::Function::New(env, Guarded<ToMsgpack>, "toMsgpack"));
  codec.Set("fromMsgpack", Napi::Function::New(env, Guarded<FromMsgpack>, "fromMsgpack"));
  exports.Set("_codec", codec);
}

}  // namespace napi
}  // namespace pgadapter
