// The one list of error codes the package reports (err.code), each with its one-line meaning.
// The addon exports it to JavaScript (lib/errors.js); test/errors.test.js checks index.d.ts, the
// README's errors table and every code used in binding/ and lib/ against it.
#pragma once

// X(code, meaning)
#define PGADAPTER_ERROR_CODES(X)                                                                                    \
  X(CONNECTION_LOST, "a connection failed or was lost; it is retried (reported once per outage)")                  \
  X(RECONNECTED, "that connection is back (and LISTENs again)")                                                    \
  X(PUBLISH_FAILED, "PostgreSQL refused a publish, or the connection was lost while it was in flight")             \
  X(PUBLISH_DROPPED, "the publish queue was full, the adapter is closed, or the channel is not a valid name")      \
  X(ENCODE_FAILED, "a message cannot be serialized (a BigInt, a circular structure, nesting over 512 levels)")     \
  X(BAD_NOTIFICATION, "a malformed notification on one of our channels; skipped")                                  \
  X(BAD_ATTACHMENT, "an attachment row that is not a valid msgpack cluster message; skipped")                      \
  X(ATTACHMENT_MISSING, "an announced attachment row is gone (deleted by the cleanup); skipped")                    \
  X(INBOUND_OVERFLOW, "too much waits for delivery; new notifications are dropped until the queue drains")         \
  X(ATTACHMENT_FETCH_FAILED, "fetching an announced attachment row failed")                                        \
  X(LISTEN_FAILED, "a LISTEN statement failed")                                                                    \
  X(CLEANUP_FAILED, "the periodic cleanup of old rows failed")                                                     \
  X(CREATE_TABLE_FAILED, "creating a table (createTable: true) failed")                                            \
  X(BAD_TABLE_NAME, "a table name SQL cannot read (thrown by createAdapter), or one libpq cannot quote")           \
  X(MESSAGE_FAILED, "Socket.IO's adapter threw while handling a received message; skipped")                        \
  X(RECOVERY_FAILED, "a connection state recovery statement failed (the client gets a fresh session)")             \
  X(RECOVERY_UNAVAILABLE, "the recovery tables are missing and cannot be created: broadcasts go out unrecoverable")  \
  X(IPC_FAILED, "setupPrimary could not forward a message to a worker")                                            \
  X(BAD_NAMESPACE, "a namespace that cannot be mapped to a channel name")                                          \
  X(CALLBACK_FAILED, "a callback into JavaScript threw")                                                           \
  X(NATIVE_FAILED, "the native core could not complete a call (out of memory or an internal error)")               \
  X(READY_TIMEOUT, "a namespace's LISTEN was not confirmed within readyTimeout; its connections are no longer held (reported once)") \
  X(ACKS_DROPPED, "over 1,000 broadcasts with acknowledgements from other servers wait for our clients: the oldest one's unanswered callbacks are dropped")

namespace pgadapter::codes {

// codes::CONNECTION_LOST == "CONNECTION_LOST", and so on: spelled once, checked by the compiler.
#define PGADAPTER_DEFINE_CODE(code, meaning) inline constexpr const char code[] = #code;
PGADAPTER_ERROR_CODES(PGADAPTER_DEFINE_CODE)
#undef PGADAPTER_DEFINE_CODE

}  // namespace pgadapter::codes
