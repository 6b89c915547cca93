// Errors with a code as JavaScript receives them from the addon: instances of PostgresAdapterError
// (lib/errors.js registers the class with setErrorClass), or plain Errors with a code until then.
#pragma once

#include <napi.h>

#include <string>

namespace pgadapter::napi {

// setErrorClass(PostgresAdapterError): the constructor (message, code) used by CodedError.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

// Never throws a JavaScript exception of its own: falls back to a plain Error with a code.
Napi::Error CodedError(Napi::Env env, const std::string& message, const char* code);

}  // namespace pgadapter::napi
