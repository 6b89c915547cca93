#include "core/connection_owner.h"

#include <libpq-fe.h>

#include "core/error_codes.h"
#include "core/stats.h"

namespace pgadapter {

ConnectionOwner::ConnectionOwner(const char* role, ConnectionStats& counts, Host host)
    : role_(role), counts_(counts), host_(std::move(host)), conn_(host_.loop, role, host_.reconnect, hooks()) {}

PgConnection::Hooks ConnectionOwner::hooks() {
  // They run from the loop only, after start(): the owner is fully built by then.
  PgConnection::Hooks hooks;
  hooks.get_params = host_.get_params;
  hooks.on_ready = [this] { on_ready(); };
  hooks.on_down = [this](const std::string& error, bool was_ready) { on_down(error, was_ready); };
  hooks.on_idle = host_.on_idle;
  hooks.has_work = [this] { return has_work(); };
  hooks.on_notifications = [this](std::vector<Notification>& batch) { on_notifications(batch); };
  return hooks;
}

void ConnectionOwner::on_ready() {
  Stats* stats = host_.stats;
  if (stats) {
    stats->note(std::string(role_) + " connection ready (backend pid " + std::to_string(conn_.backend_pid()) + ")");
    stats->note(std::string(role_) + " connection: " +
                (conn_.pipelined()
                     ? "pipeline mode (up to " + std::to_string(PgConnection::kPipelineDepth) + " statements in flight)"
                     : std::string("one statement at a time (libpq without pipeline mode)")));
  }
  std::string table;
  if (host_.quote_table) host_.quote_table(conn_.raw(), table);
  std::vector<Query> setup;
  if (host_.statement_timeout_ms > 0) {
    // Nothing of ours may wait forever on a lock or a stuck statement; that bound is the only one: a role's
    // lock_timeout (meant for its application's queries) would fail our statements on locks held for a moment
    // (another session's DDL on our tables, the recovery log writers queueing on its row 0), losing messages.
    Query timeout;
    timeout.sql =
        "SELECT pg_catalog.set_config('statement_timeout', $1, false),"
        " pg_catalog.set_config('lock_timeout', '0', false)";
    timeout.params = {std::to_string(host_.statement_timeout_ms)};
    setup.push_back(std::move(timeout));
  }
  // Settings of the role or the database our sessions must not inherit. Our statements count on READ
  // COMMITTED (the recovery log's writers queue on a row lock: under REPEATABLE READ or SERIALIZABLE they
  // would fail with serialization errors). Our sessions idle by design (a LISTEN session waits): an
  // idle_session_timeout would cut them again and again, each cut losing the notifications sent meanwhile.
  Query session;
  session.sql = "SELECT pg_catalog.set_config('default_transaction_isolation', 'read committed', false)";
  if (PQserverVersion(conn_.raw()) >= 140000)
    session.sql += ", pg_catalog.set_config('idle_session_timeout', '0', false)";
  setup.push_back(std::move(session));
  add_setup(table, setup);
  if (outage_reported_) {
    // Reported once the setup (the re-LISTENs) has run: from then on nothing is missed.
    Query mark;
    mark.sql = "SELECT 1";
    mark.done = [this](PGresult*, const std::string& error) {
      if (!error.empty() || !outage_reported_) return;
      outage_reported_ = false;
      ++counts_.reconnects;
      report(std::string("reconnected the ") + role_ + " connection to PostgreSQL", codes::RECONNECTED);
    };
    setup.push_back(std::move(mark));
  }
  conn_.enqueue_front(std::move(setup));
  on_connected();
  if (host_.on_up) host_.on_up();
}

void ConnectionOwner::on_down(const std::string& error, bool was_ready) {
  if (host_.stats) host_.stats->note(std::string(role_) + " connection " + (was_ready ? "lost: " : "failed: ") + error);
  if (!outage_reported_) {
    // Once per outage: no report flood while the database stays down.
    outage_reported_ = true;
    report(std::string(role_) + " connection to PostgreSQL " + (was_ready ? "lost: " : "failed: ") + error +
               " (reconnecting)",
           codes::CONNECTION_LOST);
  }
  on_connection_lost();
  // Closing: queued messages keep their closeTimeout (the connection may come back); the rest settles now.
  if (host_.on_down) host_.on_down();
}

}  // namespace pgadapter
