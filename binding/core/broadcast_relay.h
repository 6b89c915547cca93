// A received plain broadcast, made ready for Socket.IO's clients once, here: the packet's data as
// the JSON Socket.IO's default encoder writes for it (JSON.stringify), apart from the rest of the
// message (the envelope, with 0 in its place). JavaScript then parses only the small envelope, and
// writes the wire form to the clients as it is (lib/client.js, lib/adapter.js).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/json_codec.h"
#include "core/value.h"

namespace pgadapter {

// Where a cluster message keeps the packet's data: message.data.packet.data.
extern const std::vector<std::string_view> kPacketDataPath;

// What `wire`'s bytes are. Utf8: valid UTF-8, so they may go to clients as they are, as
// Buffer.from(its JavaScript string) would be (not so for a byte invalid in UTF-8, e.g. from a
// SQL_ASCII database); Ascii: moreover all below 0x80, so they are the string's Latin-1 too.
enum class WireText : unsigned char { Other, Utf8, Ascii };

struct Relayed {
  std::string envelope;  // the message as JSON, its packet's data replaced by 0
  std::string wire;      // the packet's data as JSON
  // An attachment's binaries, in the order Socket.IO's binary encoder numbers them: in `wire` each is
  // the placeholder that encoder writes, {"_placeholder":true,"num":N}.
  std::vector<std::string> binaries;
  WireText text = WireText::Other;
};

// What ClusterAdapter hands to Adapter.broadcast as it is: a BROADCAST (type 3) without requestId
// whose packet is an EVENT (type 2) without id. `message` may be a header read along kPacketDataPath.
bool is_plain_broadcast(const Value& message);

// An inline notification (`header` and `span`: parse_json_header along kPacketDataPath). False when
// it is not a plain broadcast whose data is an array that reads back as it stringifies (`text` is then
// untouched); when true, `text` may have become `out.wire` (its buffer reused when the data is nearly
// all of it: no copy of a large payload).
bool relay_inline(std::string& text, const Value& header, const JsonSpan& span, Relayed& out);

// A decoded attachment. False (and `message` untouched) unless it is a plain broadcast whose data is
// an array, and everything in it is what JSON carries unchanged: no Date, NaN, +-Infinity, -0, and
// strings of valid UTF-8 (lone surrogates allowed); binaries only in the packet's data, and there
// only without a "_placeholder" or "__proto__" key (Socket.IO's binary encoder would treat those
// otherwise). On success `message` has lost its packet's data (it is in `out`).
bool relay_decoded(Value& message, Relayed& out);

}  // namespace pgadapter
