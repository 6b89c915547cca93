// The notification wire format, in one place: what the publisher and the recovery log write (the
// JSON here, the ids appended by SQL) and what the listener reads. Shared with
// @socket.io/postgres-adapter 0.5 and @socket.io/postgres-emitter 0.1 (README: "Compatibility").
//
//   inline message       the cluster message as JSON: {"type":…,"data":…,"uid":…,"nsp":…}
//   attachment header    {"uid":…,"type":…,"nsp":…,"attachmentId":"<row id>"}  (the pure-JS one has no nsp)
//   logged (recovery)    either of them ending ,"offset":"<log id>"} instead of }
#pragma once

#include <string>
#include <string_view>

namespace pgadapter::notification {

// The fields the listener reads.
inline constexpr char kUid[] = "uid";
inline constexpr char kType[] = "type";
inline constexpr char kNsp[] = "nsp";
inline constexpr char kAttachmentId[] = "attachmentId";
inline constexpr char kOffset[] = "offset";

// The fields of its message an attachment header repeats, in this order.
inline constexpr const char* kHeaderFields[] = {kUid, kType, kNsp};

// Ends a header's fields: the row id follows, as a string.
inline constexpr std::string_view kAttachmentIdOpen = "\"attachmentId\":\"";
// Closes the string of an id and the object, after the id SQL appends.
inline constexpr std::string_view kIdClose = "\"}";
// Replaces the closing } of a logged inline message (after a comma when it has fields): the log id follows.
inline constexpr std::string_view kOffsetOpen = "\"offset\":\"";
// Between the row id and the log id of a logged attachment header.
inline constexpr std::string_view kOffsetAfterId = "\",\"offset\":\"";

// One of the pieces above as a PostgreSQL text literal, for the statements that append the ids.
inline std::string sql_text(std::string_view piece) {
  std::string out = "'";
  for (char c : piece) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'::pg_catalog.text";
}

}  // namespace pgadapter::notification
