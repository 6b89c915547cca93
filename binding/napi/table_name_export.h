// exports.parseTableName: the core's table name reader, for option validation in lib/options.js.
#pragma once

#include <napi.h>

namespace pgadapter::napi {

// Sets exports.parseTableName(name) -> the name's parts (strings); throws a TypeError saying why
// a name is malformed.
void InitTableNameExport(Napi::Env env, Napi::Object exports);

}  // namespace pgadapter::napi
