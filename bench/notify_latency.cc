// notify_latency: the floor under the latency scenarios, PostgreSQL's own NOTIFY -> LISTEN path.
//
// One sender connection sends `SELECT pg_notify($1,$2)` (prepared) at RATE notifications/s in bursts
// of BURST (one transaction per burst: the statements of a burst share one pipeline sync); LISTENERS
// connections, each on its own thread, LISTEN and record, for every notification, the time from just
// before its statement was sent to its receipt (CLOCK_MONOTONIC, in the payload). No Node.js, no
// Socket.IO: what is left of the bench's latency above this is the adapters' and Socket.IO's.
// Prints one JSON object (milliseconds) on stdout.
//
//   notify_latency <conninfo> [seconds=3] [rate=1000] [burst=1] [listeners=3] [warmup_seconds=1]
//
// Build: bench/build-ceiling.sh (with notify_ceiling). Needs libpq >= 14 (pipeline mode).
#include <libpq-fe.h>
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pg_tool.h"

namespace {

using pg_tool::connect_or_die;
using pg_tool::die;
using pg_tool::exec_or_die;

const char* kChannel = "notify_latency";

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Listener {
  PGconn* conn = nullptr;
  std::atomic<bool> recording{false};
  std::atomic<bool> stop{false};
  std::vector<int64_t> samples;  // ns; only this thread writes it until joined

  void run() {
    const int fd = PQsocket(conn);
    while (!stop.load(std::memory_order_relaxed)) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      if (!PQconsumeInput(conn)) die("listener consume", conn);
      const int64_t t = now_ns();
      while (PGnotify* n = PQnotifies(conn)) {
        if (recording.load(std::memory_order_relaxed)) samples.push_back(t - std::atoll(n->extra));
        PQfreemem(n);
      }
    }
  }
};

double percentile_ms(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()));
  if (i > 0 && static_cast<double>(i) == p / 100.0 * static_cast<double>(sorted.size())) --i;
  return static_cast<double>(sorted[std::min(i, sorted.size() - 1)]) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  pg_tool::program = "notify_latency";
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <conninfo> [seconds=3] [rate=1000] [burst=1] [listeners=3] [warmup_seconds=1]\n",
                 argv[0]);
    return 2;
  }
  const char* conninfo = argv[1];
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  const int rate = argc > 3 ? std::atoi(argv[3]) : 1000;
  const int burst = argc > 4 ? std::atoi(argv[4]) : 1;
  const int nlisteners = argc > 5 ? std::atoi(argv[5]) : 3;
  const double warmup = argc > 6 ? std::atof(argv[6]) : 1.0;
  if (seconds <= 0 || rate < 1 || burst < 1 || nlisteners < 1 || warmup < 0) {
    std::fprintf(stderr, "notify_latency: bad arguments\n");
    return 2;
  }

  std::vector<std::unique_ptr<Listener>> listeners;
  std::vector<std::thread> threads;
  for (int i = 0; i < nlisteners; ++i) {
    auto l = std::make_unique<Listener>();
    l->conn = connect_or_die(conninfo);
    exec_or_die(l->conn, "LISTEN notify_latency");
    listeners.push_back(std::move(l));
  }
  for (auto& l : listeners) threads.emplace_back([p = l.get()] { p->run(); });

  PGconn* s = connect_or_die(conninfo);
  exec_or_die(s, "SET synchronous_commit TO off");  // as the adapter's publisher
  PGresult* r = PQprepare(s, "n", "SELECT pg_catalog.pg_notify($1, $2)", 2, nullptr);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) die("prepare", s);
  PQclear(r);
  if (!PQenterPipelineMode(s)) die("enter pipeline mode", s);

  const int64_t period_ns = static_cast<int64_t>(1e9 * burst / rate);
  const int64_t t0 = now_ns();
  const int64_t t_record = t0 + static_cast<int64_t>(warmup * 1e9);
  const int64_t t_end = t_record + static_cast<int64_t>(seconds * 1e9);
  long long seq = 0, sent_recorded = 0;
  bool recording = false;
  for (int64_t next = t0; next < t_end; next += period_ns) {
    timespec ts{static_cast<time_t>(next / 1000000000), static_cast<long>(next % 1000000000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    if (!recording && now_ns() >= t_record) {
      recording = true;
      for (auto& l : listeners) l->recording.store(true);
    }
    for (int i = 0; i < burst; ++i) {
      const std::string payload = std::to_string(now_ns()) + ":" + std::to_string(++seq);
      const char* values[2] = {kChannel, payload.c_str()};
      if (!PQsendQueryPrepared(s, "n", 2, values, nullptr, nullptr, 0)) die("send", s);
    }
    if (!PQpipelineSync(s)) die("sync", s);
    if (recording) sent_recorded += burst;
    // Wait for this burst's results (blocking): the next burst is due later than one round trip.
    for (;;) {
      PGresult* res = PQgetResult(s);
      if (res == nullptr) continue;  // end of one statement's results
      const ExecStatusType st = PQresultStatus(res);
      PQclear(res);
      if (st == PGRES_PIPELINE_SYNC) break;
      if (st != PGRES_TUPLES_OK) die("notify", s);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last ones arrive
  std::vector<int64_t> all;
  for (size_t i = 0; i < listeners.size(); ++i) {
    listeners[i]->stop.store(true);
    threads[i].join();
    all.insert(all.end(), listeners[i]->samples.begin(), listeners[i]->samples.end());
    PQfinish(listeners[i]->conn);
  }
  PQfinish(s);
  std::sort(all.begin(), all.end());
  std::printf(
      "{\"rate\":%d,\"burst\":%d,\"listeners\":%d,\"sent\":%lld,\"samples\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}\n",
      rate, burst, nlisteners, sent_recorded, all.size(), percentile_ms(all, 50), percentile_ms(all, 99),
      all.empty() ? 0.0 : static_cast<double>(all.back()) / 1e6);
  return 0;
}
