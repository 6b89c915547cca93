// Module entry: registers the N-API face.
#include <napi.h>

#include "core/error_codes.h"
#include "core/value.h"
#include "napi/codec_exports.h"
#include "napi/coded_error.h"
#include "napi/js_value.h"
#include "napi/native_client.h"
#include "napi/table_name_export.h"

namespace {

// errorCodes: { CODE: "meaning", ... }, frozen; lib/errors.js builds the JS side from it.
Napi::Object ErrorCodes(Napi::Env env) {
  Napi::Object codes = Napi::Object::New(env);
#define PGADAPTER_EXPORT_CODE(code, meaning) codes.Set(#code, Napi::String::New(env, meaning));
  PGADAPTER_ERROR_CODES(PGADAPTER_EXPORT_CODE)
#undef PGADAPTER_EXPORT_CODE
  codes.Freeze();
  return codes;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pgadapter::napi::NativeClient::Init(env, exports);
  pgadapter::napi::InitCodecExports(env, exports);
  pgadapter::napi::InitTableNameExport(env, exports);
  exports.Set("errorCodes", ErrorCodes(env));
  // Arrays and objects a message may nest (lib/plain-json.js leaves deeper ones to the encoder, which refuses them).
  exports.Set("maxNesting", Napi::Number::New(env, static_cast<double>(pgadapter::kMaxNesting)));
  // Session restores one client runs at once (lib/client.js queues the others).
  exports.Set("maxRestores", Napi::Number::New(env, static_cast<double>(pgadapter::Client::kMaxRestores)));
  exports.Set("setUnboxer", Napi::Function::New(env, pgadapter::napi::SetUnboxer, "setUnboxer"));
  exports.Set("setErrorClass", Napi::Function::New(env, pgadapter::napi::SetErrorClass, "setErrorClass"));
  return exports;
}

}  // namespace

NODE_API_MODULE(pgadapter, Init)
