// Module entry: registers the N-API face.
#include <napi.h>

#include "napi/codec_exports.h"
#include "napi/native_client.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pgadapter::napi::NativeClient::Init(env, exports);
  pgadapter::napi::InitCodecExports(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(pgadapter, Init)
