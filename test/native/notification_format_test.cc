// Unit tests of the notification wire format (no Node needed): what the publisher writes, completed
// as the SQL statements complete it (the ids appended), reads back as the listener expects.
#include <memory>
#include <string>

#include "core/json_codec.h"
#include "core/message_encoder.h"
#include "core/notification_format.h"

#include "check.h"

using pgadapter::Value;
namespace notification = pgadapter::notification;

namespace {

Value message() {
  Value m;
  std::string error;
  pgadapter::parse_json(R"({"type":3,"data":{"packet":{"type":2,"data":["e",1]}},"uid":"u1","nsp":"/n"})", m, error);
  return m;
}

std::string field(const std::string& json, const char* key) {
  Value v;
  std::string error;
  if (!pgadapter::parse_json(json, v, error)) return "ERR " + error;
  const Value* f = v.get(key);
  if (f == nullptr) return "-";
  std::string out;
  pgadapter::write_json(*f, out);
  return out;
}

void test_attachment_header() {
  pgadapter::OutMessage out;
  pgadapter::encode_message(message(), /*has_binary=*/true, 8000, out);
  CHECK(out.attachment);
  const std::string header = out.header_prefix + "42" + std::string(notification::kIdClose);
  CHECK_EQ(header, R"({"uid":"u1","type":3,"nsp":"/n","attachmentId":"42"})");
  // Logged: the log id follows the row id.
  const std::string logged = out.header_prefix + "42" + std::string(notification::kOffsetAfterId) + "7" +
                             std::string(notification::kIdClose);
  CHECK_EQ(field(logged, notification::kAttachmentId), "\"42\"");
  CHECK_EQ(field(logged, notification::kOffset), "\"7\"");
  CHECK_EQ(field(logged, notification::kUid), "\"u1\"");
}

void test_logged_inline() {
  pgadapter::OutMessage out;
  pgadapter::encode_message(message(), false, 8000, out, /*logged=*/true);
  CHECK(!out.attachment);
  const std::string full = out.payload + "9" + std::string(notification::kIdClose);
  CHECK_EQ(field(full, notification::kOffset), "\"9\"");
  CHECK_EQ(field(full, notification::kNsp), "\"/n\"");
  // Back to a plain message (sent unlogged): the JSON of the message itself.
  out.log = std::make_unique<pgadapter::LogRecord>();
  pgadapter::make_plain(out);
  CHECK_EQ(out.payload, R"({"type":3,"data":{"packet":{"type":2,"data":["e",1]}},"uid":"u1","nsp":"/n"})");
  // An empty message: no comma before the offset.
  pgadapter::OutMessage empty;
  pgadapter::encode_message(Value::map(), false, 8000, empty, true);
  CHECK_EQ(empty.payload + "1" + std::string(notification::kIdClose), R"({"offset":"1"})");
}

void test_sql_text() {
  CHECK_EQ(notification::sql_text(notification::kIdClose), "'\"}'::pg_catalog.text");
  CHECK_EQ(notification::sql_text("a'b"), "'a''b'::pg_catalog.text");
}

}  // namespace

int main() {
  test_attachment_header();
  test_logged_inline();
  test_sql_text();
  return check::finish("notification_format_test");
}
