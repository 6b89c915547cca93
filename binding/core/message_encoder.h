// Turns a cluster message into what goes on the wire, as the pure-JS adapter does:
// JSON in the notification, or msgpack in the attachment table plus a small JSON header.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/value.h"

namespace pgadapter {

// PostgreSQL rejects NOTIFY payloads of 8000 bytes or more (default build).
inline constexpr size_t kMaxNotifyPayload = 7999;
inline constexpr size_t kMaxChannelBytes = 63;

// A recoverable broadcast (connection state recovery): logged with an offset in commit order.
struct LogRecord {
  std::string nsp;
  std::vector<std::string> rooms, except;
  std::string packet;  // msgpack of the packet's data array
  // offset: the log id as a decimal string, or empty when the message went out unlogged (no
  // recovery for it: the tables are unusable or PostgreSQL was unreachable); error: empty on success.
  std::function<void(const std::string& offset, const std::string& error)> done;
};

// The log record of a cluster BROADCAST message (nsp, data.opts.rooms/except, data.packet.data),
// taken from the message itself. False when it does not have that shape.
bool log_record_of(const Value& message, LogRecord& out);

struct OutMessage {
  std::string channel;
  std::string payload;        // JSON text, or msgpack bytes when `attachment`
  std::string header_prefix;  // attachment only: the notification's JSON up to the row id
  bool attachment = false;
  uint64_t queued_at_ns = 0;       // uv_hrtime() when queued, for the latency figures
  std::unique_ptr<LogRecord> log;  // logged: the inline JSON ends with ,"offset":" (id and "} follow)
  uint8_t offset_suffix = 0;       // logged inline: the length of that ending
};

// Turns a logged message back into a plain one (its `log` is handed back, or dropped if `log_out` is null).
void make_plain(OutMessage& m, std::unique_ptr<LogRecord>* log_out = nullptr);

// Whether a message's JSON of `json_bytes` goes in the notification itself (else: the attachment table).
bool fits_notification(size_t json_bytes, size_t threshold, bool logged);

// Messages with binary content, or whose JSON is >= threshold bytes (or would not fit in a
// notification), go to the attachment table.
// With `logged`, room is kept for the offset the notification will carry.
void encode_message(const Value& message, bool has_binary, size_t threshold, OutMessage& out, bool logged = false);

}  // namespace pgadapter
