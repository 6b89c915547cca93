// Unit tests of the broadcast relay (no Node needed): where a notification's packet data lies
// (parse_json_header along a path) and what is handed over as the envelope and the wire form.
#include <cstdlib>
#include <limits>
#include <new>
#include <string>

#include "core/broadcast_relay.h"
#include "core/json_codec.h"
#include "core/msgpack_codec.h"

#include "check.h"

using pgadapter::JsonSpan;
using pgadapter::kPacketDataPath;
using pgadapter::Relayed;
using pgadapter::Value;

// The bytes allocated while `counting` (test_relay_many_binaries): every allocation of this program
// passes here.
namespace {
bool counting = false;
size_t allocated = 0;
}  // namespace

void* operator new(size_t n) {
  if (counting) allocated += n;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

// The span's text, "-" when there is none, "ERR" when the text is refused.
std::string span_of(const std::string& text, bool* stable = nullptr) {
  Value header;
  std::string error;
  JsonSpan span;
  if (!pgadapter::parse_json_header(text, header, error, kPacketDataPath, span)) return "ERR";
  if (stable) *stable = span.stringify_stable;
  return span.end > span.begin ? text.substr(span.begin, span.end - span.begin) : "-";
}

// "envelope | wire", or "no" when not relayed.
std::string relay_inline(const std::string& text) {
  Value header;
  std::string error;
  JsonSpan span;
  if (!pgadapter::parse_json_header(text, header, error, kPacketDataPath, span)) return "ERR";
  Relayed out;
  std::string payload = text;
  if (!pgadapter::relay_inline(payload, header, span, out)) {
    CHECK_EQ(payload, text);  // left as it was, for the message's other path
    return "no";
  }
  return out.envelope + " | " + out.wire;
}

std::string relay_decoded(const std::string& json) {
  Value v;
  std::string error;
  if (!pgadapter::parse_json(json, v, error)) return "ERR";
  // Through msgpack, as an attachment arrives.
  std::string bytes;
  pgadapter::encode_msgpack(v, bytes);
  Value decoded;
  if (!pgadapter::decode_msgpack(bytes, decoded, error)) return "ERR";
  Relayed out;
  if (!pgadapter::relay_decoded(decoded, out)) return "no";
  return out.envelope + " | " + out.wire;
}

const std::string kHead = R"({"type":3,"data":{"packet":{"type":2,"data":)";
const std::string kTail = R"(},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"u","nsp":"/"})";

void test_span() {
  CHECK_EQ(span_of(kHead + R"(["ev",1])" + kTail), R"(["ev",1])");
  CHECK_EQ(span_of(R"({"data":{"packet":{"data": [ 1 , {"a":[]} ] }}})"), R"([ 1 , {"a":[]} ])");
  CHECK_EQ(span_of(R"({"type":3})"), "-");
  CHECK_EQ(span_of(R"({"data":{"packet":[1]}})"), "-");
  CHECK_EQ(span_of(R"({"data":{"packet":{"data":"x"}}})"), "\"x\"");
  CHECK_EQ(span_of(R"([{"data":{"packet":{"data":[1]}}}])"), "-");  // not under a top-level object
  CHECK_EQ(span_of(R"({"x":{"data":{"packet":{"data":[1]}}}})"), "-");
  // A repeated key: the later value, as JSON.parse.
  CHECK_EQ(span_of(R"({"data":{"packet":{"data":[1],"data":[2]}}})"), "[2]");
  CHECK_EQ(span_of(R"({"data":{"packet":{"data":[1]},"packet":{"type":2}}})"), "-");
  CHECK_EQ(span_of(R"({"data":{"packet":{"data":[1]}},"data":7})"), "-");
  CHECK_EQ(span_of(R"({"data":{"packet":{"data":[1]}},"data":{"packet":{"data":[3]}}})"), "[3]");
  // Refused like parse_json refuses it.
  CHECK_EQ(span_of(R"({"data":{"packet":{"data":[1,]}}})"), "ERR");
  CHECK_EQ(span_of(R"({"data":{"packet":{"data":[1]}})"), "ERR");
  // Numbers JSON.stringify would not write back.
  bool stable = false;
  for (const char* n : {"0", "-1", "1e21", "1.50", "1E2", "1e-400", "123456789012345678901234567890"}) {
    CHECK_EQ(span_of(std::string(R"({"data":{"packet":{"data":[)") + n + "]}}}", &stable), std::string("[") + n + "]");
    CHECK(stable);
  }
  for (const char* n : {"-0", "-0.0", "-0e5", "-1e-400", "1e400", "-1e400"}) {
    CHECK_EQ(span_of(std::string(R"({"data":{"packet":{"data":[{"a":[)") + n + "]}]}}}", &stable),
             std::string(R"([{"a":[)") + n + "]}]");
    CHECK(!stable);
  }
  // Outside the span, such numbers do not matter.
  CHECK_EQ(span_of(R"({"x":-0,"data":{"packet":{"data":[1]},"y":1e400}})", &stable), "[1]");
  CHECK(stable);
  // The header fields along the path are built; the rest is left Undefined.
  Value header;
  std::string error;
  JsonSpan span;
  CHECK(pgadapter::parse_json_header(kHead + R"(["ev"],"id":5,"nsp":"/x")" + kTail, header, error, kPacketDataPath,
                                     span));
  const Value* packet = header.get("data")->get("packet");
  CHECK(packet->get("id")->kind == Value::Kind::Int);
  CHECK(packet->get("nsp")->str == "/x");
  CHECK(packet->get("data")->kind == Value::Kind::Undefined);
  CHECK(header.get("data")->get("opts")->kind == Value::Kind::Undefined);
  CHECK(header.get("uid")->str == "u");
}

void test_relay_inline() {
  CHECK_EQ(relay_inline(kHead + R"(["ev","\u2028\ud800",{"b":1,"1":2}])" + kTail),
           kHead + "0" + kTail + R"( | ["ev","\u2028\ud800",{"b":1,"1":2}])");
  CHECK_EQ(relay_inline(kHead + "[]" + kTail), kHead + "0" + kTail + " | []");
  // Not a plain broadcast, or data that is not an array, or that would not read back: not relayed.
  CHECK_EQ(relay_inline(R"({"type":9,"data":{"packet":{"type":2,"data":[1]}}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":[1]},"requestId":"r"}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":[1]},"requestId":null}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":[1],"id":1}}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":5,"data":[1]}}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":"2","data":[1]}}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":{"a":1}}}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":"[1]"}}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":[-0]}}})"), "no");
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":[1e999]}}})"), "no");
  // No top-level nsp (the emitter): relayed, JavaScript names the namespace.
  CHECK_EQ(relay_inline(R"({"type":3,"data":{"packet":{"type":2,"data":["e"],"nsp":"/"}},"uid":"emitter"})"),
           R"({"type":3,"data":{"packet":{"type":2,"data":0,"nsp":"/"}},"uid":"emitter"} | ["e"])");
}

// An inline broadcast (`text`, which it may take) as relay_inline hands it over; the checks fail when it
// is not one.
Relayed relayed(std::string& text) {
  Value header;
  std::string error;
  JsonSpan span;
  Relayed out;
  CHECK(pgadapter::parse_json_header(text, header, error, kPacketDataPath, span));
  CHECK(pgadapter::relay_inline(text, header, span, out));
  return out;
}

// What the wire's bytes are: "ascii", "utf8" or "other" (see WireText), for an inline broadcast
// whose packet data is `data`.
std::string wire_text_of(const std::string& data) {
  std::string text = kHead + data + kTail;
  const Relayed out = relayed(text);
  CHECK_EQ(out.wire, data);
  switch (out.text) {
    case pgadapter::WireText::Ascii: return "ascii";
    case pgadapter::WireText::Utf8: return "utf8";
    case pgadapter::WireText::Other: return "other";
  }
  return "?";
}

// Only bytes below 0x80 make the wire ASCII (V8 then copies it as Latin-1): anywhere in a string, in
// a key, in the fast path (no escape) or the slow one (escapes), before or after the string's end.
void test_relay_wire_text() {
  CHECK_EQ(wire_text_of(R"(["ev",1,{"k":[true,null,"x\"y"]}])"), "ascii");
  CHECK_EQ(wire_text_of(R"(["ev","\u00e9"])"), "ascii");  // escaped: the bytes are ASCII
  CHECK_EQ(wire_text_of("[\"ev\",\"\xc3\xa9\"]"), "utf8");
  CHECK_EQ(wire_text_of("[\"ev\",{\"\xc3\xa9\":1}]"), "utf8");
  CHECK_EQ(wire_text_of("[\"ev\",\"\\n\xc3\xa9\"]"), "utf8");
  CHECK_EQ(wire_text_of("[\"ev\",\"\xc3\xa9\\n\"]"), "utf8");
  CHECK_EQ(wire_text_of("[\"ev\",\"x\",\"\xe2\x80\xa8\"]"), "utf8");
  // A lone surrogate (WTF-8) or a byte invalid in UTF-8: neither ASCII nor UTF-8.
  CHECK_EQ(wire_text_of("[\"ev\",\"\xed\xa0\x80\"]"), "other");
  CHECK_EQ(wire_text_of("[\"ev\",\"\xff\"]"), "other");
  // A non-ASCII byte outside the span does not count.
  std::string text = "{\"type\":3,\"nsp\":\"/\xc3\xa9\",\"data\":{\"packet\":{\"type\":2,\"data\":[\"a\"]}}}";
  const Relayed out = relayed(text);
  CHECK(out.text == pgadapter::WireText::Ascii);
  CHECK_EQ(out.envelope, "{\"type\":3,\"nsp\":\"/\xc3\xa9\",\"data\":{\"packet\":{\"type\":2,\"data\":0}}}");
}

// The wire takes the payload's buffer only when the data is nearly all of it: what the inbound queue
// counts (envelope and wire bytes) is then what they hold. Both ways give the same envelope and wire.
void test_relay_inline_buffer() {
  const std::string big_data = "[\"ev\",\"" + std::string(4000, 'q') + "\"]";
  const std::string small_data = "[]";
  const std::string padded_tail = R"(},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"u","nsp":"/","pad":")" +
                                  std::string(7800, 'x') + "\"}";
  for (const auto& [data, tail] : {std::pair{big_data, kTail}, std::pair{small_data, padded_tail},
                                   std::pair{big_data, padded_tail}, std::pair{small_data, kTail}}) {
    const std::string joined = kHead + data + tail;
    std::string text(joined);  // its own size, as a notification's payload is
    const Relayed out = relayed(text);
    CHECK_EQ(out.wire, data);
    CHECK_EQ(out.envelope, kHead + "0" + tail);
    CHECK(out.wire.capacity() <= data.size() + data.size() / 8 + 15);
  }
}

// message.data.<key>, and with `inner` its field of that name (nullptr when absent).
Value* field_of(Value& message, const char* key, const char* inner = nullptr) {
  for (auto& f : message.fields) {
    if (f.first != "data") continue;
    for (auto& g : f.second.fields) {
      if (g.first != key) continue;
      if (inner == nullptr) return &g.second;
      for (auto& h : g.second.fields) {
        if (h.first == inner) return &h.second;
      }
    }
  }
  return nullptr;
}

// Binaries travel beside the JSON, each replaced by Socket.IO's placeholder, numbered in order.
void test_relay_binaries() {
  auto relay = [](Value data, Relayed& out) {
    Value message;
    std::string error;
    CHECK(pgadapter::parse_json(kHead + "0" + kTail, message, error));
    *field_of(message, "packet", "data") = std::move(data);
    return pgadapter::relay_decoded(message, out);
  };
  Value data = Value::array();
  data.items.push_back(Value::string_of("ev"));
  data.items.push_back(Value::binary_of(std::string("\x00\xff", 2)));
  Value nested = Value::map();
  nested.fields.emplace_back("b", Value::binary_of("two"));
  nested.fields.emplace_back("_x", Value::string_of("y"));
  Value list = Value::array();
  list.items.push_back(std::move(nested));
  data.items.push_back(std::move(list));
  Relayed out;
  CHECK(relay(data, out));
  CHECK_EQ(out.wire, R"(["ev",{"_placeholder":true,"num":0},[{"b":{"_placeholder":true,"num":1},"_x":"y"}]])");
  CHECK_EQ(out.envelope, kHead + "0" + kTail);
  CHECK(out.binaries.size() == 2);
  CHECK_EQ(out.binaries[0], std::string("\x00\xff", 2));
  CHECK_EQ(out.binaries[1], "two");
  // A "_placeholder" or "__proto__" key of the data's own: Socket.IO's binary encoder would read
  // them otherwise, so such data keeps the old path; without binaries they are plain JSON.
  for (const char* key : {"_placeholder", "__proto__"}) {
    Value with_key = data;
    Value own = Value::map();
    own.fields.emplace_back(key, Value::boolean_of(true));
    with_key.items.push_back(own);
    Relayed refused;
    CHECK(!relay(with_key, refused));
    Value without_binary = Value::array();
    without_binary.items.push_back(std::move(own));
    Relayed plain;
    CHECK(relay(without_binary, plain));
    CHECK(plain.binaries.empty());
  }
  // A binary anywhere but the packet's data (here in opts) keeps the old path.
  Value message;
  std::string error;
  CHECK(pgadapter::parse_json(kHead + R"(["ev"])" + kTail, message, error));
  field_of(message, "opts")->fields.emplace_back("extra", Value::binary_of("x"));
  Relayed in_opts;
  CHECK(!pgadapter::relay_decoded(message, in_opts));
}

void test_relay_decoded() {
  CHECK_EQ(relay_decoded(kHead + R"(["ev",1.5,"\u2028\ud800 x",{"b":[null,true]}])" + kTail),
           kHead + "0" + kTail + " | [\"ev\",1.5,\"\xe2\x80\xa8\\ud800 x\",{\"b\":[null,true]}]");  // U+2028 raw, as JSON.stringify
  CHECK_EQ(relay_decoded(R"({"type":3,"data":{"packet":{"type":2,"data":[1]},"requestId":"r"}})"), "no");
  CHECK_EQ(relay_decoded(R"({"type":3,"data":{"packet":{"type":2,"data":{"a":1}}}})"), "no");
  // What JSON would not carry unchanged keeps the old path: binary, Date, -0, NaN, invalid UTF-8.
  Value m;
  std::string error;
  CHECK(pgadapter::parse_json(kHead + R"(["ev",1])" + kTail, m, error));
  auto with_arg = [&](Value arg) {
    Value copy = m;
    field_of(copy, "packet", "data")->items.push_back(std::move(arg));
    Relayed out;
    return pgadapter::relay_decoded(copy, out);
  };
  CHECK(with_arg(Value::string_of("ok")));
  CHECK(with_arg(Value::string_of("\xed\xa0\x80")));  // a lone surrogate (WTF-8): written as \ud800
  CHECK(with_arg(Value::binary_of("\x01")));  // beside the JSON (test_relay_binaries)
  CHECK(!with_arg(Value::timestamp_of(1, 0)));
  CHECK(!with_arg(Value::double_of(-0.0)));
  CHECK(!with_arg(Value::double_of(std::numeric_limits<double>::quiet_NaN())));
  CHECK(!with_arg(Value::double_of(std::numeric_limits<double>::infinity())));
  CHECK(!with_arg(Value::string_of("\xe2\x82")));  // not UTF-8
  CHECK(!with_arg(Value::string_of("\xff")));
  CHECK(!with_arg(Value::undefined()));
}


// An attachment of many small binaries (a hostile row can hold millions in a few megabytes): relaying
// it costs the JSON and the binaries, not a tree of placeholder objects besides (that took some
// 300 bytes per binary on top).
void test_relay_many_binaries() {
  constexpr size_t kCount = 20000;
  Value data = Value::array();
  data.items.push_back(Value::string_of("ev"));
  for (size_t i = 0; i < kCount; ++i) data.items.push_back(Value::binary_of(""));
  Value message;
  std::string error;
  CHECK(pgadapter::parse_json(kHead + "0" + kTail, message, error));
  *field_of(message, "packet", "data") = std::move(data);
  Relayed out;
  allocated = 0;
  counting = true;
  const bool relayed = pgadapter::relay_decoded(message, out);
  counting = false;
  CHECK(relayed);
  CHECK(out.binaries.size() == kCount);
  const std::string start = R"(["ev",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},)";
  CHECK_EQ(out.wire.substr(0, start.size()), start);
  const std::string end = R"(,{"_placeholder":true,"num":19999}])";
  CHECK_EQ(out.wire.substr(out.wire.size() - end.size()), end);
  // Per binary: its placeholder's JSON (under 40 bytes, the string grows by doubling) and its
  // std::string in the vector (32 bytes).
  CHECK(allocated < kCount * 150);
  if (allocated >= kCount * 150) std::fprintf(stderr, "allocated %zu bytes for %zu binaries\n", allocated, kCount);
}

}  // namespace

int main() {
  test_span();
  test_relay_inline();
  test_relay_wire_text();
  test_relay_inline_buffer();
  test_relay_decoded();
  test_relay_binaries();
  test_relay_many_binaries();
  return check::finish("relay_test");
}
