#include "core/message_encoder.h"

#include "core/json_codec.h"
#include "core/msgpack_codec.h"

namespace pgadapter {

namespace {

// {"uid":…,"type":…,"nsp":…,"attachmentId":"  — the pure-JS header plus nsp, which it ignores.
void build_header_prefix(const Value& message, std::string& out) {
  out = "{";
  bool first = true;
  for (const char* key : {"uid", "type", "nsp"}) {
    const Value* v = message.get(key);
    if (v == nullptr || v->kind == Value::Kind::Undefined) continue;
    if (!first) out += ',';
    first = false;
    out += '"';
    out += key;
    out += "\":";
    write_json(*v, out);
  }
  out += first ? "\"attachmentId\":\"" : ",\"attachmentId\":\"";
}

}  // namespace

void encode_message(const Value& message, bool has_binary, size_t threshold, OutMessage& out) {
  out.payload.clear();
  if (!has_binary) {
    write_json(message, out.payload);
    if (out.payload.size() < threshold && out.payload.size() <= kMaxNotifyPayload) {
      out.attachment = false;
      return;
    }
    out.payload.clear();
  }
  out.attachment = true;
  encode_msgpack(message, out.payload);
  build_header_prefix(message, out.header_prefix);
}

}  // namespace pgadapter
