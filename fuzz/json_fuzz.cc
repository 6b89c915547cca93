// libFuzzer target: the notification parsers (parse_json, parse_json_header), then write_json on what they accepted.
// Also checks that the output is stable: write(parse(write(v))) == write(v).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// PGADAPTER_FUZZ_ROUNDTRIP=0 checks only for crashes and sanitizer errors, not round-trip stability.
static const bool kRoundTrip = [] {
  const char* e = std::getenv("PGADAPTER_FUZZ_ROUNDTRIP");
  return e == nullptr || std::string(e) != "0";
}();

#include "core/json_codec.h"

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
