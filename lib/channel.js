"use strict";
// The PostgreSQL channel of a namespace, and whether it can be one byte for byte: LISTEN takes
// the name as a quoted identifier (libpq stops at a NUL, PostgreSQL truncates past 63 bytes),
// pg_notify() as text (refusing a NUL or more than 63 bytes), and the name comes back in the
// notification as UTF-8. A name that changes on that path would be heard on another channel
// than the one it is published to, or make PostgreSQL refuse the whole batch of publishes.

const MAX_CHANNEL_BYTES = 63; // NAMEDATALEN - 1

const channelName = (channelPrefix, nsp) => `${channelPrefix}#${nsp}`;

// Why `channel` cannot be a PostgreSQL channel, or null if it can.
function channelProblem(channel) {
  if (channel.includes("\0")) return "contains a NUL character";
  // A lone surrogate becomes U+FFFD in UTF-8: another name.
  if (Buffer.from(channel, "utf8").toString("utf8") !== channel) return "is not valid Unicode (a lone surrogate)";
  const bytes = Buffer.byteLength(channel);
  if (bytes > MAX_CHANNEL_BYTES) {
    return `is ${bytes} bytes long; PostgreSQL channel names are at most ${MAX_CHANNEL_BYTES} bytes`;
  }
  return null;
}

// The message of a BAD_NAMESPACE error, or null if the namespace's channel is fine.
function namespaceProblem(channelPrefix, nsp) {
  const channel = channelName(channelPrefix, nsp);
  const problem = channelProblem(channel);
  if (problem === null) return null;
  return `namespace ${JSON.stringify(nsp)} cannot be used: its PostgreSQL channel ${JSON.stringify(channel)} ${problem}`;
}

module.exports = { MAX_CHANNEL_BYTES, channelName, channelProblem, namespaceProblem };
