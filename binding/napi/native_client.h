// The N-API face of core::Client: JS values in and out, JS callbacks, promises. No logic here.
#pragma once

#include <napi.h>

#include <memory>

#include "core/client.h"
#include "core/error_codes.h"

namespace pgadapter::napi {

class NativeClient : public Napi::ObjectWrap<NativeClient>, public ClientSink {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit NativeClient(const Napi::CallbackInfo& info);
  ~NativeClient() override;

  // ClientSink
  void get_params(std::function<void(bool, ConnParams, std::string)> answer) override;
  void deliver(std::vector<Inbound>& batch) override;
  void report(const std::string& message, const char* code) override;
  void log(const std::string& line) override;
  void listening(const std::string& channel) override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Unlisten(const Napi::CallbackInfo& info);
  Napi::Value Publish(const Napi::CallbackInfo& info);
  Napi::Value PublishJson(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value EnableRecovery(const Napi::CallbackInfo& info);
  Napi::Value PublishLogged(const Napi::CallbackInfo& info);
  Napi::Value PersistSession(const Napi::CallbackInfo& info);
  Napi::Value RestoreSession(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value CountError(const Napi::CallbackInfo& info);
  Napi::Value SetPresenceName(const Napi::CallbackInfo& info);
  Napi::Value Presence(const Napi::CallbackInfo& info);
  // Every method runs through Guarded: an exception other than Napi::Error (std::bad_alloc, ...)
  // would abort the process when it reaches Node; it becomes a JS Error with `Code` instead.
  template <Napi::Value (NativeClient::*Method)(const Napi::CallbackInfo&), const char* Code>
  Napi::Value Guarded(const Napi::CallbackInfo& info);
  // Settles a promise from a libuv callback: the callback scope runs its continuations. If `fn`
  // throws (the result cannot be built), the promise is rejected with `code`; nothing escapes.
  void Settle(const std::shared_ptr<Napi::Promise::Deferred>& deferred, const char* code,
              const std::function<void(Napi::Env)>& fn);
  void Construct(const Napi::CallbackInfo& info);  // the constructor's body
  void AskParams(std::function<void(bool, ConnParams, std::string)> answer);
  void CallJs(const Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args);
  void Released();
  static void OnEnvCleanup(void* arg);

  std::unique_ptr<Client> client_;
  Napi::FunctionReference get_params_;
  Napi::FunctionReference on_messages_;
  Napi::FunctionReference on_error_;
  Napi::FunctionReference on_log_;
  Napi::FunctionReference on_listening_;  // optional
  std::unique_ptr<Napi::AsyncContext> async_context_;
  bool referenced_ = false;
  bool cleanup_hook_ = false;
  bool js_gone_ = false;     // environment teardown or finalizer: no call into JavaScript any more
  int closes_pending_ = 0;   // close() promises not yet resolved
};

}  // namespace pgadapter::napi
