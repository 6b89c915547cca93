// libFuzzer target: the notification parsers (parse_json, parse_json_header, also along a path with its span),
// then write_json on what they accepted.
// Also checks that the output is stable: write(parse(write(v))) == write(v).
#include <algorithm>
#include <cmath>
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

#include "core/json_codec.h"

static const std::vector<std::string_view> kPath = {"data", "packet", "data"};

// Holds a number JSON.stringify would not write back (-0, +-Infinity).
static bool unstable(const pgadapter::Value& v) {
  using K = pgadapter::Value::Kind;
  if (v.kind == K::Double) return std::isinf(v.number) || (v.number == 0 && std::signbit(v.number));
  for (const auto& item : v.items) {
    if (unstable(item)) return true;
  }
  for (const auto& field : v.fields) {
    if (unstable(field.second)) return true;
  }
  return false;
}

static void check_span(std::string_view text, const pgadapter::Value& full, const pgadapter::JsonSpan& span) {
  const pgadapter::Value* at = &full;
  for (std::string_view key : kPath) {
    at = at->kind == pgadapter::Value::Kind::Map ? at->get(std::string(key)) : nullptr;
    if (at == nullptr) break;
  }
  if ((at != nullptr) != (span.end > span.begin)) {
    std::fprintf(stderr, "span found: %d, value at the path: %d\n", span.end > span.begin, at != nullptr);
    std::abort();
  }
  if (at == nullptr) return;
  const std::string_view bytes = text.substr(span.begin, span.end - span.begin);
  const bool ascii = std::all_of(bytes.begin(), bytes.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (span.ascii != ascii) {
    std::fprintf(stderr, "the span is said %sASCII\n", span.ascii ? "" : "not ");
    std::abort();
  }
  pgadapter::Value part;
  std::string error;
  if (!pgadapter::parse_json(text.substr(span.begin, span.end - span.begin), part, error)) {
    std::fprintf(stderr, "the span is not JSON: %s\n", error.c_str());
    std::abort();
  }
  std::string a, b;
  pgadapter::write_json(part, a);
  pgadapter::write_json(*at, b);
  if (a != b || span.stringify_stable == unstable(*at)) {
    std::fprintf(stderr, "the span does not hold the value at the path (stable %d):\n  %s\n  %s\n",
                 span.stringify_stable, a.c_str(), b.c_str());
    std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  pgadapter::Value v;
  std::string error;
  const bool accepted = pgadapter::parse_json(text, v, error);
  // The listener's header parse must accept exactly what the full parse accepts.
  pgadapter::Value header;
  std::string header_error;
  if (pgadapter::parse_json_header(text, header, header_error) != accepted) {
    std::fprintf(stderr, "parse_json_header disagrees with parse_json (%d): %s\n", accepted, header_error.c_str());
    std::abort();
  }
  // Along a path: the same verdict, and the span holds what the full parse has at that path.
  pgadapter::Value along;
  pgadapter::JsonSpan span;
  if (pgadapter::parse_json_header(text, along, header_error, kPath, span) != accepted) {
    std::fprintf(stderr, "parse_json_header along a path disagrees with parse_json (%d): %s\n", accepted,
                 header_error.c_str());
    std::abort();
  }
  if (accepted) check_span(text, v, span);
  if (!accepted) {
    if (error.empty()) {
      std::fprintf(stderr, "parse_json failed without an error message\n");
      std::abort();
    }
    return 0;
  }
  std::string out;
  pgadapter::write_json(v, out);
  if (!kRoundTrip) return 0;

  pgadapter::Value again;
  std::string error2;
  if (!pgadapter::parse_json(out, again, error2)) {
    std::fprintf(stderr, "write_json produced text that parse_json rejects (%s): %s\n", error2.c_str(), out.c_str());
    std::abort();
  }
  std::string out2;
  pgadapter::write_json(again, out2);
  if (out2 != out) {
    std::fprintf(stderr, "JSON round trip is not stable:\n  %s\n  %s\n", out.c_str(), out2.c_str());
    std::abort();
  }
  return 0;
}
