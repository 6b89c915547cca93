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

namespace {
// ,"offset":"<up to 19 digits>"} at the end of a logged inline notification.
constexpr size_t kOffsetRoom = 40;
}  // namespace

void encode_message(const Value& message, bool has_binary, size_t threshold, OutMessage& out, bool logged) {
  out.payload.clear();
  if (!has_binary) {
    write_json(message, out.payload);
    const size_t room = logged ? kOffsetRoom : 0;
    if (out.payload.size() < threshold && out.payload.size() + room <= kMaxNotifyPayload) {
      out.attachment = false;
      if (logged && out.payload.size() >= 2 && out.payload.back() == '}') {
        out.payload.pop_back();
        out.payload += out.payload.size() > 1 ? ",\"offset\":\"" : "\"offset\":\"";
      }
      return;
    }
    out.payload.clear();
  }
  out.attachment = true;
  encode_msgpack(message, out.payload);
  build_header_prefix(message, out.header_prefix);
}

}  // namespace pgadapter
