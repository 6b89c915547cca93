#include "core/broadcast_relay.h"

#include <cmath>
#include <cstring>

#include "core/utf8.h"

namespace pgadapter {

const std::vector<std::string_view> kPacketDataPath = {"data", "packet", "data"};

namespace {

constexpr int64_t kBroadcast = 3;  // ClusterMessage type
constexpr int64_t kEvent = 2;      // socket.io-parser packet type

Value* field(Value& map, std::string_view key) {
  for (auto& f : map.fields) {
    if (f.first == key) return &f.second;
  }
  return nullptr;
}

bool is_int(const Value* v, int64_t n) { return v != nullptr && v->kind == Value::Kind::Int && v->integer == n; }

// What a packet's data holds that JSON alone cannot carry (see json_exact).
struct DataScan {
  size_t binaries = 0;
  bool placeholder_keys = false;  // "_placeholder" or "__proto__" somewhere
};

// JSON.parse(JSON.stringify(x)) gives x back, for x = FromValue(v) (see relay_decoded); with `scan`,
// binaries are allowed and counted (they travel beside the JSON).
bool json_exact(const Value& v, DataScan* scan = nullptr) {
  switch (v.kind) {
    case Value::Kind::Null:
    case Value::Kind::Bool:
    case Value::Kind::Int:
      return true;
    case Value::Kind::Double:
      return std::isfinite(v.number) && !(v.number == 0 && std::signbit(v.number));
    case Value::Kind::String:
      return valid_wtf8(v.str);
    case Value::Kind::Array:
      for (const Value& item : v.items) {
        if (!json_exact(item, scan)) return false;
      }
      return true;
    case Value::Kind::Map:
      for (const auto& [key, item] : v.fields) {
        if (!valid_wtf8(key) || !json_exact(item, scan)) return false;
        if (scan != nullptr && (key == "_placeholder" || key == "__proto__")) scan->placeholder_keys = true;
      }
      return true;
    case Value::Kind::Binary:
      if (scan == nullptr) return false;
      ++scan->binaries;
      return true;
    case Value::Kind::Undefined:
    case Value::Kind::Timestamp:
      break;
  }
  return false;
}

// Writes `v` as write_json does, but each binary as Socket.IO's placeholder, numbered in the order
// written, its bytes moved to `binaries`. That is Socket.IO's order too, except in an object whose
// integer-like keys come after others (JavaScript walks those first): the numbers then differ, and a
// client, which matches placeholders to binaries by number, reads the same data. No placeholder
// objects are built: many small binaries cost their JSON and their bytes only.
void write_with_placeholders(Value& v, std::string& out, std::vector<std::string>& binaries) {
  switch (v.kind) {
    case Value::Kind::Binary:
      out.append(R"({"_placeholder":true,"num":)");
      out.append(std::to_string(binaries.size()));
      out.push_back('}');
      binaries.push_back(std::move(v.str));
      return;
    case Value::Kind::Array:
      out.push_back('[');
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) out.push_back(',');
        write_with_placeholders(v.items[i], out, binaries);
      }
      out.push_back(']');
      return;
    case Value::Kind::Map: {
      out.push_back('{');
      bool first = true;
      for (auto& [key, item] : v.fields) {
        if (item.kind == Value::Kind::Undefined) continue;  // as write_json (json_exact lets none through)
        if (!first) out.push_back(',');
        first = false;
        append_json_string(key, out);
        out.push_back(':');
        write_with_placeholders(item, out, binaries);
      }
      out.push_back('}');
      return;
    }
    default:
      write_json(v, out);
  }
}

}  // namespace

bool is_plain_broadcast(const Value& message) {
  const Value* data = message.get("data");
  const Value* packet = data != nullptr ? data->get("packet") : nullptr;
  return is_int(message.get("type"), kBroadcast) && packet != nullptr && data->get("requestId") == nullptr &&
         is_int(packet->get("type"), kEvent) && packet->get("id") == nullptr;
}

// Why the span itself can go to the clients: they read the packet with JSON.parse, and for a text T
// our strict parser accepted, JSON.parse(JSON.stringify(JSON.parse(T))) is JSON.parse(T) (what they
// would read through the pure-JS adapter, which parses and stringifies) but for numbers read as -0 or
// +-Infinity (left out: stringify_stable). Whitespace, escapes, spellings of a number (1.0, 1E2) and
// a repeated key (the later value wins, in the first one's place) read back the same either way. The
// bytes become a JavaScript string through the same UTF-8 decoding as the whole notification did
// before, and the span starts and ends at ASCII brackets: a byte invalid in UTF-8 (a SQL_ASCII
// database) is replaced in the same way.
bool relay_inline(std::string& text, const Value& header, const JsonSpan& span, Relayed& out) {
  if (span.end <= span.begin || span.end > text.size() || text[span.begin] != '[' || !span.stringify_stable ||
      !is_plain_broadcast(header)) {
    return false;
  }
  const std::string_view all(text);
  const size_t wire_size = span.end - span.begin;
  out.envelope.clear();
  out.envelope.reserve(text.size() - wire_size + 1);
  out.envelope.append(all.substr(0, span.begin));
  out.envelope.push_back('0');
  out.envelope.append(all.substr(span.end));
  // The payload's buffer becomes the wire when the wire is nearly all of it (no copy of a large
  // payload). Otherwise the wire is copied: the inbound queue counts the envelope's and the wire's
  // bytes, and a small wire kept in the whole payload's buffer would hold up to twice that.
  if (text.size() - wire_size <= wire_size / 8) {
    text.erase(span.end);
    text.erase(0, span.begin);
    out.wire = std::move(text);
  } else {
    out.wire.assign(all.substr(span.begin, wire_size));
  }
  out.text = span.ascii ? WireText::Ascii : valid_wtf8(out.wire, false) ? WireText::Utf8 : WireText::Other;
  return true;
}

// write_json writes what JSON.stringify writes for FromValue(message) (json_codec.h), and for a tree
// that is json_exact, JSON.parse gives that tree back: the envelope and the packet's data read in
// JavaScript as the objects N-API would have built.
bool relay_decoded(Value& message, Relayed& out) {
  if (!is_plain_broadcast(message)) return false;
  Value* items = field(*field(*field(message, "data"), "packet"), "data");
  if (items == nullptr || items->kind != Value::Kind::Array) return false;
  DataScan scan;
  if (!json_exact(*items, &scan) || (scan.binaries > 0 && scan.placeholder_keys)) return false;
  Value data = std::move(*items);
  *items = Value::int_of(0);
  if (!json_exact(message)) {
    *items = std::move(data);
    return false;
  }
  out.binaries.clear();
  out.binaries.reserve(scan.binaries);
  out.wire.clear();
  write_with_placeholders(data, out.wire, out.binaries);
  out.text = valid_wtf8(out.wire, false) ? WireText::Utf8 : WireText::Other;
  out.envelope.clear();
  write_json(message, out.envelope);
  return true;
}

}  // namespace pgadapter
