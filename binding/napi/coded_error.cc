#include "napi/coded_error.h"

namespace pgadapter::napi {

namespace {

// The addon's instance data (one per Node environment, freed with it).
struct ErrorClass {
  Napi::FunctionReference ctor;
};

}  // namespace

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "setErrorClass expects a constructor");
  auto* data = env.GetInstanceData<ErrorClass>();
  if (data == nullptr) {
    data = new ErrorClass();
    env.SetInstanceData(data);
  }
  data->ctor = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Error CodedError(Napi::Env env, const std::string& message, const char* code) {
  auto* data = env.GetInstanceData<ErrorClass>();
  if (data != nullptr && !data->ctor.IsEmpty()) {
    try {
      Napi::Object err = data->ctor.New({Napi::String::New(env, message), Napi::String::New(env, code)});
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
