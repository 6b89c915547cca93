#include "napi/table_name_export.h"

#include <string>
#include <vector>

#include "core/table_name.h"

namespace pgadapter::napi {

namespace {

Napi::Value ParseTableName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "a table name must be a string");
  std::vector<std::string> parts;
  std::string error;
  if (!parse_table_name(info[0].As<Napi::String>().Utf8Value(), parts, error)) throw Napi::TypeError::New(env, error);
  Napi::Array out = Napi::Array::New(env, parts.size());
  for (uint32_t i = 0; i < parts.size(); ++i) out.Set(i, Napi::String::New(env, parts[i]));
  return out;
}

}  // namespace

void InitTableNameExport(Napi::Env env, Napi::Object exports) {
  exports.Set("parseTableName", Napi::Function::New(env, ParseTableName, "parseTableName"));
}

}  // namespace pgadapter::napi
