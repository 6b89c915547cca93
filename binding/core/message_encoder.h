// Turns a cluster message into what goes on the wire, as the pure-JS adapter does:
// JSON in the notification, or msgpack in the attachment table plus a small JSON header.
#pragma once

#include <string>

#include "core/value.h"

namespace pgadapter {

// PostgreSQL rejects NOTIFY payloads of 8000 bytes or more (default build).
inline constexpr size_t kMaxNotifyPayload = 7999;
inline constexpr size_t kMaxChannelBytes = 63;

struct OutMessage {
  std::string channel;
  std::string payload;        // JSON text, or msgpack bytes when `attachment`
  std::string header_prefix;  // attachment only: the notification's JSON up to the row id
  bool attachment = false;
};

// Messages with binary content, or whose JSON is >= threshold bytes (or would not fit in a
// notification), go to the attachment table.
void encode_message(const Value& message, bool has_binary, size_t threshold, OutMessage& out);

}  // namespace pgadapter
