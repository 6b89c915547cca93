// notify_ceiling: measures this PostgreSQL's own NOTIFY ceiling.
//
// One sender connection in libpq pipeline mode sends `SELECT pg_notify($1,$2)` (prepared), BATCH
// statements per sync (one implicit transaction per sync), keeping up to INFLIGHT syncs in flight;
// one LISTENing connection counts what it receives. Every payload is unique (PostgreSQL folds
// identical notifications inside one transaction). Prints one JSON object on stdout.
//
//   notify_ceiling <conninfo> [seconds=3] [batch=100] [inflight=4] [payload_bytes=100]
//
// Build: bench/build-ceiling.sh (g++ -O2 ... -lpq). Needs libpq >= 14 (pipeline mode).
#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "pg_tool.h"

namespace {

using pg_tool::connect_or_die;
using pg_tool::die;
using pg_tool::exec_or_die;

using Clock = std::chrono::steady_clock;

const char* kChannel = "notify_ceiling";

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Listener {
  PGconn* conn;
  std::atomic<bool> counting{false};
  std::atomic<bool> stop{false};
  std::atomic<long long> received{0};        // all notifications seen
  std::atomic<long long> received_window{0};  // while `counting`

  void run() {
    int fd = PQsocket(conn);
    while (!stop.load(std::memory_order_relaxed)) {
      pollfd p{fd, POLLIN, 0};
      int n = poll(&p, 1, 50);
      if (n < 0) continue;
      if (n == 0) continue;
      if (!PQconsumeInput(conn)) die("listener consume", conn);
      long long got = 0;
      while (PGnotify* nt = PQnotifies(conn)) {
        ++got;
        PQfreemem(nt);
      }
      received.fetch_add(got, std::memory_order_relaxed);
      if (counting.load(std::memory_order_relaxed)) received_window.fetch_add(got, std::memory_order_relaxed);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  pg_tool::program = "notify_ceiling";
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <conninfo> [seconds=3] [batch=100] [inflight=4] [payload_bytes=100]\n", argv[0]);
    return 2;
  }
  const char* conninfo = argv[1];
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 100;
  const int max_inflight = argc > 4 ? std::atoi(argv[4]) : 4;
  const int payload_bytes = argc > 5 ? std::atoi(argv[5]) : 100;
  if (seconds <= 0 || batch < 1 || max_inflight < 1 || payload_bytes < 16) {
    std::fprintf(stderr, "notify_ceiling: bad arguments\n");
    return 2;
  }

  PGconn* lconn = connect_or_die(conninfo);
  exec_or_die(lconn, "LISTEN notify_ceiling");
  PGconn* sconn = connect_or_die(conninfo);
  {
    PGresult* r = PQprepare(sconn, "n", "SELECT pg_notify($1, $2)", 2, nullptr);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) die("prepare", sconn);
    PQclear(r);
  }
  if (PQsetnonblocking(sconn, 1) != 0) die("setnonblocking", sconn);
  if (!PQenterPipelineMode(sconn)) die("enter pipeline mode", sconn);

  Listener listener;
  listener.conn = lconn;
  std::thread lt([&] { listener.run(); });

  // Unique payloads of payload_bytes: a counter padded with 'x'.
  std::string pad(static_cast<size_t>(payload_bytes), 'x');
  char payload[4096];
  const int plen = payload_bytes < static_cast<int>(sizeof payload) - 1 ? payload_bytes : static_cast<int>(sizeof payload) - 1;

  long long seq = 0, sent = 0, syncs_done = 0;
  int inflight = 0;
  const int sfd = PQsocket(sconn);
  listener.counting.store(true);
  const Clock::time_point t0 = Clock::now();
  const Clock::time_point t_end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  bool sending = true;
  while (sending || inflight > 0) {
    if (sending && Clock::now() >= t_end) sending = false;
    while (sending && inflight < max_inflight) {
      for (int i = 0; i < batch; ++i) {
        int k = std::snprintf(payload, sizeof payload, "%lld:", ++seq);
        std::memcpy(payload + k, pad.data(), static_cast<size_t>(plen - k));
        payload[plen] = '\0';
        const char* values[2] = {kChannel, payload};
        if (!PQsendQueryPrepared(sconn, "n", 2, values, nullptr, nullptr, 0)) die("send", sconn);
      }
      if (!PQpipelineSync(sconn)) die("sync", sconn);
      ++inflight;
      sent += batch;
    }
    int f = PQflush(sconn);
    if (f < 0) die("flush", sconn);
    pollfd p{sfd, static_cast<short>(POLLIN | (f == 1 ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 100) < 0) continue;
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
      if (!PQconsumeInput(sconn)) die("consume", sconn);
      while (inflight > 0 && !PQisBusy(sconn)) {
        PGresult* r = PQgetResult(sconn);
        if (r == nullptr) continue;  // end of one statement's results
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
          --inflight;
          ++syncs_done;
        } else if (st != PGRES_TUPLES_OK) {
          std::fprintf(stderr, "notify_ceiling: %s\n", PQresultErrorMessage(r));
          PQclear(r);
          return 1;
        }
        PQclear(r);
      }
    }
  }
  const Clock::time_point t_sent = Clock::now();
  // Drain: wait until the listener has everything (or 2 s).
  while (listener.received.load() < sent && seconds_between(t_sent, Clock::now()) < 2.0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const Clock::time_point t_recv = Clock::now();
  listener.counting.store(false);
  listener.stop.store(true);
  lt.join();
  const long long received = listener.received.load();
  const double send_s = seconds_between(t0, t_sent);
  const double recv_s = seconds_between(t0, t_recv);
  std::printf(
      "{\"batch\":%d,\"inflight\":%d,\"payloadBytes\":%d,\"seconds\":%.3f,\"sent\":%lld,\"received\":%lld,"
      "\"sentPerSec\":%.0f,\"notificationsPerSec\":%.0f,\"transactions\":%lld}\n",
      batch, max_inflight, payload_bytes, send_s, sent, received, sent / send_s, received / recv_s, syncs_done);
  PQfinish(sconn);
  PQfinish(lconn);
  return received == sent ? 0 : 3;
}
