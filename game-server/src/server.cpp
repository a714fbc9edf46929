#include "tickgame/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tickgame/clock.h"
#include "tickgame/usdt.h"

namespace tickgame {

namespace {
constexpr std::size_t kReadBudgetPerWake = 64 * 1024;  // fairness: bytes per session per wake-up
constexpr std::size_t kAoiCap = 256;                   // entities per delta (bounds frame size)
constexpr std::size_t kNpcAiGroups = 4;
}  // namespace

// ---------------------------------------------------------------- Session

Session::Session(GameServer& s, std::uint64_t i, int f, SSL* ssl_, std::size_t max_frame)
    : srv(s), id(i), fd(f), ssl(ssl_), opened_ns(mono_ns()), decoder(max_frame) {}

Session::~Session() {
  if (ssl) SSL_free(ssl);
  if (fd >= 0) ::close(fd);
}

void Session::on_io(std::uint32_t events) {
  if (closed) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) srv.sched_.wake_reader(waiter);
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    if (waiter.writer) srv.sched_.wake_writer(waiter);
    else srv.flush(*this);
  }
}

void GameServer::SignalSource::on_io(std::uint32_t) {
  signalfd_siginfo si;
  while (::read(fd, &si, sizeof si) == sizeof si) srv->request_stop();
}

// ---------------------------------------------------------------- lifecycle

GameServer::GameServer(ServerConfig cfg)
    : cfg_(std::move(cfg)),
      world_(heap_, WorldConfig{1000.0f, 150.0f, cfg_.npcs, cfg_.seed}),
      rng_(cfg_.seed ^ 0x9e3779b97f4a7c15ull) {
  if (cfg_.tick_hz == 0) cfg_.tick_hz = 1;
  faults_.leak_bytes_per_tick = cfg_.inject_leak_bytes_per_tick;
  faults_.coroutine_leak_per_sec = cfg_.inject_coroutine_leak_per_sec;
  faults_.gc_garbage_per_tick = cfg_.inject_gc_garbage_per_tick;
  faults_.blocking_writes = cfg_.inject_blocking_writes;
  faults_.cpu_hog_us = cfg_.inject_cpu_hog_us;
  counters_.tick_hz = cfg_.tick_hz;
  counters_.budget_ns = 1000000000ull / cfg_.tick_hz;
  counters_.start_mono_ns = mono_ns();
  read_buf_.resize(16 * 1024);
  tcp_listener_.sched = &sched_;
  tls_listener_.sched = &sched_;
  signals_.srv = this;
  publish_stats();
}

// ~GameServer() is in admin_http.cpp, where AdminState is complete.

bool GameServer::open_listener(Listener& l, std::uint16_t port, bool tls, std::string& error) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { error = std::string("socket failed: ") + std::strerror(errno); return false; }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, cfg_.bind_address.c_str(), &a.sin_addr) != 1) {
    error = "invalid bind address " + cfg_.bind_address;
    ::close(fd);
    return false;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0) {
    error = "failed to listen on " + cfg_.bind_address + ":" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  l.fd = fd;
  l.tls = tls;
  sched_.watch(fd, EPOLLIN, &l);
  return true;
}

bool GameServer::start(std::string& error) {
  if (!open_listener(tcp_listener_, cfg_.port, false, error)) return false;
  if (cfg_.tls_port != 0) {
    tls_ctx_ = make_server_tls_context(cfg_.tls_cert, cfg_.tls_key, error);
    if (!tls_ctx_) return false;
    if (!open_listener(tls_listener_, cfg_.tls_port, true, error)) return false;
  }
  // SIGINT/SIGTERM arrive through a signalfd in the reactor. They are
  // blocked before the admin thread exists so it inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signals_.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signals_.fd >= 0) sched_.watch(signals_.fd, EPOLLIN, &signals_);
  if (cfg_.admin_port != 0) {
    start_admin();
    if (!admin_) { error = "failed to start admin endpoint on 127.0.0.1:" + std::to_string(cfg_.admin_port); return false; }
  }
  sched_.spawn(acceptor_task(&tcp_listener_), "acceptor");
  if (tls_listener_.fd >= 0) sched_.spawn(acceptor_task(&tls_listener_), "tls_acceptor");
  for (std::size_t g = 0; g < kNpcAiGroups; ++g) sched_.spawn(npc_ai_task(g, kNpcAiGroups), "npc_ai");
  sched_.spawn(world_task(), "world");
  sched_.spawn(gc_task(), "gc");
  sched_.spawn(stats_task(), "stats");
  return true;
}

void GameServer::run() {
  pthread_setname_np(pthread_self(), "tick-main");
  const std::uint64_t period = 1000000000ull / cfg_.tick_hz;
  const std::uint64_t start = mono_ns();
  const std::uint64_t end = cfg_.duration_s > 0 ? start + static_cast<std::uint64_t>(cfg_.duration_s * 1e9) : UINT64_MAX;
  std::uint64_t next_tick = start + period;
  sched_.run_ready();
  while (!stop_requested_.load(std::memory_order_relaxed)) {
    std::uint64_t now = mono_ns();
    if (now >= end) break;
    if (now >= next_tick) {
      run_tick();
      next_tick += period;
      std::uint64_t after = mono_ns();
      if (after >= next_tick + period) {  // overran by more than a period: skip missed slots
        counters_.ticks_skipped += (after - next_tick) / period;
        next_tick = after + period - (after - next_tick) % period;
      }
      // Between ticks: the GC and stats tasks run here.
      sched_.wake_between_ticks_waiters();
      sched_.run_ready();
      reap_sessions();
      continue;
    }
    std::uint64_t wake = std::min({next_tick, sched_.next_timer_deadline(), end});
    std::uint64_t timeout = sched_.ready_count() ? 0 : (wake > now ? wake - now : 0);
    sched_.poll(timeout);
    sched_.fire_timers(mono_ns());
    sched_.run_ready();
    reap_sessions();
  }
  // Clean shutdown: close sessions, then destroy the remaining coroutines.
  for (auto& [id, s] : sessions_) close_session(*s, CloseReason::kShutdown);
  sched_.run_ready();
  reap_sessions();
  stop_admin();
  sched_.destroy_all();
  counters_.coro_live = sched_.live();
  counters_.coro_created = sched_.created();
  counters_.coro_destroyed = sched_.destroyed();
  publish_stats();
  if (cfg_.print_stats_on_exit) std::printf("%s\n", stats_json().dump(2).c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------- coroutines

Task GameServer::acceptor_task(Listener* l) {
  while (co_await sched_.readable(l->waiter)) {
    bool out_of_resources = false;
    for (int i = 0; i < 128; ++i) {
      int fd = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        out_of_resources = errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM;
        break;  // EAGAIN: wait for the next connection
      }
      if (sessions_.size() >= cfg_.max_sessions) {
        ++counters_.sessions_rejected;
        ::close(fd);
        continue;
      }
      open_session(fd, l->tls);
    }
    if (out_of_resources) {
      // The pending connection keeps the (level-triggered) listener readable;
      // stop watching it for a moment instead of spinning on accept().
      ++counters_.accept_backoffs;
      sched_.rewatch(l->fd, 0, l);
      co_await sched_.sleep_for(100'000'000);
      sched_.rewatch(l->fd, EPOLLIN, l);
    }
  }
}

void GameServer::open_session(int fd, bool tls) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (cfg_.sndbuf_bytes > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg_.sndbuf_bytes, sizeof cfg_.sndbuf_bytes);
  SSL* ssl = nullptr;
  if (tls) {
    ssl = SSL_new(tls_ctx_.get());
    if (!ssl) { ::close(fd); ++counters_.tls_failed; return; }
    SSL_set_fd(ssl, fd);
    SSL_set_accept_state(ssl);
  }
  std::uint64_t id = next_session_id_++;
  auto s = std::make_unique<Session>(*this, id, fd, ssl, cfg_.max_frame_bytes);
  Session* sp = s.get();
  if (!sched_.watch(fd, EPOLLIN | EPOLLRDHUP, sp)) return;  // Session dtor closes fd
  sessions_.emplace(id, std::move(s));
  ++counters_.sessions_total;
  TICKGAME_PROBE1(session__open, fd);
  sched_.spawn(session_task(sp), "session");
}

Task GameServer::session_task(Session* s) {
  if (s->ssl) {
    bool done = false;
    while (!done && !s->closed) {
      ERR_clear_error();
      int r = SSL_do_handshake(s->ssl);
      if (r == 1) {
        ++counters_.tls_completed;
        done = true;
        break;
      }
      int e = SSL_get_error(s->ssl, r);
      if (e == SSL_ERROR_WANT_READ) {
        if (!co_await sched_.readable(s->waiter)) break;
      } else if (e == SSL_ERROR_WANT_WRITE) {
        sched_.rewatch(s->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, s);
        bool ok = co_await sched_.writable(s->waiter);
        if (!ok) break;
        sched_.rewatch(s->fd, EPOLLIN | EPOLLRDHUP, s);
      } else {
        ++counters_.tls_failed;
        close_session(*s, CloseReason::kTlsHandshakeFailed);
        break;
      }
    }
    if (!done) {
      if (!s->closed) {
        ++counters_.tls_failed;
        close_session(*s, CloseReason::kTlsHandshakeFailed);
      }
      s->coroutine_done = true;
      co_return;
    }
  }
  while (!s->closed) {
    const ReadOutcome r = read_available(*s);
    if (r == ReadOutcome::kClosed) break;
    if (r == ReadOutcome::kBudgetSpent) {
      // More may be buffered inside OpenSSL, where epoll cannot see it: yield
      // to other work and come back without waiting for the socket.
      co_await sched_.sleep_for(0);
      continue;
    }
    if (!co_await sched_.readable(s->waiter)) break;
  }
  s->coroutine_done = true;
}

Task GameServer::world_task() {
  for (;;) {
    co_await sched_.next_tick();
    // Inputs that arrived since the last tick, then the simulation step.
    for (auto& [id, s] : sessions_) {
      if (s->has_input && s->player) {
        world_.apply_input(s->player, s->last_input);
        s->has_input = false;
      }
    }
    world_.step(arena_);
  }
}

Task GameServer::npc_ai_task(std::size_t group, std::size_t groups) {
  for (;;) {
    co_await sched_.next_tick();
    world_.npc_think(group, groups);
  }
}

Task GameServer::gc_task() {
  for (;;) {
    co_await sched_.between_ticks();
    ++ticks_since_gc_;
    if (ticks_since_gc_ >= cfg_.gc_every_ticks || heap_.allocated_since_collect() >= cfg_.gc_garbage_threshold) {
      run_gc();
      ticks_since_gc_ = 0;
    }
  }
}

Task GameServer::stats_task() {
  for (;;) {
    co_await sched_.between_ticks();
    publish_stats();
  }
}

// ---------------------------------------------------------------- I/O

GameServer::ReadOutcome GameServer::read_available(Session& s) {
  std::size_t budget = kReadBudgetPerWake;
  while (!s.closed && budget > 0) {
    std::size_t cap = std::min({read_buf_.size(), s.decoder.feed_capacity(), budget});
    if (cap == 0) cap = 1;  // cannot happen after draining; be safe
    long n;
    if (s.ssl) {
      ERR_clear_error();
      int r = SSL_read(s.ssl, read_buf_.data(), static_cast<int>(cap));
      if (r > 0) {
        n = r;
      } else {
        int e = SSL_get_error(s.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          flush(s);  // answers (pongs) go out now, not at the next tick
          return s.closed ? ReadOutcome::kClosed : ReadOutcome::kDrained;
        }
        close_session(s, e == SSL_ERROR_ZERO_RETURN ? CloseReason::kEof : CloseReason::kReadError);
        return ReadOutcome::kClosed;
      }
    } else {
      n = ::recv(s.fd, read_buf_.data(), cap, 0);
      if (n == 0) { close_session(s, CloseReason::kEof); return ReadOutcome::kClosed; }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) { flush(s); return s.closed ? ReadOutcome::kClosed : ReadOutcome::kDrained; }
        if (errno == EINTR) continue;
        close_session(s, CloseReason::kReadError);
        return ReadOutcome::kClosed;
      }
    }
    counters_.bytes_in += static_cast<std::uint64_t>(n);
    budget -= std::min<std::size_t>(budget, static_cast<std::size_t>(n));
    s.decoder.feed(read_buf_.data(), static_cast<std::size_t>(n));
    while (auto f = s.decoder.next()) {
      ++counters_.frames_in;
      handle_frame(s, *f);
      if (s.closed) return ReadOutcome::kClosed;
    }
    if (s.decoder.error() != FrameError::kNone) {
      frame_error(s, s.decoder.error());
      return ReadOutcome::kClosed;
    }
  }
  flush(s);
  if (s.closed) return ReadOutcome::kClosed;
  return budget == 0 ? ReadOutcome::kBudgetSpent : ReadOutcome::kDrained;
}

void GameServer::frame_error(Session& s, FrameError e) {
  ++counters_.frame_errors[static_cast<std::size_t>(e)];
  close_session(s, CloseReason::kFrameError);
}

void GameServer::handle_frame(Session& s, const FrameView& f) {
  switch (f.type) {
    case MsgType::kLogin: {
      if (s.logged_in) return frame_error(s, FrameError::kDuplicateLogin);
      Login m;
      if (!decode_login(f.payload, m)) return frame_error(s, FrameError::kBadPayload);
      s.logged_in = true;
      s.player = world_.spawn_player();
      scratch_.clear();
      encode_welcome(scratch_, Welcome{s.player->id, static_cast<std::uint16_t>(cfg_.tick_hz), tick_});
      enqueue(s, scratch_);
      return;
    }
    case MsgType::kInput: {
      if (!s.logged_in) return frame_error(s, FrameError::kNotLoggedIn);
      Input in;
      if (!decode_input(f.payload, in)) return frame_error(s, FrameError::kBadPayload);
      s.last_input = in;
      s.has_input = true;
      return;
    }
    case MsgType::kChat: {
      if (!s.logged_in) return frame_error(s, FrameError::kNotLoggedIn);
      Chat c;
      if (!decode_chat(f.payload, c)) return frame_error(s, FrameError::kBadPayload);
      broadcast_chat(s, c.text);
      return;
    }
    case MsgType::kPing: {
      if (!s.logged_in) return frame_error(s, FrameError::kNotLoggedIn);
      Ping p;
      if (!decode_ping(f.payload, p)) return frame_error(s, FrameError::kBadPayload);
      scratch_.clear();
      encode_pong(scratch_, Pong{p.client_time_ns, p.seq, tick_});
      enqueue(s, scratch_);
      return;
    }
    default:
      return frame_error(s, FrameError::kUnknownType);
  }
}

void GameServer::broadcast_chat(Session& from, const std::string& text) {
  if (!from.player) return;
  std::vector<std::uint8_t> frame;
  encode_chat_out(frame, from.player->id, text);
  const float r2 = world_.config().aoi_radius * world_.config().aoi_radius;
  for (auto& [id, s] : sessions_) {
    if (s->closed || !s->player) continue;
    float dx = s->player->x - from.player->x, dy = s->player->y - from.player->y;
    if (dx * dx + dy * dy <= r2 && enqueue(*s, frame) && s.get() != &from) flush(*s);
  }
}

bool GameServer::enqueue(Session& s, std::span<const std::uint8_t> frame) {
  if (s.closed) return false;
  if (s.pending() + frame.size() > cfg_.max_outbound_bytes) {
    // A slow reader: the client is not draining its socket.
    if (!s.counted_slow) { s.counted_slow = true; ++counters_.slow_readers; }
    if (!faults_.blocking_writes.load(std::memory_order_relaxed)) {
      close_session(s, CloseReason::kSlowReader);
      return false;
    }
    std::uint64_t t0 = mono_ns();
    long n = blocking_write_to_slow_client(s.fd, s.ssl, s.out.data() + s.out_off, s.pending(), cfg_.blocking_write_timeout_ms);
    counters_.blocking_write_ns += mono_ns() - t0;
    ++counters_.blocking_writes;
    if (n < 0) { close_session(s, CloseReason::kWriteError); return false; }
    account_written(s, static_cast<std::size_t>(n));
    if (s.pending() + frame.size() > cfg_.max_outbound_bytes) {
      ++counters_.frames_dropped;
      return false;
    }
  }
  if (s.out_off > 0 && s.out_off >= s.out.size() / 2) {
    s.out.erase(s.out.begin(), s.out.begin() + static_cast<std::ptrdiff_t>(s.out_off));
    s.out_off = 0;
  }
  s.out.insert(s.out.end(), frame.begin(), frame.end());
  s.enqueued_total += frame.size();
  s.frame_ends.push_back(s.enqueued_total);
  return true;
}

void GameServer::account_written(Session& s, std::size_t n) {
  s.out_off += n;
  s.written_total += n;
  counters_.bytes_out += n;
  while (!s.frame_ends.empty() && s.frame_ends.front() <= s.written_total) {
    s.frame_ends.pop_front();
    ++counters_.frames_out;
  }
  if (s.out_off == s.out.size()) {
    s.out.clear();
    s.out_off = 0;
  }
}

void GameServer::flush(Session& s) {
  while (!s.closed && s.pending() > 0) {
    long n;
    if (s.ssl) {
      if (!SSL_is_init_finished(s.ssl)) return;  // the handshake coroutine owns the socket
      ERR_clear_error();
      int r = SSL_write(s.ssl, s.out.data() + s.out_off, static_cast<int>(std::min<std::size_t>(s.pending(), 1 << 30)));
      if (r > 0) {
        n = r;
      } else {
        int e = SSL_get_error(s.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
        close_session(s, CloseReason::kWriteError);
        return;
      }
    } else {
      n = ::send(s.fd, s.out.data() + s.out_off, s.pending(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_session(s, CloseReason::kWriteError);
        return;
      }
    }
    account_written(s, static_cast<std::size_t>(n));
  }
  bool need = s.pending() > 0;
  if (need != s.want_write && !s.closed) {
    s.want_write = need;
    sched_.rewatch(s.fd, EPOLLIN | EPOLLRDHUP | (need ? EPOLLOUT : 0u), &s);
  }
}

void GameServer::close_session(Session& s, CloseReason why) {
  if (s.closed) return;
  s.closed = true;
  ++counters_.close_reasons[static_cast<std::size_t>(why)];
  TICKGAME_PROBE1(session__close, s.fd);
  sched_.unwatch(s.fd);
  // Best-effort close_notify (non-blocking: if it does not fit, it is dropped).
  if (s.ssl && SSL_is_init_finished(s.ssl) && why != CloseReason::kReadError && why != CloseReason::kWriteError) {
    ERR_clear_error();
    SSL_shutdown(s.ssl);
  }
  if (s.player) {
    world_.remove(s.player);
    s.player = nullptr;
  }
  // The session coroutine wakes up, sees `closed` and finishes; the Session
  // (and its fd) is freed by reap_sessions() once it has.
  sched_.cancel(s.waiter);
  closed_sessions_.push_back(&s);
}

void GameServer::reap_sessions() {
  if (closed_sessions_.empty()) return;
  std::vector<Session*> keep;
  for (Session* s : closed_sessions_) {
    if (s->coroutine_done) sessions_.erase(s->id);
    else keep.push_back(s);
  }
  closed_sessions_.swap(keep);
}

// ---------------------------------------------------------------- tick

void GameServer::run_tick() {
  const std::uint64_t tick = tick_ + 1;
  // tick__begin/tick__end bracket exactly what t0..t1 measures. t0 is taken
  // before the begin probe and t1 before the end probe: each side then
  // includes one probe trap (ours the begin trap, a tracer's mostly the end
  // trap), which keeps the two measurements within a few microseconds.
  const std::uint64_t t0 = mono_ns();
  TICKGAME_PROBE1(tick__begin, tick);
  tick_body(tick);
  const std::uint64_t t1 = mono_ns();
  const std::uint64_t dur = t1 - t0;
  TICKGAME_PROBE2(tick__end, tick, dur);
  tick_ = tick;
  counters_.ticks = tick;
  counters_.tick_last_ns = dur;
  counters_.tick_total_ns += dur;
  counters_.tick_max_ns = std::max(counters_.tick_max_ns, dur);
  if (dur > counters_.budget_ns) ++counters_.ticks_over_budget;
  counters_.tick_window[(tick - 1) % kTickWindow] = dur;
}

void GameServer::tick_body(std::uint64_t tick) {
  tick_ = tick;  // messages encoded during this tick carry its number
  // Simulation: the npc_ai and world coroutines wait on next_tick().
  sched_.wake_tick_waiters();
  sched_.run_ready();

  // Faults are applied where a real bug would sit: inside the tick.
  const double hz = static_cast<double>(cfg_.tick_hz);
  if (std::uint64_t b = faults_.leak_bytes_per_tick.load(std::memory_order_relaxed)) {
    if (inject_leak_bytes(b)) {
      counters_.leak_bytes += b;
      ++counters_.leak_allocations;
    }
  }
  if (std::uint64_t n = faults_.gc_garbage_per_tick.load(std::memory_order_relaxed)) inject_gc_garbage(heap_, n, rng_);
  if (double r = faults_.coroutine_leak_per_sec.load(std::memory_order_relaxed); r > 0) {
    coroutine_leak_credit_ += r / hz;
    while (coroutine_leak_credit_ >= 1.0) {
      inject_coroutine_leak(sched_);
      ++counters_.coro_leaked;
      coroutine_leak_credit_ -= 1.0;
    }
    sched_.run_ready();  // let the leaked tasks reach their forever-suspension
  } else {
    coroutine_leak_credit_ = 0;
  }
  if (std::uint64_t us = faults_.cpu_hog_us.load(std::memory_order_relaxed)) inject_cpu_hog(us);

  send_deltas(tick);

  // Sessions that never logged in are closed once a second is checked.
  if (tick % cfg_.tick_hz == 0) {
    const std::uint64_t limit = static_cast<std::uint64_t>(cfg_.login_timeout_s * 1e9);
    const std::uint64_t now = mono_ns();
    for (auto& [id, s] : sessions_) {
      if (!s->closed && !s->logged_in && now - s->opened_ns > limit) close_session(*s, CloseReason::kLoginTimeout);
    }
  }
  reset_arena();
}

void GameServer::send_deltas(std::uint64_t tick) {
  const float radius = world_.config().aoi_radius;
  for (auto& [id, sp] : sessions_) {
    Session& s = *sp;
    if (s.closed || !s.player) continue;
    // Per-session scratch lives in the tick arena and vanishes at reset.
    std::pmr::vector<Entity*> near(&arena_);
    near.reserve(64);
    world_.query(s.player->x, s.player->y, radius, near, kAoiCap);
    std::sort(near.begin(), near.end(), [](Entity* a, Entity* b) { return a->id < b->id; });
    std::pmr::vector<EntityUpdate> updates(&arena_);
    std::pmr::vector<std::uint32_t> removed(&arena_);
    updates.reserve(near.size());
    std::size_t k = 0;
    for (Entity* e : near) {
      while (k < s.known.size() && s.known[k] < e->id) removed.push_back(s.known[k++]);
      bool known = k < s.known.size() && s.known[k] == e->id;
      if (known) ++k;
      if (!known || e->changed) updates.push_back(EntityUpdate{e->id, static_cast<std::uint8_t>(e->kind), e->x, e->y, e->hp});
    }
    while (k < s.known.size()) removed.push_back(s.known[k++]);
    s.known.clear();
    for (Entity* e : near) s.known.push_back(e->id);
    std::pmr::vector<std::uint8_t> frame(&arena_);
    frame.reserve(kFrameHeaderBytes + 12 + updates.size() * kEntityUpdateBytes + removed.size() * 4);
    encode_world_delta(frame, tick, updates, removed);
    if (enqueue(s, frame)) flush(s);
  }
}

void GameServer::reset_arena() {
  const std::uint64_t used = arena_.bytes_used();
  const std::uint64_t t0 = mono_ns();
  TICKGAME_PROBE1(arena__reset__begin, used);
  arena_.reset();
  const std::uint64_t t1 = mono_ns();
  TICKGAME_PROBE1(arena__reset__end, used);
  const std::uint64_t d = t1 - t0;
  ++counters_.arena_resets;
  counters_.arena_total_reset_ns += d;
  counters_.arena_max_reset_ns = std::max(counters_.arena_max_reset_ns, d);
  counters_.arena_bytes_last = used;
  counters_.arena_bytes_max = std::max<std::uint64_t>(counters_.arena_bytes_max, used);
  counters_.arena_bytes_reserved = arena_.bytes_reserved();
  counters_.arena_chunks = arena_.chunk_count();
  counters_.arena_chunk_mallocs = arena_.chunk_mallocs();
}

void GameServer::run_gc() {
  const std::uint64_t cycle = counters_.gc_cycles + 1;
  // gc__begin/gc__end bracket exactly what t0..t1 measures.
  const std::uint64_t t0 = mono_ns();
  TICKGAME_PROBE1(gc__begin, cycle);
  EntityHeap::CollectResult r = heap_.collect([this](const std::function<void(Entity*)>& push) {
    world_.visit_roots(push);
    for (auto& [id, s] : sessions_) push(s->player);
  });
  const std::uint64_t t1 = mono_ns();
  TICKGAME_PROBE3(gc__end, cycle, r.marked, r.freed);
  const std::uint64_t pause = t1 - t0;
  counters_.gc_cycles = cycle;
  counters_.gc_total_pause_ns += pause;
  counters_.gc_max_pause_ns = std::max(counters_.gc_max_pause_ns, pause);
  counters_.gc_last_pause_ns = pause;
  counters_.gc_last_marked = r.marked;
  counters_.gc_last_freed = r.freed;
  counters_.gc_freed_total += r.freed;
}

void GameServer::publish_stats() {
  counters_.published_mono_ns = mono_ns();
  counters_.coro_live = sched_.live();
  counters_.coro_created = sched_.created();
  counters_.coro_destroyed = sched_.destroyed();
  counters_.coro_failed = sched_.failed();
  counters_.gc_heap_entities = heap_.size();
  std::uint64_t live = 0;
  for (auto& [id, s] : sessions_) live += !s->closed;
  counters_.sessions_live = live;
  WorldCounts wc = world_.counts();
  counters_.world_players = wc.players;
  counters_.world_npcs = wc.npcs;
  counters_.world_projectiles = wc.projectiles;
  counters_.world_effects = wc.effects;
  counters_.damage_events = world_.damage_events_total();
  counters_.kills = world_.kills_total();
  board_.publish(counters_);
}

}  // namespace tickgame
