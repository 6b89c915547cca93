#include "core/message_encoder.h"

#include <string>

#include "core/json_codec.h"
#include "core/msgpack_codec.h"
#include "core/notification_format.h"
#include "core/room_text.h"

namespace pgadapter {

namespace {

// {"uid":…,"type":…,"nsp":…,"attachmentId":"  — the pure-JS header plus nsp, which it ignores.
void build_header_prefix(const Value& message, std::string& out) {
  out = "{";
  bool first = true;
  for (const char* key : notification::kHeaderFields) {
    const Value* v = message.get(key);
    if (v == nullptr || v->kind == Value::Kind::Undefined) continue;
    if (!first) out += ',';
    first = false;
    out += '"';
    out += key;
    out += "\":";
    write_json(*v, out);
  }
  if (!first) out += ',';
  out += notification::kAttachmentIdOpen;
}

}  // namespace

namespace {
// ,"offset":"<up to 19 digits>"} at the end of a logged inline notification.
constexpr size_t kOffsetRoom = 40;
}  // namespace

bool fits_notification(size_t json_bytes, size_t threshold, bool logged) {
  return json_bytes < threshold && json_bytes + (logged ? kOffsetRoom : 0) <= kMaxNotifyPayload;
}

void encode_message(const Value& message, bool has_binary, size_t threshold, OutMessage& out, bool logged) {
  out.payload.clear();
  out.offset_suffix = 0;
  if (!has_binary) {
    write_json(message, out.payload);
    if (fits_notification(out.payload.size(), threshold, logged)) {
      out.attachment = false;
      if (logged && out.payload.size() >= 2 && out.payload.back() == '}') {
        out.payload.pop_back();
        const size_t start = out.payload.size();
        if (out.payload.size() > 1) out.payload += ',';
        out.payload += notification::kOffsetOpen;
        out.offset_suffix = static_cast<uint8_t>(out.payload.size() - start);
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

namespace pgadapter {

void make_plain(OutMessage& m, std::unique_ptr<LogRecord>* log_out) {
  if (!m.log) return;
  if (!m.attachment && m.offset_suffix > 0 && m.payload.size() >= m.offset_suffix) {
    m.payload.resize(m.payload.size() - m.offset_suffix);
    m.payload += '}';
  }
  m.offset_suffix = 0;
  if (log_out) *log_out = std::move(m.log);
  m.log.reset();
}

namespace {
bool string_list(const Value* v, std::vector<std::string>& out) {
  if (v == nullptr || v->kind == Value::Kind::Undefined) return true;
  if (v->kind != Value::Kind::Array) return false;
  for (const Value& item : v->items) {
    if (item.kind != Value::Kind::String) return false;
    out.push_back(stored_room(item.str));  // as the recovery tables hold it
  }
  return true;
}
}  // namespace

bool log_record_of(const Value& message, LogRecord& out) {
  const Value* nsp = message.get(notification::kNsp);
  const Value* data = message.get("data");
  const Value* packet = data ? data->get("packet") : nullptr;
  const Value* opts = data ? data->get("opts") : nullptr;
  const Value* items = packet ? packet->get("data") : nullptr;
  if (nsp == nullptr || nsp->kind != Value::Kind::String || items == nullptr || items->kind != Value::Kind::Array ||
      opts == nullptr || !string_list(opts->get("rooms"), out.rooms) || !string_list(opts->get("except"), out.except)) {
    return false;
  }
  out.nsp = nsp->str;
  encode_msgpack(*items, out.packet);
  return true;
}

}  // namespace pgadapter
