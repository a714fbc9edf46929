#include "tickgame/bots.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <thread>

#include "tickgame/clock.h"
#include "tickgame/protocol.h"
#include "tickgame/tls.h"

namespace tickgame {

void BotsSummary::merge(const BotsSummary& o) {
  attempted += o.attempted; established += o.established; failed += o.failed;
  tls_attempted += o.tls_attempted; tls_ok += o.tls_ok; tls_failed += o.tls_failed;
  bytes_sent += o.bytes_sent; bytes_received += o.bytes_received;
  frames_sent += o.frames_sent; frames_received += o.frames_received;
  welcomes += o.welcomes; deltas += o.deltas; pongs += o.pongs; chats_received += o.chats_received;
  chats_sent += o.chats_sent; pings_sent += o.pings_sent; inputs_sent += o.inputs_sent;
  slow_readers += o.slow_readers; closed_cleanly += o.closed_cleanly;
  slow_reader_ports.insert(slow_reader_ports.end(), o.slow_reader_ports.begin(), o.slow_reader_ports.end());
  connect_us.insert(connect_us.end(), o.connect_us.begin(), o.connect_us.end());
  handshake_us.insert(handshake_us.end(), o.handshake_us.begin(), o.handshake_us.end());
  rtt_us.insert(rtt_us.end(), o.rtt_us.begin(), o.rtt_us.end());
  for (auto& [k, v] : o.errors) errors[k] += v;
}

namespace {

enum class BotState { kIdle, kConnecting, kHandshaking, kRunning, kDraining, kDone };

struct Bot {
  int index = 0;
  bool tls = false;
  bool slow = false;
  BotState state = BotState::kIdle;
  int fd = -1;
  SSL* ssl = nullptr;
  std::uint64_t connect_start_ns = 0, handshake_start_ns = 0;
  FrameDecoder decoder{kDefaultMaxFrameBytes};
  std::vector<std::uint8_t> out;
  std::size_t out_off = 0;
  std::uint64_t enqueued_total = 0, written_total = 0;
  std::deque<std::uint64_t> frame_ends;
  std::uint32_t events = 0;  // currently registered epoll events
  bool shut_wr = false;
  std::uint32_t input_seq = 0, ping_seq = 0;
  std::uint64_t next_ping_ns = 0, next_chat_ns = 0;
  std::int8_t dx = 0, dy = 0;
};

class BotThread {
 public:
  BotThread(const BotsConfig& cfg, std::vector<Bot*> bots, SSL_CTX* ctx, const sockaddr_in& tcp, const sockaddr_in& tls, std::uint64_t seed)
      : cfg_(cfg), bots_(std::move(bots)), ctx_(ctx), tcp_addr_(tcp), tls_addr_(tls), rng_(seed) {}

  BotsSummary run();

 private:
  void start_connect(Bot& b);
  void on_event(Bot& b, std::uint32_t ev);
  void on_connected(Bot& b);
  void drive_handshake(Bot& b);
  void on_established(Bot& b);
  void read_some(Bot& b);
  void flush(Bot& b);
  void enqueue_frame_done(Bot& b);
  void set_events(Bot& b, std::uint32_t ev);
  void fail(Bot& b, const char* why, bool connect_phase);
  void finish(Bot& b, bool clean);
  void send_tick(Bot& b, std::uint64_t now);
  void begin_drain(Bot& b);

  const BotsConfig& cfg_;
  std::vector<Bot*> bots_;
  SSL_CTX* ctx_;
  sockaddr_in tcp_addr_, tls_addr_;
  std::mt19937_64 rng_;
  int ep_ = -1;
  BotsSummary sum_;
  std::vector<std::uint8_t> rbuf_ = std::vector<std::uint8_t>(64 * 1024);
  std::size_t active_ = 0;
};

void BotThread::set_events(Bot& b, std::uint32_t ev) {
  if (b.fd < 0 || ev == b.events) return;
  epoll_event e{};
  e.events = ev;
  e.data.ptr = &b;
  int op = b.events == 0 ? EPOLL_CTL_ADD : (ev == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
  if (epoll_ctl(ep_, op, b.fd, &e) != 0 && getenv("TICKBOTS_DEBUG"))
    fprintf(stderr, "epoll_ctl op=%d fd=%d client=%d: %s\n", op, b.fd, b.index, strerror(errno));
  b.events = ev;
}

void BotThread::fail(Bot& b, const char* why, bool connect_phase) {
  ++sum_.errors[why];
  if (connect_phase) ++sum_.failed;
  finish(b, false);
}

void BotThread::finish(Bot& b, bool clean) {
  if (b.state == BotState::kDone) return;
  if (clean) ++sum_.closed_cleanly;
  if (b.fd >= 0) {
    set_events(b, 0);
    if (b.ssl) { SSL_free(b.ssl); b.ssl = nullptr; }
    ::close(b.fd);
    b.fd = -1;
  }
  b.state = BotState::kDone;
  --active_;
}

void BotThread::start_connect(Bot& b) {
  ++sum_.attempted;
  if (b.tls) ++sum_.tls_attempted;
  if (b.slow) ++sum_.slow_readers;
  b.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (b.fd < 0) return fail(b, "socket_failed", true);
  int one = 1;
  setsockopt(b.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (b.slow) setsockopt(b.fd, SOL_SOCKET, SO_RCVBUF, &cfg_.slow_reader_rcvbuf, sizeof cfg_.slow_reader_rcvbuf);
  b.connect_start_ns = mono_ns();
  b.state = BotState::kConnecting;
  const sockaddr_in& a = b.tls ? tls_addr_ : tcp_addr_;
  int r = ::connect(b.fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  if (r != 0 && errno != EINPROGRESS) return fail(b, "connect_failed", true);
  set_events(b, EPOLLOUT);
}

void BotThread::on_connected(Bot& b) {
  sum_.connect_us.push_back((mono_ns() - b.connect_start_ns) / 1000);
  if (b.slow) {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    if (getsockname(b.fd, reinterpret_cast<sockaddr*>(&local), &len) == 0)
      sum_.slow_reader_ports.push_back(ntohs(local.sin_port));
  }
  if (!b.tls) return on_established(b);
  b.ssl = SSL_new(ctx_);
  if (!b.ssl) return fail(b, "tls_setup_failed", true);
  SSL_set_fd(b.ssl, b.fd);
  SSL_set_connect_state(b.ssl);
  b.handshake_start_ns = mono_ns();
  b.state = BotState::kHandshaking;
  drive_handshake(b);
}

void BotThread::drive_handshake(Bot& b) {
  ERR_clear_error();
  int r = SSL_do_handshake(b.ssl);
  if (r == 1) {
    ++sum_.tls_ok;
    sum_.handshake_us.push_back((mono_ns() - b.handshake_start_ns) / 1000);
    return on_established(b);
  }
  int e = SSL_get_error(b.ssl, r);
  if (e == SSL_ERROR_WANT_READ) return set_events(b, EPOLLIN);
  if (e == SSL_ERROR_WANT_WRITE) return set_events(b, EPOLLIN | EPOLLOUT);
  ++sum_.tls_failed;
  fail(b, "tls_handshake_failed", true);
}

void BotThread::on_established(Bot& b) {
  ++sum_.established;
  b.state = BotState::kRunning;
  std::uint64_t now = mono_ns();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  b.next_ping_ns = now + static_cast<std::uint64_t>(u(rng_) * cfg_.ping_interval_s * 1e9);
  if (cfg_.chat_interval_s > 0) b.next_chat_ns = now + static_cast<std::uint64_t>(u(rng_) * 2 * cfg_.chat_interval_s * 1e9);
  std::string name = "bot" + std::to_string(b.index);
  encode_login(b.out, name);
  enqueue_frame_done(b);
  // Slow readers never ask for input after login: the kernel buffers fill.
  set_events(b, b.slow ? 0u : EPOLLIN);
  if (b.slow && b.fd >= 0) {
    epoll_event e{}; e.events = 0; e.data.ptr = &b;
    epoll_ctl(ep_, EPOLL_CTL_ADD, b.fd, &e);  // keep registered (no events) so later set_events works
    b.events = 0x80000000u;                    // marker: registered with an empty mask
  }
  flush(b);
}

void BotThread::enqueue_frame_done(Bot& b) {
  b.enqueued_total = b.written_total + (b.out.size() - b.out_off);
  b.frame_ends.push_back(b.enqueued_total);
}

void BotThread::flush(Bot& b) {
  while (b.fd >= 0 && b.out_off < b.out.size()) {
    long n;
    std::size_t len = b.out.size() - b.out_off;
    if (b.ssl) {
      ERR_clear_error();
      int r = SSL_write(b.ssl, b.out.data() + b.out_off, static_cast<int>(len));
      if (r <= 0) {
        int e = SSL_get_error(b.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
        return fail(b, "write_error", false);
      }
      n = r;
    } else {
      n = ::send(b.fd, b.out.data() + b.out_off, len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return fail(b, "write_error", false);
      }
    }
    b.out_off += static_cast<std::size_t>(n);
    b.written_total += static_cast<std::uint64_t>(n);
    sum_.bytes_sent += static_cast<std::uint64_t>(n);
    while (!b.frame_ends.empty() && b.frame_ends.front() <= b.written_total) {
      b.frame_ends.pop_front();
      ++sum_.frames_sent;
    }
  }
  if (b.fd < 0) return;
  if (b.out_off == b.out.size()) { b.out.clear(); b.out_off = 0; }
  bool pending = !b.out.empty();
  bool reading = !b.slow || b.state == BotState::kDraining;
  std::uint32_t want = (reading ? EPOLLIN : 0u) | (pending ? EPOLLOUT : 0u);
  if (b.events == 0x80000000u) {  // registered with an empty mask
    epoll_event e{}; e.events = want; e.data.ptr = &b;
    epoll_ctl(ep_, EPOLL_CTL_MOD, b.fd, &e);
    b.events = want ? want : 0x80000000u;
  } else if (want == 0) {
    epoll_event e{}; e.events = 0; e.data.ptr = &b;
    epoll_ctl(ep_, EPOLL_CTL_MOD, b.fd, &e);
    b.events = 0x80000000u;
  } else {
    set_events(b, want);
  }
  if (b.state == BotState::kDraining && !pending && !b.shut_wr) {
    // Half-close: the server reads everything we sent, then closes.
    if (b.ssl) SSL_shutdown(b.ssl);
    ::shutdown(b.fd, SHUT_WR);
    b.shut_wr = true;
  }
}

void BotThread::read_some(Bot& b) {
  // Bounded per wake-up, except that bytes OpenSSL already decrypted are
  // always consumed (epoll cannot report them).
  for (int rounds = 0; b.fd >= 0 && (rounds < 16 || (b.ssl && SSL_pending(b.ssl) > 0)); ++rounds) {
    std::size_t cap = std::min(rbuf_.size(), b.decoder.feed_capacity());
    long n;
    if (b.ssl) {
      ERR_clear_error();
      int r = SSL_read(b.ssl, rbuf_.data(), static_cast<int>(cap));
      if (r <= 0) {
        int e = SSL_get_error(b.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) n = 0;
        else return b.state == BotState::kDraining ? finish(b, false) : fail(b, "read_error", false);
      } else {
        n = r;
      }
    } else {
      n = ::recv(b.fd, rbuf_.data(), cap, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return b.state == BotState::kDraining ? finish(b, false) : fail(b, "read_error", false);
      }
    }
    if (n == 0) {
      if (b.state == BotState::kDraining) return finish(b, true);
      return fail(b, "closed_by_server", false);
    }
    sum_.bytes_received += static_cast<std::uint64_t>(n);
    b.decoder.feed(rbuf_.data(), static_cast<std::size_t>(n));
    while (auto f = b.decoder.next()) {
      ++sum_.frames_received;
      switch (f->type) {
        case MsgType::kWelcome: ++sum_.welcomes; break;
        case MsgType::kWorldDelta: {
          std::uint64_t tick;
          if (decode_world_delta(f->payload, tick) < 0) ++sum_.errors["bad_delta"];
          ++sum_.deltas;
          break;
        }
        case MsgType::kPong: {
          Pong p;
          if (decode_pong(f->payload, p)) sum_.rtt_us.push_back((mono_ns() - p.client_time_ns) / 1000);
          ++sum_.pongs;
          break;
        }
        case MsgType::kChatOut: ++sum_.chats_received; break;
        default: ++sum_.errors["unknown_server_frame"]; break;
      }
    }
    if (b.decoder.error() != FrameError::kNone) return fail(b, "protocol_error", false);
  }
}

void BotThread::on_event(Bot& b, std::uint32_t ev) {
  switch (b.state) {
    case BotState::kConnecting: {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(b.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(b, "connect_failed", true);
      return on_connected(b);
    }
    case BotState::kHandshaking: return drive_handshake(b);
    case BotState::kRunning:
    case BotState::kDraining:
      if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_some(b);
      if (b.fd >= 0 && (ev & EPOLLOUT)) flush(b);
      return;
    default: return;
  }
}

void BotThread::send_tick(Bot& b, std::uint64_t now) {
  std::uniform_int_distribution<int> step(-1, 1);
  std::uniform_int_distribution<int> pct(0, 99);
  if (pct(rng_) < 20) { b.dx = static_cast<std::int8_t>(step(rng_)); b.dy = static_cast<std::int8_t>(step(rng_)); }
  Input in;
  in.seq = ++b.input_seq;
  in.dx = b.dx;
  in.dy = b.dy;
  in.skill = pct(rng_) < 5 ? 1 : 0;
  // Bound the client's own queue: if the server stops reading, stop adding.
  if (b.out.size() - b.out_off > 256 * 1024) { ++sum_.errors["client_queue_full"]; return; }
  encode_input(b.out, in);
  enqueue_frame_done(b);
  ++sum_.inputs_sent;
  if (now >= b.next_ping_ns) {
    // Stamp at encode time, not loop time: with hundreds of clients per
    // loop the difference would be counted as RTT.
    encode_ping(b.out, Ping{mono_ns(), ++b.ping_seq});
    enqueue_frame_done(b);
    ++sum_.pings_sent;
    b.next_ping_ns = now + static_cast<std::uint64_t>(cfg_.ping_interval_s * 1e9);
  }
  if (b.next_chat_ns && now >= b.next_chat_ns) {
    encode_chat(b.out, "gg from bot" + std::to_string(b.index));
    enqueue_frame_done(b);
    ++sum_.chats_sent;
    std::exponential_distribution<double> gap(1.0 / cfg_.chat_interval_s);
    b.next_chat_ns = now + static_cast<std::uint64_t>(gap(rng_) * 1e9) + 1;
  }
  flush(b);
}

void BotThread::begin_drain(Bot& b) {
  b.state = BotState::kDraining;
  flush(b);  // registers EPOLLIN for slow readers too, and half-closes when empty
}

BotsSummary BotThread::run() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  const std::uint64_t start = mono_ns();
  const std::uint64_t period = 1000000000ull / std::max<std::uint32_t>(1, cfg_.tick_hz);
  const std::uint64_t send_end = start + static_cast<std::uint64_t>(cfg_.duration_s * 1e9);
  const std::uint64_t connect_timeout = static_cast<std::uint64_t>(cfg_.connect_timeout_s * 1e9);
  std::uint64_t drain_end = 0;
  std::uint64_t next_tick = start + period;
  std::size_t next_connect = 0;
  active_ = bots_.size();
  bool draining = false;
  epoll_event events[512];
  while (active_ > 0) {
    std::uint64_t now = mono_ns();
    // connection ramp
    std::size_t budget = static_cast<std::size_t>(std::max(1, cfg_.connects_per_ms));
    while (!draining && next_connect < bots_.size() && budget-- > 0) start_connect(*bots_[next_connect++]);
    if (!draining && now >= send_end) {
      draining = true;
      drain_end = now + static_cast<std::uint64_t>(cfg_.drain_timeout_s * 1e9);
      for (; next_connect < bots_.size(); ++next_connect) {  // never started
        Bot& b = *bots_[next_connect];
        if (b.state == BotState::kIdle) { b.state = BotState::kDone; --active_; }
      }
      for (Bot* b : bots_) {
        if (b->state == BotState::kRunning) begin_drain(*b);
        else if (b->state == BotState::kConnecting || b->state == BotState::kHandshaking) fail(*b, "not_connected_at_end", true);
      }
    }
    if (draining && now >= drain_end) {
      for (Bot* b : bots_) if (b->state != BotState::kDone) { ++sum_.errors["drain_timeout"]; finish(*b, false); }
      break;
    }
    if (!draining && now >= next_tick) {
      for (Bot* b : bots_) {
        if (b->state == BotState::kRunning) send_tick(*b, now);
        else if ((b->state == BotState::kConnecting || b->state == BotState::kHandshaking) &&
                 now > b->connect_start_ns + connect_timeout)
        {
          if (getenv("TICKBOTS_DEBUG"))
            fprintf(stderr, "tickbots: client %d timed out in state %d (%s)\n", b->index, static_cast<int>(b->state),
                    b->ssl ? SSL_state_string_long(b->ssl) : "tcp");
          fail(*b, "connect_timeout", true);
        }
      }
      next_tick += period;
      if (next_tick < now) next_tick = now + period;
    }
    std::uint64_t wake = draining ? drain_end : std::min(next_tick, send_end);
    if (!draining && next_connect < bots_.size()) wake = std::min(wake, now + 1000000);
    int timeout_ms = wake > now ? static_cast<int>((wake - now + 999999) / 1000000) : 0;
    int n = epoll_wait(ep_, events, 512, timeout_ms);
    for (int i = 0; i < n; ++i) {
      Bot& b = *static_cast<Bot*>(events[i].data.ptr);
      if (b.state != BotState::kDone) on_event(b, events[i].events);
    }
  }
  ::close(ep_);
  return sum_;
}

std::uint64_t pct(std::vector<std::uint64_t> v, double q) {
  if (v.empty()) return 0;
  std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

nlohmann::json dist(const std::vector<std::uint64_t>& v) {
  return {{"p50", pct(v, 0.5)}, {"p99", pct(v, 0.99)}, {"max", v.empty() ? 0 : *std::max_element(v.begin(), v.end())}, {"samples", v.size()}};
}

bool resolve(const std::string& host, std::uint16_t port, sockaddr_in& out) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return false;
  out = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  out.sin_port = htons(port);
  freeaddrinfo(res);
  return true;
}

}  // namespace

BotsSummary run_bots(const BotsConfig& cfg) {
  signal(SIGPIPE, SIG_IGN);
  BotsSummary total;
  sockaddr_in tcp{}, tls{};
  if (!resolve(cfg.host, cfg.port, tcp) || !resolve(cfg.host, cfg.tls_port, tls)) {
    total.errors["resolve_failed"] = 1;
    return total;
  }
  std::string err;
  SslCtxPtr ctx;
  if (cfg.tls_fraction > 0) {
    ctx = make_client_tls_context(err);
    if (!ctx) { total.errors["tls_context_failed"] = 1; return total; }
  }
  std::vector<std::unique_ptr<Bot>> bots;
  int n = std::max(0, cfg.clients);
  for (int i = 0; i < n; ++i) {
    auto b = std::make_unique<Bot>();
    b->index = i;
    // Spread TLS clients evenly: client i is TLS when floor((i+1)F) > floor(iF).
    b->tls = cfg.tls_port != 0 && std::floor((i + 1) * cfg.tls_fraction) > std::floor(i * cfg.tls_fraction);
    b->slow = i >= n - cfg.slow_readers;
    bots.push_back(std::move(b));
  }
  int threads = std::clamp(cfg.threads, 1, 16);
  std::vector<std::vector<Bot*>> shares(static_cast<std::size_t>(threads));
  for (int i = 0; i < n; ++i) shares[static_cast<std::size_t>(i % threads)].push_back(bots[static_cast<std::size_t>(i)].get());
  std::vector<BotsSummary> results(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  const std::uint64_t t0 = mono_ns();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      pthread_setname_np(pthread_self(), "tickbots");
      BotThread bt(cfg, shares[static_cast<std::size_t>(t)], ctx.get(), tcp, tls, cfg.seed * 1000003 + static_cast<std::uint64_t>(t));
      results[static_cast<std::size_t>(t)] = bt.run();
    });
  }
  for (auto& w : workers) w.join();
  for (auto& r : results) total.merge(r);
  total.elapsed_s = static_cast<double>(mono_ns() - t0) / 1e9;
  return total;
}

nlohmann::json bots_summary_to_json(const BotsConfig& cfg, const BotsSummary& s) {
  std::uint64_t errors_total = 0;
  for (auto& [k, v] : s.errors) errors_total += v;
  return {
      {"clients", cfg.clients},
      {"elapsed_s", s.elapsed_s},
      {"connections", {{"attempted", s.attempted}, {"established", s.established}, {"failed", s.failed}, {"closed_cleanly", s.closed_cleanly}, {"slow_readers", s.slow_readers}, {"slow_reader_ports", s.slow_reader_ports}}},
      {"tls", {{"attempted", s.tls_attempted}, {"handshakes_ok", s.tls_ok}, {"handshakes_failed", s.tls_failed}, {"handshake_us", dist(s.handshake_us)}}},
      {"connect_us", dist(s.connect_us)},
      {"rtt_us", dist(s.rtt_us)},
      {"bytes_sent", s.bytes_sent},
      {"bytes_received", s.bytes_received},
      {"frames_sent", s.frames_sent},
      {"frames_received", s.frames_received},
      {"sent", {{"inputs", s.inputs_sent}, {"pings", s.pings_sent}, {"chats", s.chats_sent}}},
      {"received", {{"welcome", s.welcomes}, {"world_delta", s.deltas}, {"pong", s.pongs}, {"chat", s.chats_received}}},
      {"errors", s.errors},
      {"errors_total", errors_total},
  };
}

}  // namespace tickgame
