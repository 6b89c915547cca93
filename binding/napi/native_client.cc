#include "napi/native_client.h"

#include "core/msgpack_codec.h"
#include "napi/coded_error.h"
#include "napi/js_value.h"

namespace pgadapter::napi {

namespace {

uint32_t get_uint(const Napi::Object& o, const char* key, uint32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
}

std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

// Room names read as the codecs read strings, lone surrogates kept (WTF-8): Utf8Value() would make
// "a\uD800" and "a\uDBFF" one name (U+FFFD), and a restored socket would join the wrong room.
std::vector<std::string> string_list(const Napi::Value& v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value item = a.Get(i);
    ToValueResult unused;
    if (item.IsString()) out.push_back(ToValue(v.Env(), item, unused).str);
    else out.push_back(item.ToString().Utf8Value());
  }
  return out;
}

Napi::Function get_function(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsFunction()) throw Napi::TypeError::New(o.Env(), std::string("options.") + key + " must be a function");
  return v.As<Napi::Function>();
}

// A PostgresAdapterError (see coded_error.h).
Napi::Error coded_error(Napi::Env env, const std::string& message, const char* code) {
  return CodedError(env, message, code);
}

// The message of whatever was thrown, for a report.
std::string what_of(std::exception_ptr thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

template <Napi::Value (NativeClient::*Method)(const Napi::CallbackInfo&), const char* Code>
Napi::Value NativeClient::Guarded(const Napi::CallbackInfo& info) {
  try {
    return (this->*Method)(info);
  } catch (const Napi::Error&) {
    throw;  // node-addon-api turns it into a JS exception
  } catch (...) {
    throw coded_error(info.Env(), what_of(std::current_exception()), Code);
  }
}

void NativeClient::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeClient",
                                    {
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::Start, codes::NATIVE_FAILED>>("start"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::Listen, codes::LISTEN_FAILED>>("listen"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::Unlisten, codes::LISTEN_FAILED>>("unlisten"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::Publish, codes::ENCODE_FAILED>>("publish"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::PublishJson, codes::ENCODE_FAILED>>("publishJson"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::Close, codes::NATIVE_FAILED>>("close"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::EnableRecovery, codes::RECOVERY_FAILED>>("enableRecovery"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::PublishLogged, codes::ENCODE_FAILED>>("publishLogged"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::PersistSession, codes::ENCODE_FAILED>>("persistSession"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::RestoreSession, codes::RECOVERY_FAILED>>("restoreSession"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::Stats, codes::NATIVE_FAILED>>("stats"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::CountError, codes::NATIVE_FAILED>>("countError"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::SetPresenceName, codes::NATIVE_FAILED>>("setPresenceName"),
                                        InstanceMethod<&NativeClient::Guarded<&NativeClient::Presence, codes::NATIVE_FAILED>>("presence"),
                                    });
  exports.Set("NativeClient", ctor);
}

// new NativeClient({ uid, tableName, payloadThreshold, cleanupInterval, maxQueue, createTable, listen,
//                    reconnect: {initialDelay, maxDelay, connectTimeout, healthCheckInterval, responseTimeout},
//                    getParams(done), onMessages([channel, message, offset, wire, ...]), onError(message, code),
//                    onLog(line) (optional: lifecycle lines, only when given),
//                    onListening(channel) (optional: the first LISTEN on channel took effect) })
NativeClient::NativeClient(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeClient>(info) {
  try {
    Construct(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw coded_error(info.Env(), what_of(std::current_exception()), codes::NATIVE_FAILED);
  }
}

void NativeClient::Construct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "NativeClient options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();

  ClientOptions options;
  options.uid = get_string(o, "uid", "");
  options.table = get_string(o, "tableName", options.table);
  options.payload_threshold = get_uint(o, "payloadThreshold", 8000);
  options.cleanup_interval_ms = get_uint(o, "cleanupInterval", 30000);
  options.max_queue = get_uint(o, "maxQueue", 10000);
  options.create_table = o.Get("createTable").ToBoolean();
  options.listen = !o.Has("listen") || o.Get("listen").ToBoolean();
  options.reconnect.weak = o.Get("weak").ToBoolean();
  options.log_table = get_string(o, "logTableName", options.log_table);
  options.session_table = get_string(o, "sessionTableName", options.session_table);
  options.statement_timeout_ms = get_uint(o, "statementTimeout", options.statement_timeout_ms);
  options.presence_name = get_string(o, "presenceName", "");
  if (o.Get("reconnect").IsObject()) {
    Napi::Object r = o.Get("reconnect").As<Napi::Object>();
    options.reconnect.initial_delay_ms = get_uint(r, "initialDelay", options.reconnect.initial_delay_ms);
    options.reconnect.max_delay_ms = get_uint(r, "maxDelay", options.reconnect.max_delay_ms);
    options.reconnect.connect_timeout_ms = get_uint(r, "connectTimeout", options.reconnect.connect_timeout_ms);
    options.reconnect.health_check_ms = get_uint(r, "healthCheckInterval", options.reconnect.health_check_ms);
    options.reconnect.response_timeout_ms = get_uint(r, "responseTimeout", options.reconnect.response_timeout_ms);
  }
  get_params_ = Napi::Persistent(get_function(o, "getParams"));
  on_messages_ = Napi::Persistent(get_function(o, "onMessages"));
  on_error_ = Napi::Persistent(get_function(o, "onError"));
  if (o.Get("onLog").IsFunction()) {
    on_log_ = Napi::Persistent(o.Get("onLog").As<Napi::Function>());
    options.log = true;
  }
  if (o.Get("onListening").IsFunction()) on_listening_ = Napi::Persistent(o.Get("onListening").As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "PostgresAdapterClient", Value());

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "cannot get the event loop");
  }
  client_ = std::make_unique<Client>(loop, std::move(options), *this);
  // A worker thread may end without close(): release the sockets with its environment.
  cleanup_hook_ = napi_add_env_cleanup_hook(env, &NativeClient::OnEnvCleanup, this) == napi_ok;
}

NativeClient::~NativeClient() {
  if (cleanup_hook_) napi_remove_env_cleanup_hook(Env(), &NativeClient::OnEnvCleanup, this);
  js_gone_ = true;  // a finalizer may not call JavaScript: what close_now settles is dropped
  client_.reset();
}

void NativeClient::OnEnvCleanup(void* arg) {
  auto* self = static_cast<NativeClient*>(arg);
  self->cleanup_hook_ = false;
  self->js_gone_ = true;
  if (self->client_) self->client_->close_now();
}

Napi::Value NativeClient::Start(const Napi::CallbackInfo& info) {
  if (!referenced_ && !client_->closed()) {
    Ref();  // keep this object alive while it owns open connections
    referenced_ = true;
    client_->start();
  }
  return info.Env().Undefined();
}

Napi::Value NativeClient::Listen(const Napi::CallbackInfo& info) {
  client_->listen(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

Napi::Value NativeClient::Unlisten(const Napi::CallbackInfo& info) {
  client_->unlisten(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

// publish(channel, message): undefined when queued, else the reason it was dropped (a string).
// Throws a TypeError for a message that cannot be serialized (BigInt, circular).
Napi::Value NativeClient::Publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string channel = info[0].As<Napi::String>().Utf8Value();
  ToValueResult conversion;
  const pgadapter::Value message = ToValue(env, info[1], conversion);
  const std::string error = client_->publish(channel, message, conversion.has_binary);
  if (error.empty()) return env.Undefined();
  return Napi::String::New(env, error);
}

// publishJson(channel, json): a message already written as JSON, without binary (lib/plain-json.js).
// undefined: queued; a string: why it was dropped; false: too large for a notification (nothing
// queued: publish the message itself).
Napi::Value NativeClient::PublishJson(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string channel = info[0].As<Napi::String>().Utf8Value();
  // Read as every string of a message is (one pass, kept at its own size: it may wait in the queue).
  std::string json = Utf8Of(env, info[1]);
  bool fits = true;
  const std::string error = client_->publish_json(channel, std::move(json), fits);
  if (!fits) return Napi::Boolean::New(env, false);
  if (error.empty()) return env.Undefined();
  return Napi::String::New(env, error);
}

// close(flushTimeoutMs): a promise resolved once every connection is closed.
Napi::Value NativeClient::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t timeout = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 2000;
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  ++closes_pending_;  // every close() call gets its promise settled (Emitter.of() siblings share a client)
  client_->close(timeout, [this, deferred] {
    // May run from a libuv callback (Settle opens the callback scope and lets nothing escape).
    if (js_gone_) return;
    Settle(deferred, codes::NATIVE_FAILED, [&](Napi::Env e) { deferred->Resolve(e.Undefined()); });
    if (--closes_pending_ > 0) return;
    try {
      Released();
    } catch (...) {
      // A reference that cannot be released is left to the GC; the loop must go on.
    }
  });
  return deferred->Promise();
}

void NativeClient::Settle(const std::shared_ptr<Napi::Promise::Deferred>& deferred, const char* code,
                          const std::function<void(Napi::Env)>& fn) {
  if (js_gone_) return;  // environment teardown or finalizer: no JavaScript any more
  try {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    auto run = [&] {
      try {
        fn(env);
      } catch (...) {
        deferred->Reject(coded_error(env, what_of(std::current_exception()), code).Value());
      }
    };
    if (async_context_) {
      Napi::CallbackScope callback_scope(env, *async_context_);
      run();
    } else {
      run();
    }
  } catch (...) {
    // Not even an Error can be made (out of memory): nothing may unwind into libuv.
  }
}

// enableRecovery(maxDisconnectionDurationMs)
Napi::Value NativeClient::EnableRecovery(const Napi::CallbackInfo& info) {
  client_->enable_recovery(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// publishLogged(channel, message) -> Promise<offset string | undefined (sent unlogged)>
// The log record (namespace, rooms, except, the packet) is taken from the message itself.
Napi::Value NativeClient::PublishLogged(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string channel = info[0].As<Napi::String>().Utf8Value();
  ToValueResult conversion;
  const pgadapter::Value message = ToValue(env, info[1], conversion);
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  auto done = [this, deferred](const std::string& offset, const std::string& error) {
    Settle(deferred, codes::PUBLISH_FAILED, [&](Napi::Env e) {
      if (!error.empty()) {
        deferred->Reject(coded_error(e, "failed to publish: " + error, codes::PUBLISH_FAILED).Value());
      } else if (offset.empty()) {
        deferred->Resolve(e.Undefined());
      } else {
        deferred->Resolve(Napi::String::New(e, offset));
      }
    });
  };
  const std::string dropped = client_->publish_logged(channel, message, conversion.has_binary, std::move(done));
  if (!dropped.empty()) {
    deferred->Reject(coded_error(env, dropped, codes::PUBLISH_DROPPED).Value());
  }
  return deferred->Promise();
}

// persistSession(pid, sid, nsp, rooms, data) -> Promise<void>
Napi::Value NativeClient::PersistSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ToValueResult data_info;
  pgadapter::Value data = ToValue(env, info[4], data_info);  // throws a TypeError for circular data, a BigInt
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  client_->persist_session(info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value(),
                           info[2].ToString().Utf8Value(), string_list(info[3]), std::move(data),
                           [this, deferred](const std::string& error) {
                             Settle(deferred, codes::RECOVERY_FAILED, [&](Napi::Env e) {
                               if (error.empty()) deferred->Resolve(e.Undefined());
                               else deferred->Reject(coded_error(e, "cannot persist the session: " + error, codes::RECOVERY_FAILED).Value());
                             });
                           });
  return deferred->Promise();
}

Napi::Value NativeClient::SetPresenceName(const Napi::CallbackInfo& info) {
  client_->set_presence_name(info[0].ToString().Utf8Value());
  return info.Env().Undefined();
}

// presence(pattern): a promise of [name, secondsSinceStateChange (string, or null when hidden), ...];
// rejected when not connected or the query failed.
Napi::Value NativeClient::Presence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  client_->presence(info[0].ToString().Utf8Value(),
                    [this, deferred](bool ok, std::vector<std::pair<std::string, std::string>> rows, const std::string& error) {
                      Settle(deferred, codes::NATIVE_FAILED, [&](Napi::Env e) {
                        if (!ok) return deferred->Reject(coded_error(e, "cannot read the peers' presence: " + error, codes::NATIVE_FAILED).Value());
                        Napi::Array out = Napi::Array::New(e, rows.size() * 2);
                        uint32_t k = 0;
                        for (const auto& [name, age] : rows) {
                          out.Set(k++, Napi::String::New(e, name));
                          out.Set(k++, age.empty() ? e.Null() : Napi::String::New(e, age));
                        }
                        deferred->Resolve(out);
                      });
                    });
  return deferred->Promise();
}

// restoreSession(pid, nsp, offset, maxPackets) -> Promise<null | { snapshotMax, baseline, sid, rooms, data, packets }>
Napi::Value NativeClient::RestoreSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  client_->restore_session(
      info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value(), info[2].ToString().Utf8Value(),
      info[3].As<Napi::Number>().Uint32Value(),
      [this, deferred](bool found, RestoredSession session, const std::string& error) {
        Settle(deferred, codes::RECOVERY_FAILED, [&](Napi::Env e) {
          if (!error.empty()) {
            return deferred->Reject(coded_error(e, "cannot restore the session: " + error, codes::RECOVERY_FAILED).Value());
          }
          if (!found) return deferred->Resolve(e.Null());
          Napi::Object out = Napi::Object::New(e);
          out.Set("snapshotMax", Napi::Number::New(e, static_cast<double>(session.snapshot_max)));
          out.Set("baseline", Napi::Number::New(e, static_cast<double>(session.baseline)));
          out.Set("sid", Napi::String::New(e, session.sid));
          out.Set("rooms", FromValue(e, session.rooms));
          out.Set("data", FromValue(e, session.data));
          // [offset, data, offset, data, ...]
          Napi::Array packets = Napi::Array::New(e, session.packets.size() * 2);
          uint32_t k = 0;
          for (const auto& [id, data] : session.packets) {
            packets.Set(k++, Napi::Number::New(e, static_cast<double>(id)));
            packets.Set(k++, FromValue(e, data));
          }
          out.Set("packets", packets);
          deferred->Resolve(out);
        });
      });
  return deferred->Promise();
}

void NativeClient::Released() {
  // Closed: no callback can come any more. Destroying the async context now (not at GC) tells
  // async_hooks, and Jest's open-handle check, that this resource is gone.
  async_context_.reset();
  // The callbacks reach back to the JS objects that hold this client: drop them, or a closed
  // adapter (and whatever its errorHandler captures) could never be collected.
  get_params_.Reset();
  on_messages_.Reset();
  on_error_.Reset();
  on_log_.Reset();
  on_listening_.Reset();
  if (referenced_) {
    referenced_ = false;
    Unref();
  }
}

void NativeClient::CallJs(const Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) {
  if (js_gone_ || !async_context_ || fn.IsEmpty()) return;  // closed
  Napi::Env env = Env();
  try {
    fn.MakeCallback(Value(), args, *async_context_);
  } catch (const Napi::Error& e) {
    // The JS side guards its own callbacks; anything that still escapes must not reach the loop.
    try {
      Napi::Value err = e.Value();
      if (!on_error_.IsEmpty() && (!client_ || client_->admit_report(codes::CALLBACK_FAILED))) {
        on_error_.MakeCallback(Value(), {err, Napi::String::New(env, codes::CALLBACK_FAILED)}, *async_context_);
      }
    } catch (...) {
    }
  } catch (...) {
    try {
      if (!on_error_.IsEmpty() && (!client_ || client_->admit_report(codes::CALLBACK_FAILED))) {
        on_error_.MakeCallback(Value(), {Napi::String::New(env, what_of(std::current_exception())),
                                         Napi::String::New(env, codes::CALLBACK_FAILED)}, *async_context_);
      }
    } catch (...) {
    }
  }
}

void NativeClient::get_params(std::function<void(bool, ConnParams, std::string)> answer) {
  try {
    AskParams(std::move(answer));
  } catch (...) {
    client_->report("cannot ask for the connection parameters: " + what_of(std::current_exception()), codes::CALLBACK_FAILED);
  }
}

void NativeClient::AskParams(std::function<void(bool, ConnParams, std::string)> answer) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  auto once = std::make_shared<std::function<void(bool, ConnParams, std::string)>>(std::move(answer));
  // done(error, keys, values)
  Napi::Function done = Napi::Function::New(env, [once](const Napi::CallbackInfo& info) {
    if (!*once) return;
    auto answer_now = std::move(*once);
    *once = nullptr;
    bool ok = false;
    ConnParams params;
    std::string msg;
    try {
      if (!info[0].IsNull() && !info[0].IsUndefined()) {
        msg = info[0].IsObject() ? info[0].As<Napi::Object>().Get("message").ToString().Utf8Value()
                                 : info[0].ToString().Utf8Value();
      } else {
        Napi::Array keys = info[1].As<Napi::Array>();
        Napi::Array values = info[2].As<Napi::Array>();
        for (uint32_t i = 0; i < keys.Length() && i < values.Length(); ++i) {
          params.keys.push_back(keys.Get(i).ToString().Utf8Value());
          params.values.push_back(values.Get(i).ToString().Utf8Value());
        }
        ok = true;
      }
    } catch (...) {
      ok = false;
      msg = "unusable connection parameters: " + what_of(std::current_exception());
    }
    try {
      answer_now(ok, ok ? std::move(params) : ConnParams{}, msg);
    } catch (...) {
      throw coded_error(info.Env(), what_of(std::current_exception()), codes::NATIVE_FAILED);
    }
  });
  CallJs(get_params_, {done});
}

// From this size on, a relayed data's bytes are copied here for its websocket frame: cheaper than
// JavaScript measuring and encoding the string again; smaller ones come from Buffer's pool.
constexpr size_t kWireBytesMin = 512;

namespace {
// ASCII is its own Latin-1: V8 copies it into a one-byte string without decoding UTF-8.
Napi::Value wire_string(Napi::Env env, const Inbound& in) {
  if (in.wire_text != WireText::Ascii) return Napi::String::New(env, in.wire);
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, in.wire.data(), in.wire.size(), &out), Napi::Value());
  return {env, out};
}
}  // namespace

void NativeClient::deliver(std::vector<Inbound>& batch) {
  try {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array flat = Napi::Array::New(env, batch.size() * 4);
    uint32_t i = 0;
    const std::string* last_channel = nullptr;  // a batch mostly comes on one channel: one string for it
    Napi::Value channel;
    for (const Inbound& in : batch) {
      Napi::Value message, wire;
      try {
        // Inline JSON goes as a string: JSON.parse builds the objects faster than N-API calls.
        message = in.json.empty() ? FromValue(env, in.message) : Napi::String::New(env, in.json);
        // A plain broadcast's data, as Socket.IO writes it to clients (broadcast_relay.h), or
        // [data, its UTF-8 bytes or undefined, ...binaries] (lib/relay.js).
        wire = in.wire.empty() ? env.Undefined() : wire_string(env, in);
        const bool bytes = in.wire_text != WireText::Other && in.binaries.empty() && in.wire.size() >= kWireBytesMin;
        if (bytes || !in.binaries.empty()) {
          Napi::Array parts = Napi::Array::New(env, in.binaries.size() + 2);
          parts.Set(uint32_t{0}, wire);
          parts.Set(uint32_t{1}, bytes ? Napi::Value(Napi::Buffer<char>::Copy(env, in.wire.data(), in.wire.size()))
                                       : env.Undefined());
          for (size_t b = 0; b < in.binaries.size(); ++b) {
            parts.Set(static_cast<uint32_t>(b + 2), Napi::Buffer<char>::Copy(env, in.binaries[b].data(), in.binaries[b].size()));
          }
          wire = parts;
        }
      } catch (...) {
        // The core checked the lengths; whatever V8 still refuses (memory) skips this message only.
        client_->report("cannot hand a message on " + in.channel + " to JavaScript: " + what_of(std::current_exception()),
               in.json.empty() ? codes::BAD_ATTACHMENT : codes::BAD_NOTIFICATION);
        continue;
      }
      if (last_channel == nullptr || *last_channel != in.channel) {
        channel = Napi::String::New(env, in.channel);
        last_channel = &in.channel;
      }
      flat.Set(i++, channel);
      flat.Set(i++, message);
      // The checked offset (connection state recovery); whatever the payload says is ignored.
      flat.Set(i++, in.offset > 0 ? Napi::Value(Napi::String::New(env, std::to_string(in.offset))) : env.Undefined());
      flat.Set(i++, wire);
    }
    if (i < batch.size() * 4) flat.Set("length", Napi::Number::New(env, i));
    CallJs(on_messages_, {flat});
  } catch (...) {
    client_->report("cannot hand " + std::to_string(batch.size()) + " messages to JavaScript: " +
               what_of(std::current_exception()),
           codes::CALLBACK_FAILED);
  }
}

void NativeClient::report(const std::string& message, const char* code) {
  try {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    CallJs(on_error_, {Napi::String::New(env, message), Napi::String::New(env, code)});
  } catch (...) {
    // Nothing left to report with; the loop must go on.
  }
}

void NativeClient::listening(const std::string& channel) {
  if (on_listening_.IsEmpty()) return;
  try {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    CallJs(on_listening_, {Napi::String::New(env, channel)});
  } catch (...) {
    // Runs inside a libuv callback: nothing may escape. The adapter's readiness bound covers it.
  }
}

}  // namespace pgadapter::napi

namespace pgadapter::napi {

void NativeClient::log(const std::string& line) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  CallJs(on_log_, {Napi::String::New(env, line)});
}

namespace {
const char* state_name(ConnectionStats::State state) {
  switch (state) {
    case ConnectionStats::State::Connected:
      return "connected";
    case ConnectionStats::State::Connecting:
      return "connecting";
    case ConnectionStats::State::Down:
      break;
  }
  return "down";
}

Napi::Number number(Napi::Env env, uint64_t n) { return Napi::Number::New(env, static_cast<double>(n)); }
}  // namespace

// stats(): this client's figures as a plain object (see lib/index.d.ts, PostgresAdapterStats).
Napi::Value NativeClient::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pgadapter::Stats& s = client_->stats();
  auto connection = [&](bool listening) -> Napi::Value {
    if (listening && !client_->listens()) return env.Null();
    Napi::Object c = Napi::Object::New(env);
    c.Set("state", Napi::String::New(env, state_name(client_->connection_state(listening))));
    c.Set("reconnects", number(env, (listening ? s.listen : s.publish).reconnects));
    return c;
  };
  Napi::Object connections = Napi::Object::New(env);
  connections.Set("publish", connection(false));
  connections.Set("listen", connection(true));

  Napi::Object queue = Napi::Object::New(env);
  const size_t in_flight = client_->in_flight();
  queue.Set("depth", number(env, client_->queued() - in_flight));
  queue.Set("inFlight", number(env, in_flight));

  Napi::Object published = Napi::Object::New(env);
  published.Set("messages", number(env, s.published_messages));
  published.Set("attachments", number(env, s.published_attachments));
  published.Set("bytes", number(env, s.published_bytes));

  Napi::Object received = Napi::Object::New(env);
  received.Set("messages", number(env, s.received_messages));
  received.Set("attachments", number(env, s.received_attachments));

  Napi::Object dropped = Napi::Object::New(env);
  dropped.Set("queueFull", number(env, s.dropped_queue_full));
  dropped.Set("closed", number(env, s.dropped_closed));
  dropped.Set("publishFailed", number(env, s.dropped_failed));
  dropped.Set("inboundOverflow", number(env, s.dropped_inbound));

  Napi::Object errors = Napi::Object::New(env);
  for (const auto& [code, count] : s.errors()) errors.Set(code, number(env, count));

  Napi::Object latency = Napi::Object::New(env);
  double p50 = 0, p99 = 0;
  const bool any = s.latency(uv_hrtime(), p50, p99);
  latency.Set("p50", any ? Napi::Number::New(env, p50) : env.Null());
  latency.Set("p99", any ? Napi::Number::New(env, p99) : env.Null());

  Napi::Object out = Napi::Object::New(env);
  out.Set("connections", connections);
  out.Set("queue", queue);
  out.Set("published", published);
  out.Set("received", received);
  out.Set("dropped", dropped);
  out.Set("errors", errors);
  out.Set("latency", latency);
  return out;
}

// countError(code): a report made in JavaScript, counted in stats(); false when its code is over the
// rate limit (then it is not handed to the errorHandler: a summary follows). The core's own reports
// reach onError already counted and admitted.
Napi::Value NativeClient::CountError(const Napi::CallbackInfo& info) {
  const bool admit = !info[0].IsString() || client_->admit_report(info[0].As<Napi::String>().Utf8Value());
  return Napi::Boolean::New(info.Env(), admit);
}

}  // namespace pgadapter::napi
