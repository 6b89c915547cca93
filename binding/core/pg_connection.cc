#include "core/pg_connection.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <random>

namespace pgadapter {

namespace {

// libpq prints server notices to stderr by default; inside someone's server that is noise.
void ignore_notice(void*, const char*) {}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

uint32_t jitter(uint32_t delay_ms) {
  static std::minstd_rand rng{std::random_device{}()};
  // Full delay in [delay/2, delay]: servers that lost the database together do not retry in step.
  std::uniform_int_distribution<uint32_t> dist(delay_ms / 2, delay_ms);
  return dist(rng);
}

// libpq 14's pipeline functions, looked up at run time in the libpq we are linked to: the prebuilt
// binary must still load against libpq 13 (RHEL 9), which lacks them (then commands run one at a time).
struct PipelineApi {
  int (*enter)(PGconn*) = nullptr;  // PQenterPipelineMode
  int (*sync)(PGconn*) = nullptr;   // PQpipelineSync
};

const PipelineApi* pipeline_api() {
  static const PipelineApi api = [] {
    PipelineApi a;
    // The addon's dependencies are not in the global scope (Node loads addons RTLD_LOCAL): ask the library
    // that holds a libpq function we call anyway.
    void* lib = nullptr;
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&PQconnectStartParams), &info) != 0 && info.dli_fname != nullptr) {
      lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);  // already loaded: a reference, kept for good
    }
    void* scope = lib != nullptr ? lib : RTLD_DEFAULT;
    a.enter = reinterpret_cast<int (*)(PGconn*)>(dlsym(scope, "PQenterPipelineMode"));
    a.sync = reinterpret_cast<int (*)(PGconn*)>(dlsym(scope, "PQpipelineSync"));
    return a;
  }();
  return api.enter != nullptr && api.sync != nullptr ? &api : nullptr;
}

}  // namespace

PgConnection::PgConnection(uv_loop_t* loop, std::string name, ReconnectPolicy policy, Hooks hooks)
    : loop_(loop),
      name_(std::move(name)),
      policy_(policy),
      hooks_(std::move(hooks)),
      // PGADAPTER_NO_PIPELINE (for the tests) runs the libpq 13 path with any libpq.
      pipeline_allowed_(pipeline_api() != nullptr && std::getenv("PGADAPTER_NO_PIPELINE") == nullptr) {}

PgConnection::~PgConnection() { close(); }

void PgConnection::start() {
  if (state_ != State::Idle) return;
  begin_connect();
}

void PgConnection::begin_connect() {
  state_ = State::WaitingParams;
  const uint64_t attempt = ++attempt_;
  // One deadline for the whole attempt, the parameters included (a password function may never answer).
  if (!start_timer_or_fail(connect_timer_.start(loop_, this, policy_.connect_timeout_ms, 0, /*keep_alive=*/true))) return;
  update_keepalive();
  std::weak_ptr<bool> alive = alive_;
  hooks_.get_params([this, alive, attempt](bool ok, ConnParams params, std::string error) {
    if (alive.expired()) return;
    on_params(attempt, ok, std::move(params), std::move(error));
  });
}

void PgConnection::on_params(uint64_t attempt, bool ok, ConnParams params, std::string error) {
  if (state_ != State::WaitingParams || attempt != attempt_) return;
  if (!ok) return fail("cannot get connection parameters: " + error);

  std::vector<const char*> keys, values;
  for (size_t i = 0; i < params.keys.size(); ++i) {
    keys.push_back(params.keys[i].c_str());
    values.push_back(params.values[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_.reset(PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/1));
  if (!conn_) return fail("out of memory allocating a connection");
  if (PQstatus(conn_.get()) == CONNECTION_BAD) return fail(conn_error());
  PQsetNoticeProcessor(conn_.get(), ignore_notice, nullptr);

  state_ = State::Connecting;
  // libpq's connect_timeout only applies to blocking connects: connect_timer_ times the attempt.
  // Before the first PQconnectPoll, wait until the socket is writable (libpq docs).
  watch(UV_WRITABLE);
}

void PgConnection::watch(int events) {
  const int fd = PQsocket(conn_.get());
  if (fd < 0) return fail(conn_error());
  // The socket may change between connect steps (e.g. ::1 then 127.0.0.1), and a closed fd's
  // number can be reused: while connecting, the poll handle is made anew at every step.
  if (!poll_ || fd != poll_fd_ || state_ == State::Connecting) {
    uv_poll_t* p = poll_.allocate();
    if (const int r = uv_poll_init(loop_, p, fd); r != 0) {
      poll_.discard();
      return fail(std::string("cannot watch the connection's socket: ") + uv_strerror(r));
    }
    p->data = this;
    poll_fd_ = fd;
    poll_events_ = 0;
  }
  if (events != poll_events_) {
    if (const int r = uv_poll_start(poll_.get(), events, &PgConnection::on_poll); r != 0) {
      return fail(std::string("cannot watch the connection's socket: ") + uv_strerror(r));
    }
    poll_events_ = events;
  }
  update_keepalive();
}

void PgConnection::update_keepalive() {
  if (!policy_.weak) return;
  const bool busy = !idle() || (hooks_.has_work && hooks_.has_work());
  if (poll_) {
    auto* h = reinterpret_cast<uv_handle_t*>(poll_.get());
    busy ? uv_ref(h) : uv_unref(h);
  }
  backoff_timer_.set_ref(busy);
  connect_timer_.set_ref(busy);
}

void PgConnection::on_poll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<PgConnection*>(handle->data);
  if (self == nullptr) return;
  // On an error status (POLLERR: e.g. a reset after the server went away while the loop was busy) libuv
  // has stopped the handle: forget the mask, so the next watch() starts it again.
  if (status < 0) self->poll_events_ = 0;
  if (self->state_ == State::Connecting) {
    self->handle_connecting();
  } else if (self->state_ == State::Ready) {
    self->handle_ready_io(status, events);
  }
}

void PgConnection::handle_connecting() {
  // On POLLERR/POLLHUP libuv reports an error status; PQconnectPoll gives the real reason.
  switch (PQconnectPoll(conn_.get())) {
    case PGRES_POLLING_OK:
      return became_ready();
    case PGRES_POLLING_READING:
      return watch(UV_READABLE);
    case PGRES_POLLING_WRITING:
      return watch(UV_WRITABLE);
    default:
      return fail(conn_error());
  }
}

void PgConnection::became_ready() {
  connect_timer_.stop();
  if (PQsetnonblocking(conn_.get(), 1) != 0) return fail(conn_error());
  // Only the extended protocol in pipeline mode (PQsendQueryParams/Prepared/PQsendPrepare): keep it so.
  pipelined_ = pipeline_allowed_ && pipeline_api()->enter(conn_.get()) == 1;
  state_ = State::Ready;
  failures_ = 0;
  backend_pid_ = PQbackendPID(conn_.get());
  last_activity_ = uv_now(loop_);
  overdue_ = false;
  watch(UV_READABLE);
  if (state_ != State::Ready) return;
  // One ticking timer runs the health check and watches the response deadline.
  uint64_t tick = policy_.health_check_ms;
  if (policy_.response_timeout_ms > 0) {
    const uint64_t quarter = std::max<uint64_t>(policy_.response_timeout_ms / 4, 10);
    tick = tick == 0 ? quarter : std::min<uint64_t>(tick, quarter);
  }
  if (tick > 0 && !start_timer_or_fail(health_timer_.start(loop_, this, tick, tick))) return;
  std::weak_ptr<bool> alive = alive_;
  if (hooks_.on_ready) hooks_.on_ready();
  if (alive.expired() || state_ != State::Ready) return;
  pump();
}

void PgConnection::handle_ready_io(int status, int events) {
  std::weak_ptr<bool> alive = alive_;
  if (status == 0 && (events & UV_WRITABLE)) {
    flush();
    if (state_ != State::Ready) return;
  }
  if (status != 0 || (events & UV_READABLE)) {
    if (PQconsumeInput(conn_.get()) == 0) return fail(conn_error());
  }
  // A backend killed by pg_terminate_backend may only show here.
  if (PQstatus(conn_.get()) == CONNECTION_BAD) return fail(conn_error());
  last_activity_ = uv_now(loop_);
  overdue_ = false;
  // libuv stopped the handle on the error status: watch again (the next read tells what is left).
  if (poll_events_ == 0) {
    flush();
    if (alive.expired() || state_ != State::Ready) return;
  }

  processing_ = true;
  bool ended = false;  // the previous PQgetResult returned null
  while (!in_flight_.empty() && state_ == State::Ready && PQisBusy(conn_.get()) == 0) {
    PGresult* r = PQgetResult(conn_.get());
    if (r == nullptr) {
      if (!pipelined_) {
        complete_front();  // one command at a time: null ends it
        if (alive.expired()) return;
        continue;
      }
      // Pipelined: null ends the command's results; it completes at its sync (its implicit commit, where
      // PostgreSQL sends its notifications). Two nulls in a row: libpq has nothing more for now.
      if (ended) break;
      ended = true;
      continue;
    }
    ended = false;
    // Notifications that came before this result in the stream are handed over before it: libpq
    // parses lazily, so what it holds now preceded the result (PostgreSQL 14+ also sends some
    // between the result and ReadyForQuery: those come after). Recovery relies on this order.
    deliver_notifications();
    if (alive.expired()) {
      PQclear(r);
      return;
    }
    if (state_ != State::Ready || in_flight_.empty()) {
      PQclear(r);
      break;
    }
    if (pipelined_ && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      complete_front();
      if (alive.expired()) return;
      continue;
    }
    // Keep the first error, else the last result.
    PgResultPtr& kept = in_flight_.front().result;
    if (!kept || PQresultStatus(kept.get()) != PGRES_FATAL_ERROR) {
      kept.reset(r);
    } else {
      PQclear(r);
    }
  }
  processing_ = false;
  if (state_ != State::Ready) return;
  deliver_notifications();
  if (alive.expired() || state_ != State::Ready) return;
  if (idle() && hooks_.on_idle) hooks_.on_idle();
  if (!alive.expired() && state_ == State::Ready) update_keepalive();
}

// The oldest command in flight is complete: its callback, then what waits is sent.
void PgConnection::complete_front() {
  InFlight done = std::move(in_flight_.front());
  in_flight_.pop_front();
  std::string error;
  if (done.result) {
    const ExecStatusType st = PQresultStatus(done.result.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = trim(PQresultErrorMessage(done.result.get()));
  }
  std::weak_ptr<bool> alive = alive_;
  if (done.query.done) done.query.done(done.result.get(), error);
  if (alive.expired() || state_ != State::Ready) return;
  pump();
}

void PgConnection::deliver_notifications() {
  std::vector<Notification> batch;
  while (PGnotify* n = PQnotifies(conn_.get())) {
    Notification note;
    note.channel = n->relname ? n->relname : "";
    note.payload = n->extra ? n->extra : "";
    note.backend_pid = n->be_pid;
    PQfreemem(n);
    batch.push_back(std::move(note));
  }
  if (!batch.empty() && hooks_.on_notifications) hooks_.on_notifications(batch);
}

void PgConnection::enqueue(Query q) {
  if (state_ == State::Closed) return;
  queue_.push_back(std::move(q));
  if (!processing_) pump();
}

void PgConnection::enqueue_front(std::vector<Query> setup) {
  if (state_ == State::Closed) return;
  for (auto it = setup.rbegin(); it != setup.rend(); ++it) {
    it->per_connection = true;
    queue_.push_front(std::move(*it));
  }
  if (!processing_) pump();
}

void PgConnection::pump() {
  bool sent = false;
  while (state_ == State::Ready && !queue_.empty() && in_flight_.size() < depth()) {
    // The response deadline runs from the oldest command in flight.
    if (in_flight_.empty()) overdue_ = false;
    in_flight_.push_back(InFlight{std::move(queue_.front()), uv_now(loop_), nullptr});
    queue_.pop_front();
    if (!send(in_flight_.back().query)) return fail(conn_error());
    sent = true;
  }
  if (sent) flush();
}

bool PgConnection::send(const Query& q) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  values.reserve(q.params.size());
  lengths.reserve(q.params.size());
  for (const auto& p : q.params) {
    values.push_back(p.data());
    lengths.push_back(static_cast<int>(p.size()));
  }
  const int n = static_cast<int>(q.params.size());
  const int* formats = q.param_formats.empty() ? nullptr : q.param_formats.data();
  int sent;
  if (q.prepare) {
    sent = PQsendPrepare(conn_.get(), q.name.c_str(), q.sql.c_str(), n, nullptr);
  } else if (!q.name.empty()) {
    sent = PQsendQueryPrepared(conn_.get(), q.name.c_str(), n, values.data(), lengths.data(), formats, q.result_format);
  } else {
    sent = PQsendQueryParams(conn_.get(), q.sql.c_str(), n, nullptr, values.data(), lengths.data(), formats,
                             q.result_format);
  }
  // Its own sync: its own implicit transaction, committed (and its notifications sent) at the sync.
  return sent != 0 && (!pipelined_ || pipeline_api()->sync(conn_.get()) == 1);
}

void PgConnection::flush() {
  const int r = PQflush(conn_.get());
  if (r < 0) return fail(conn_error());
  // Still data to send: also wait for writability (and keep reading, so the server never blocks on us).
  watch(r == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
}

void PgConnection::fail(const std::string& error) {
  if (state_ == State::Closed) return;
  const bool was_ready = state_ == State::Ready;
  connect_timer_.stop();
  health_timer_.stop();
  poll_.reset();  // stop watching the fd before PQfinish closes it
  poll_fd_ = -1;
  poll_events_ = 0;
  conn_.reset();
  backend_pid_ = 0;
  processing_ = false;
  pipelined_ = false;
  state_ = State::Backoff;

  std::weak_ptr<bool> alive = alive_;
  // The commands in flight may or may not have run: each is reported as failed, in order, never resent.
  std::deque<InFlight> lost = std::move(in_flight_);
  in_flight_.clear();
  for (InFlight& f : lost) {
    if (!f.query.done) continue;
    f.query.done(nullptr, "connection lost: " + error);
    if (alive.expired()) return;
  }
  if (state_ != State::Backoff) return;
  for (auto it = queue_.begin(); it != queue_.end();) {
    it = it->per_connection ? queue_.erase(it) : std::next(it);
  }
  if (hooks_.on_down) hooks_.on_down(error, was_ready);
  if (alive.expired() || state_ != State::Backoff) return;

  uint64_t delay = policy_.initial_delay_ms;
  for (uint32_t i = 0; i < failures_ && delay < policy_.max_delay_ms; ++i) delay *= 2;
  delay = std::min<uint64_t>(delay, policy_.max_delay_ms);
  ++failures_;
  // A lost connection is retried at once the first time; later attempts back off.
  backoff_timer_.start(loop_, this, was_ready ? 0 : jitter(static_cast<uint32_t>(delay)), 0, /*keep_alive=*/true);
  update_keepalive();
}

void PgConnection::on_connect_timeout() {
  if (state_ == State::WaitingParams) fail("timeout expired waiting for the connection parameters (password function)");
  if (state_ == State::Connecting) fail("timeout expired while connecting");
}

// A timer that libuv refused is a connection that cannot keep its promises: treat it as a failed attempt.
bool PgConnection::start_timer_or_fail(bool started) {
  if (!started) fail("cannot start a timer");
  return started;
}

void PgConnection::on_backoff_done() {
  backoff_timer_.stop();
  if (state_ == State::Backoff) begin_connect();
}

void PgConnection::on_health_tick() {
  if (state_ != State::Ready) return;
  const uint64_t now = uv_now(loop_);
  if (!in_flight_.empty()) {
    if (policy_.response_timeout_ms == 0) return;
    const uint64_t since = std::max(in_flight_.front().sent_at, last_activity_);
    const bool overdue = now - since >= policy_.response_timeout_ms;
    // Overdue at two ticks in a row, with the loop's poll phases in between: nothing was waiting to be read
    // (after a long synchronous task the timers run before the poll phase, so one tick is not enough).
    if (overdue && overdue_) {
      return fail("no answer from PostgreSQL for " + std::to_string(now - since) +
                  " ms (responseTimeout)");
    }
    overdue_ = overdue;
    return;
  }
  if (!idle() || policy_.health_check_ms == 0) return;
  if (now - last_activity_ < policy_.health_check_ms) return;
  // A round trip on an idle connection: with keepalives and tcp_user_timeout a dead peer shows fast.
  Query q;
  q.sql = "SELECT 1";
  q.per_connection = true;
  enqueue(std::move(q));
}

void PgConnection::close() {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  connect_timer_.stop();
  backoff_timer_.stop();
  health_timer_.stop();
  poll_.reset();
  conn_.reset();
  pipelined_ = false;
  // Taken out first: a callback may enqueue (ignored now) or run JavaScript that closes again.
  std::deque<Query> dropped = std::move(queue_);
  queue_.clear();
  for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it) dropped.push_front(std::move(it->query));
  in_flight_.clear();
  std::weak_ptr<bool> alive = alive_;
  for (Query& q : dropped) {
    if (q.per_connection || !q.done) continue;
    q.done(nullptr, "the adapter is closed");
    if (alive.expired()) return;
  }
}

std::string PgConnection::conn_error() const {
  std::string msg = conn_ ? trim(PQerrorMessage(conn_.get())) : std::string();
  return msg.empty() ? std::string("connection failed") : msg;
}

}  // namespace pgadapter
