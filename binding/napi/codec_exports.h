// exports._codec: thin test hooks over the JSON and msgpack codecs (interop tests vs the JS libs).
#pragma once

#include <napi.h>

namespace pgadapter {
namespace napi {

// Sets exports._codec = { toJson, fromJson, toMsgpack, fromMsgpack }.
void InitCodecExports(Napi::Env env, Napi::Object exports);

}  // namespace napi
}  // namespace pgadapter
