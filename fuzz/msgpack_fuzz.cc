// libFuzzer target: the attachment decoder (decode_msgpack), then encode_msgpack on what it accepted.
// Also checks that the output is stable: encode(decode(encode(v))) == encode(v), and that a relayed
// attachment (relay_decoded) reads back, envelope and data, as the message it came from.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// PGADAPTER_FUZZ_ROUNDTRIP=0 checks only for crashes and sanitizer errors, not round-trip stability.
static const bool kRoundTrip = [] {
  const char* e = std::getenv("PGADAPTER_FUZZ_ROUNDTRIP");
  return e == nullptr || std::string(e) != "0";
}();

#include "core/broadcast_relay.h"
#include "core/json_codec.h"
#include "core/msgpack_codec.h"

// Puts the relayed binaries back in place of their placeholders (as a client does); false when a
// placeholder is out of range or a binary is not used exactly once.
static bool put_binaries(pgadapter::Value& v, std::vector<std::string>& binaries, std::vector<bool>& used) {
  using Kind = pgadapter::Value::Kind;
  if (v.kind == Kind::Array) {
    for (auto& item : v.items) {
      if (!put_binaries(item, binaries, used)) return false;
    }
    return true;
  }
  if (v.kind != Kind::Map) return true;
  const pgadapter::Value* flag = v.get("_placeholder");
  if (flag != nullptr && !binaries.empty()) {
    const pgadapter::Value* num = v.get("num");
    if (v.fields.size() != 2 || flag->kind != Kind::Bool || !flag->boolean || num == nullptr || num->kind != Kind::Int ||
        num->integer < 0 || static_cast<size_t>(num->integer) >= binaries.size() || used[num->integer]) {
      return false;
    }
    used[num->integer] = true;
    v = pgadapter::Value::binary_of(binaries[num->integer]);
    return true;
  }
  for (auto& f : v.fields) {
    if (!put_binaries(f.second, binaries, used)) return false;
  }
  return true;
}

// relay_decoded: the envelope with the wire JSON (binaries back in place) in place of its
// placeholder is the message again; a message it refuses is left as it was.
static void check_relay(const pgadapter::Value& decoded) {
  pgadapter::Value copy = decoded;
  pgadapter::Relayed relayed;
  std::string before, after;
  pgadapter::write_json(decoded, before);
  if (!pgadapter::relay_decoded(copy, relayed)) {
    pgadapter::write_json(copy, after);
    if (after != before) {
      std::fprintf(stderr, "relay_decoded changed a message it refused\n");
      std::abort();
    }
    return;
  }
  pgadapter::Value envelope, data;
  std::string error;
  if (!pgadapter::parse_json(relayed.envelope, envelope, error) || !pgadapter::parse_json(relayed.wire, data, error) ||
      data.kind != pgadapter::Value::Kind::Array) {
    std::fprintf(stderr, "relay_decoded wrote JSON that does not read back: %s\n", error.c_str());
    std::abort();
  }
  std::vector<bool> used(relayed.binaries.size(), false);
  if (!put_binaries(data, relayed.binaries, used) ||
      std::find(used.begin(), used.end(), false) != used.end()) {
    std::fprintf(stderr, "relay_decoded's placeholders do not match its binaries\n");
    std::abort();
  }
  for (auto& f : envelope.fields) {
    if (f.first != "data") continue;
    for (auto& g : f.second.fields) {
      if (g.first != "packet") continue;
      for (auto& h : g.second.fields) {
        if (h.first == "data") h.second = std::move(data);
      }
    }
  }
  pgadapter::write_json(envelope, after);
  if (after != before) {
    std::fprintf(stderr, "a relayed message reads back otherwise:\n  %s\n  %s\n", before.c_str(), after.c_str());
    std::abort();
  }
}

static void dump(const char* what, const std::string& bytes) {
  std::fprintf(stderr, "%s (%zu bytes):", what, bytes.size());
  for (size_t i = 0; i < bytes.size() && i < 256; ++i) std::fprintf(stderr, " %02x", static_cast<unsigned char>(bytes[i]));
  std::fprintf(stderr, "\n");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  pgadapter::Value v;
  std::string error;
  if (!pgadapter::decode_msgpack(bytes, v, error)) {
    if (error.empty()) {
      std::fprintf(stderr, "decode_msgpack failed without an error message\n");
      std::abort();
    }
    return 0;
  }
  check_relay(v);
  std::string out;
  pgadapter::encode_msgpack(v, out);
  if (!kRoundTrip) return 0;

  pgadapter::Value again;
  std::string error2;
  if (!pgadapter::decode_msgpack(out, again, error2)) {
    std::fprintf(stderr, "encode_msgpack produced bytes that decode_msgpack rejects: %s\n", error2.c_str());
    dump("input", std::string(bytes));
    dump("encoded", out);
    std::abort();
  }
  std::string out2;
  pgadapter::encode_msgpack(again, out2);
  if (out2 != out) {
    dump("input", std::string(bytes));
    dump("first encoding", out);
    dump("second encoding", out2);
    std::fprintf(stderr, "msgpack round trip is not stable\n");
    std::abort();
  }
  return 0;
}
