// tickgame + tickbots end to end: the server's /stats must agree with the
// bots' own summary, malformed input must only cost the offending
// connection, and every injected fault must be visible in /stats.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"
#include "tickgame/protocol.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace {

// One tickgame on random free ports.
class Game {
 public:
  explicit Game(std::vector<std::string> extra = {}) {
    port = tt::pick_free_port();
    tls_port = tt::pick_free_port();
    admin_port = tt::pick_free_port();
    std::vector<std::string> argv = {tt::bin_path("tickgame"), "--port", std::to_string(port), "--tls-port",
                                     std::to_string(tls_port), "--admin-port", std::to_string(admin_port),
                                     "--print-stats-on-exit"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<tt::Subprocess>(argv);
    // The game listeners are bound before the admin endpoint starts, so
    // probing the admin port does not create a game session.
    ready = tt::wait_for_tcp_port(admin_port, 10s);
  }
  json stats() const {
    auto r = tt::http_get("127.0.0.1", admin_port, "/stats");
    if (r.status != 200) return json();
    return json::parse(r.body, nullptr, false);
  }
  // Waits until a stats snapshot satisfies `pred` (snapshots are published every tick).
  template <class P>
  json wait_stats(P pred, std::chrono::milliseconds timeout = 10s) const {
    auto end = std::chrono::steady_clock::now() + timeout;
    json s;
    while (std::chrono::steady_clock::now() < end) {
      s = stats();
      if (!s.is_discarded() && !s.is_null() && pred(s)) return s;
      std::this_thread::sleep_for(50ms);
    }
    return s;
  }
  json bots(int clients, double tls_fraction, int slow, double seconds) const {
    tt::Subprocess b({tt::bin_path("tickbots"), "--port", std::to_string(port), "--tls-port", std::to_string(tls_port),
                      "--clients", std::to_string(clients), "--tls-fraction", std::to_string(tls_fraction), "--slow-readers",
                      std::to_string(slow), "--duration", std::to_string(seconds), "--chat-interval", "2"});
    auto st = b.wait_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000) + 15000));
    EXPECT_TRUE(st.has_value()) << "tickbots did not finish";
    EXPECT_EQ(st.value_or(-1), 0) << b.stderr_text();
    return json::parse(b.stdout_text(), nullptr, false);
  }

  std::uint16_t port, tls_port, admin_port;
  std::unique_ptr<tt::Subprocess> proc;
  bool ready = false;
};

std::uint64_t u(const json& j, const char* a, const char* b = nullptr, const char* c = nullptr) {
  const json* p = &j;
  for (const char* k : {a, b, c}) {
    if (!k) break;
    if (!p->contains(k)) return UINT64_MAX;
    p = &(*p)[k];
  }
  return p->get<std::uint64_t>();
}

int connect_to(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) { close(fd); return -1; }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_all(int fd, const std::vector<std::uint8_t>& b) { ASSERT_EQ(send(fd, b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(b.size())); }

// True if the server closed the connection (EOF or reset) within the receive timeout.
bool closed_by_server(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

constexpr std::uint64_t kSystemTasks = 9;  // acceptor, tls_acceptor, 4 npc_ai, world, gc, stats

}  // namespace

TEST(GameE2E, BotsAgreeWithServerStats) {
  Game g;
  ASSERT_TRUE(g.ready) << g.proc->stderr_text();
  json bots = g.bots(200, 0.5, 0, 4.0);
  ASSERT_FALSE(bots.is_discarded());
  const std::uint64_t established = u(bots, "connections", "established");
  EXPECT_EQ(established, 200u) << bots.dump(2);
  EXPECT_EQ(u(bots, "connections", "failed"), 0u);
  EXPECT_EQ(u(bots, "connections", "closed_cleanly"), 200u);
  EXPECT_EQ(u(bots, "errors_total"), 0u) << bots["errors"].dump();
  // Bots half-closed and read until the server closed: nothing is in flight,
  // so every counter must match exactly once the server has reaped them.
  json s = g.wait_stats([](const json& s) { return s["sessions"]["live"] == 0 && s["sessions"]["total"] >= 200; });
  EXPECT_EQ(u(s, "sessions", "total"), established);
  EXPECT_EQ(u(s["sessions"], "closed_by_reason", "eof"), established);
  EXPECT_EQ(u(s, "tls", "handshakes_completed"), u(bots, "tls", "handshakes_ok"));
  EXPECT_EQ(u(s, "tls", "handshakes_completed"), 100u);
  EXPECT_EQ(u(s, "tls", "handshakes_failed"), 0u);
  EXPECT_EQ(u(s, "net", "frames_in"), u(bots, "frames_sent"));
  EXPECT_EQ(u(s, "net", "bytes_in"), u(bots, "bytes_sent"));
  EXPECT_EQ(u(s, "net", "frames_out"), u(bots, "frames_received"));
  EXPECT_EQ(u(s, "net", "bytes_out"), u(bots, "bytes_received"));
  EXPECT_EQ(u(s, "net", "frame_errors_total"), 0u);
  EXPECT_EQ(u(bots, "received", "welcome"), established);
  EXPECT_GT(u(bots, "received", "world_delta"), established * 20);
  EXPECT_GT(u(bots, "rtt_us", "samples"), 0u);
  EXPECT_GT(u(s, "world", "damage_events"), 0u);
  EXPECT_GT(u(s, "gc", "cycles"), 0u);
  EXPECT_GT(u(s, "arena", "resets"), 0u);
  // one session coroutine per connection, all gone; only system tasks remain
  EXPECT_EQ(u(s, "coroutines", "live"), kSystemTasks);
  EXPECT_EQ(u(s, "coroutines", "created") - u(s, "coroutines", "destroyed"), kSystemTasks);
  EXPECT_GE(u(s, "coroutines", "created"), kSystemTasks + 200);
  // clean shutdown prints the final stats
  EXPECT_EQ(g.proc->terminate(), 0);
  json final_stats = json::parse(g.proc->stdout_text(), nullptr, false);
  ASSERT_FALSE(final_stats.is_discarded()) << g.proc->stdout_text();
  EXPECT_EQ(u(final_stats, "coroutines", "live"), 0u);
  EXPECT_EQ(u(final_stats, "net", "frames_in"), u(bots, "frames_sent"));
}

TEST(GameE2E, MalformedFramesCloseOnlyThatConnection) {
  Game g;
  ASSERT_TRUE(g.ready);
  // A well-behaved client that must survive everything below.
  int good = connect_to(g.port);
  ASSERT_GE(good, 0);
  std::vector<std::uint8_t> b;
  tickgame::encode_login(b, "good");
  send_all(good, b);

  auto bad = [&](std::vector<std::uint8_t> bytes) {
    int fd = connect_to(g.port);
    EXPECT_GE(fd, 0);
    send_all(fd, bytes);
    EXPECT_TRUE(closed_by_server(fd));
    close(fd);
  };
  bad({0xff, 0xff, 0xff, 0x7f, 1});  // frame_too_large
  bad({0, 0, 0, 0});                 // empty_frame
  b.clear(); tickgame::encode_login(b, "x"); b.insert(b.end(), {1, 0, 0, 0, 99}); bad(b);  // unknown_type
  b.clear(); tickgame::encode_login(b, "y"); b.insert(b.end(), {3, 0, 0, 0, 2, 1, 2}); bad(b);  // bad_payload (short input)
  b.clear(); tickgame::encode_ping(b, {1, 1}); bad(b);  // not_logged_in
  b.clear(); tickgame::encode_login(b, "a"); tickgame::encode_login(b, "b"); bad(b);  // duplicate_login
  // TLS port: plaintext garbage fails the handshake.
  {
    int fd = connect_to(g.tls_port);
    ASSERT_GE(fd, 0);
    std::vector<std::uint8_t> junk(64, 'G');
    send_all(fd, junk);
    EXPECT_TRUE(closed_by_server(fd));
    close(fd);
  }
  // The good client still gets answers.
  b.clear();
  tickgame::encode_ping(b, {42, 7});
  send_all(good, b);
  tickgame::FrameDecoder dec;
  bool pong = false;
  std::uint8_t buf[8192];
  for (int i = 0; i < 200 && !pong; ++i) {
    ssize_t n = recv(good, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << "server closed the good client";
    dec.feed(buf, static_cast<std::size_t>(n));
    while (auto f = dec.next()) pong |= f->type == tickgame::MsgType::kPong;
  }
  EXPECT_TRUE(pong);
  close(good);

  json s = g.wait_stats([](const json& s) { return s["net"]["frame_errors_total"] == 6 && s["tls"]["handshakes_failed"] == 1; });
  for (const char* reason : {"frame_too_large", "empty_frame", "unknown_type", "bad_payload", "not_logged_in", "duplicate_login"}) {
    EXPECT_EQ(s["net"]["frame_errors"][reason], 1) << reason << " " << s["net"].dump();
  }
  EXPECT_EQ(s["sessions"]["closed_by_reason"]["frame_error"], 6);
  EXPECT_EQ(s["sessions"]["closed_by_reason"]["tls_handshake_failed"], 1);
  EXPECT_EQ(tt::http_get("127.0.0.1", g.admin_port, "/healthz").status, 200);
}

TEST(GameFaults, LeakBytesShowInStats) {
  Game g({"--inject-leak-bytes-per-tick", "4096"});
  ASSERT_TRUE(g.ready);
  json s = g.wait_stats([](const json& s) { return s["tick"]["count"] >= 20; });
  // The fault runs once per tick and stats are published after the tick.
  EXPECT_EQ(u(s, "leak", "allocations"), u(s, "tick", "count"));
  EXPECT_EQ(u(s, "leak", "bytes"), 4096 * u(s, "tick", "count"));
  EXPECT_EQ(s["faults"]["leak_bytes_per_tick"], 4096);
  // fixed rate: ticks track wall time at --tick-hz (within a few ticks)
  const double expected = static_cast<double>(u(s, "uptime_ns")) / 1e9 * 20;
  EXPECT_NEAR(static_cast<double>(u(s, "tick", "count")), expected, 3.0);
}

TEST(GameFaults, LeakedCoroutinesShowInStats) {
  Game g({"--inject-coroutine-leak-per-sec", "40"});
  ASSERT_TRUE(g.ready);
  json s = g.wait_stats([](const json& s) { return s["tick"]["count"] >= 30; });
  const std::uint64_t ticks = u(s, "tick", "count");
  EXPECT_EQ(u(s, "coroutines", "leaked_by_injection"), 2 * ticks);  // 40/s at 20 Hz
  EXPECT_EQ(u(s, "coroutines", "live"), kSystemTasks + 2 * ticks);
  EXPECT_EQ(u(s, "coroutines", "destroyed"), 0u);
}

TEST(GameFaults, GcPauseGrowsWithGarbage) {
  Game g({"--gc-every-ticks", "5"});
  ASSERT_TRUE(g.ready);
  json base = g.wait_stats([](const json& s) { return s["gc"]["cycles"] >= 6; });
  const std::uint64_t base_max = u(base, "gc", "max_pause_ns");
  const std::uint64_t base_cycles = u(base, "gc", "cycles");
  const std::uint64_t base_total = u(base, "gc", "total_pause_ns");
  // Turn the fault on at run time through the admin endpoint.
  auto r = tt::http_post("127.0.0.1", g.admin_port, "/faults", R"({"gc_garbage_per_tick": 20000})");
  ASSERT_EQ(r.status, 200) << r.body;
  json s = g.wait_stats([&](const json& s) { return s["gc"]["cycles"] >= base_cycles + 6; });
  const std::uint64_t cycles = u(s, "gc", "cycles") - base_cycles;
  const std::uint64_t mean_after = (u(s, "gc", "total_pause_ns") - base_total) / cycles;
  EXPECT_GE(u(s, "gc", "last_freed"), 20000u);
  EXPECT_GT(mean_after, 3 * (base_total / base_cycles)) << "baseline max " << base_max;
  EXPECT_GT(u(s, "gc", "max_pause_ns"), base_max);
  EXPECT_EQ(s["faults"]["gc_garbage_per_tick"], 20000);
}

TEST(GameFaults, CpuHogRaisesTickP50) {
  Game g({"--inject-cpu-hog-us", "8000"});
  ASSERT_TRUE(g.ready);
  json s = g.wait_stats([](const json& s) { return s["tick"]["count"] >= 30; });
  EXPECT_GE(u(s, "tick", "duration_ns", "p50"), 8'000'000u);
  // and switching it off through GET /faults?name=value brings it back down
  auto r = tt::http_get("127.0.0.1", g.admin_port, "/faults?cpu_hog_us=0");
  ASSERT_EQ(r.status, 200);
  const std::uint64_t t0 = u(s, "tick", "count");
  s = g.wait_stats([&](const json& s) { return s["tick"]["count"] >= t0 + 40; });
  EXPECT_LT(u(s["tick"], "duration_ns", "last"), 8'000'000u);
}

TEST(GameFaults, BlockingWritesToSlowReadersStallTheTick) {
  Game g({"--inject-blocking-writes", "--max-outbound-kb", "8", "--sndbuf-kb", "8", "--blocking-write-timeout-ms", "40"});
  ASSERT_TRUE(g.ready);
  json bots = g.bots(20, 0.5, 4, 5.0);
  json s = g.stats();
  EXPECT_GT(u(s, "net", "blocking_writes"), 0u) << s.dump(2);
  EXPECT_GT(u(s, "sessions", "slow_readers"), 0u);
  EXPECT_GE(u(s["tick"], "duration_ns", "max"), 40'000'000u);
  EXPECT_GT(u(s, "tick", "over_budget"), 0u);
  EXPECT_EQ(u(s["sessions"], "closed_by_reason", "slow_reader"), 0u);  // kept, written to blockingly
}

TEST(GameFaults, WithoutTheFaultSlowReadersAreDropped) {
  Game g({"--max-outbound-kb", "8", "--sndbuf-kb", "8"});
  ASSERT_TRUE(g.ready);
  json bots = g.bots(20, 0.5, 4, 5.0);
  json s = g.wait_stats([](const json& s) { return s["sessions"]["live"] == 0; });
  EXPECT_EQ(u(s, "net", "blocking_writes"), 0u);
  EXPECT_GT(u(s, "sessions", "slow_readers"), 0u);
  EXPECT_EQ(u(s["sessions"], "closed_by_reason", "slow_reader"), u(s, "sessions", "slow_readers"));
}

TEST(GameAdmin, RejectsUnknownFaults) {
  Game g;
  ASSERT_TRUE(g.ready);
  EXPECT_EQ(tt::http_get("127.0.0.1", g.admin_port, "/faults?no_such_fault=1").status, 400);
  EXPECT_EQ(tt::http_post("127.0.0.1", g.admin_port, "/faults", "not json").status, 400);
  auto r = tt::http_post("127.0.0.1", g.admin_port, "/faults", R"({"blocking_writes": true, "leak_bytes_per_tick": 10})");
  ASSERT_EQ(r.status, 200);
  json f = json::parse(r.body);
  EXPECT_EQ(f["blocking_writes"], true);
  EXPECT_EQ(f["leak_bytes_per_tick"], 10);
}
