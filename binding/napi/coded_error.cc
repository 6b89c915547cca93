#include "napi/coded_error.h"

#include "napi/instance_data.h"

namespace pgadapter::napi {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "setErrorClass expects a constructor");
  Instance(env).error_ctor = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Error CodedError(Napi::Env env, const std::string& message, const char* code) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (data != nullptr && !data->error_ctor.IsEmpty()) {
    try {
      Napi::Object err = data->error_ctor.New({Napi::String::New(env, message), Napi::String::New(env, code)});
      return Napi::Error(env, err);
    } catch (const Napi::Error&) {
      // the class threw: a plain Error below
    }
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

}  // namespace pgadapter::napi
