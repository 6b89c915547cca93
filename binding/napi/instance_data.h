// The addon's instance data (one per Node environment, freed with it): JavaScript functions lib/
// registers at load time.
#pragma once

#include <napi.h>

namespace pgadapter::napi {

struct InstanceData {
  Napi::FunctionReference error_ctor;  // setErrorClass (coded_error.cc)
  Napi::FunctionReference unbox;       // setUnboxer (js_value.cc)
};

inline InstanceData& Instance(Napi::Env env) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (data == nullptr) {
    data = new InstanceData();
    env.SetInstanceData(data);
  }
  return *data;
}

}  // namespace pgadapter::napi
