// The sockets and TLS families against tickgame under tickbots, with ground
// truth from both sides: the server's /stats (its own blocked-write time,
// its TLS handshake counts) and the bots' summary (handshakes that
// completed on the client side, the local ports of the slow readers).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "game_harness.h"
#include "test_support.h"

using namespace tickprobe::test::game;

namespace {

// The bots' JSON summary (printed on stdout when they finish).
json bots_summary(tt::Subprocess& bots) {
  bots.wait_for(60s);
  return json::parse(bots.stdout_text(), nullptr, false);
}

std::unique_ptr<tt::Subprocess> bots(const Game& g, std::vector<std::string> extra) {
  std::vector<std::string> argv = {tt::bin_path("tickbots"), "--port", std::to_string(g.port)};
  if (g.tls_port) argv.insert(argv.end(), {"--tls-port", std::to_string(g.tls_port)});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<tt::Subprocess>(argv);
}

// A TCP client that sends `bytes` to the port and hangs up.
void send_and_close(std::uint16_t port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && !bytes.empty())
    (void)!write(fd, bytes.data(), bytes.size());
  std::this_thread::sleep_for(50ms);
  close(fd);
}

std::uint16_t port_of(const std::string& addr) {
  auto colon = addr.rfind(':');
  return colon == std::string::npos ? 0 : static_cast<std::uint16_t>(std::stoul(addr.substr(colon + 1)));
}

}  // namespace

// Every handshake on the server side, in exactly the numbers sent: the bots'
// completed handshakes, garbage on the TLS port and clients that hang up
// mid-handshake (OpenSSL 3 counts an EOF inside a handshake as fatal, so
// those are failed; tickgame does not set SSL_OP_IGNORE_UNEXPECTED_EOF).
TEST(NetE2E, TlsHandshakesMatchTheBotsAndTheServer) {
  Game g({}, /*tls=*/true);
  ASSERT_TRUE(g.ready) << g.proc->stderr_text();
  const auto t0 = Clock::now();
  Probe tls(t0, {"tls", "-q", "--pid", std::to_string(g.pid()), "-d", "12", "--json"});
  ASSERT_TRUE(tls.wait_attached()) << "tickprobe tls did not attach: " << tls.stderr_text;
  json before = g.stats();
  auto b = bots(g, {"--clients", "24", "--tls-fraction", "0.5", "--duration", "3"});
  const int kGarbage = 4, kHangups = 3;
  for (int i = 0; i < kGarbage; i++) send_and_close(g.tls_port, std::string(64, 'x'));
  // A ClientHello record header promising more than is sent, then EOF.
  for (int i = 0; i < kHangups; i++) send_and_close(g.tls_port, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9));
  json summary = bots_summary(*b);
  ASSERT_TRUE(summary.is_object()) << b->stdout_text();
  StatsLog log;
  run_until_done(g, t0, log, {&tls}, [](double) {});
  ASSERT_EQ(tls.rc, 0) << tls.stderr_text;
  const json& r = tls.report;
  const json& hs = r["handshakes"];
  const std::uint64_t bots_ok = summary["tls"]["handshakes_ok"];
  ASSERT_EQ(bots_ok, 12u) << summary["tls"].dump();
  EXPECT_EQ(hs["completed"].get<std::uint64_t>(), bots_ok) << r.dump().substr(0, 2000);
  // The server agrees with itself: its own completed/failed counters.
  const json& after = log.last();
  EXPECT_EQ(hs["completed"].get<std::uint64_t>(),
            u(after, {"tls", "handshakes_completed"}) - u(before, {"tls", "handshakes_completed"}));
  EXPECT_EQ(hs["failed"].get<std::uint64_t>() + hs["abandoned"].get<std::uint64_t>(),
            static_cast<std::uint64_t>(kGarbage + kHangups))
      << hs.dump();
  // Every outcome is server side, and a handshake's CPU is within its latency.
  for (const auto& o : r["outcomes"]) EXPECT_EQ(o["side"], "server") << o.dump();
  for (const auto& w : r["worst"]) {
    EXPECT_LE(w["cpu_ns"].get<double>(), w["latency_ns"].get<double>() + 1e3) << w.dump();
    EXPECT_NE(w["peer"].get<std::string>().find("127.0.0.1:"), std::string::npos) << w.dump();
  }
  // Like with like: the bots time SSL_do_handshake calls from the first one
  // to completion on the client; tickprobe times the server's handshake
  // calls from the first to the completing one. The server's handshake
  // starts after the client's first flight and ends before the client has
  // read the last one, so the server's median is at most the client's.
  const double server_p50 = r["latency"]["p50_ns"].get<double>();
  const double client_p50 = summary["tls"]["handshake_us"]["p50"].get<double>() * 1e3;
  EXPECT_GT(server_p50, 0);
  EXPECT_LE(server_p50, client_p50 * 1.25 + 2e6) << "server p50 " << server_p50 << " ns, client p50 " << client_p50;
  std::printf("tls: %s completed (bots %llu), failed %s, abandoned %s; p50 server %.2f ms vs client %.2f ms\n",
              hs["completed"].dump().c_str(), static_cast<unsigned long long>(bots_ok), hs["failed"].dump().c_str(),
              hs["abandoned"].dump().c_str(), server_p50 / 1e6, client_p50 / 1e6);
}

// Blocking writes to slow readers on the tick thread: socket-blocked time is
// on exactly the slow readers' connections, and adds up to the server's own
// blocked-write time (it times each blocking send) within 5%.
TEST(NetE2E, BlockedTimeIsOnTheSlowReadersAndMatchesTheServer) {
  Game g({"--inject-blocking-writes", "--max-outbound-kb", "8", "--sndbuf-kb", "8", "--blocking-write-timeout-ms",
          "40"});
  ASSERT_TRUE(g.ready) << g.proc->stderr_text();
  auto b = bots(g, {"--clients", "16", "--slow-readers", "3", "--duration", "14"});
  std::this_thread::sleep_for(1s);
  const auto t0 = Clock::now();
  Probe sockets(t0, {"sockets", "-q", "--pid", std::to_string(g.pid()), "-d", "6", "--top", "50", "--json"});
  StatsLog log;
  run_until_done(g, t0, log, {&sockets}, [](double) {});
  ASSERT_EQ(sockets.rc, 0) << sockets.stderr_text;
  json summary = bots_summary(*b);
  ASSERT_TRUE(summary.is_object());
  std::set<std::uint16_t> slow;
  for (const auto& p : summary["connections"]["slow_reader_ports"]) slow.insert(p.get<std::uint16_t>());
  ASSERT_EQ(slow.size(), 3u) << summary["connections"].dump();

  const json& r = sockets.report;
  // Sends only: other threads block too (the admin HTTP thread waits in
  // accept on its listening socket), and that is right, but not this test.
  double blocked_on_slow = 0, blocked_elsewhere = 0;
  std::set<std::uint16_t> blocked_peers;
  for (const auto& c : r["connections_by_blocked"])
    for (const auto& op : c["ops"]) {
      if (op["op"] != "send" || op["blocked_ns"].get<double>() <= 0) continue;
      std::uint16_t peer = port_of(c["peer"]);
      blocked_peers.insert(peer);
      (slow.count(peer) ? blocked_on_slow : blocked_elsewhere) += op["blocked_ns"].get<double>();
    }
  double send_blocked_ns = 0, send_wall_ns = 0;
  for (const auto& op : r["ops"])
    if (op["op"] == "send") {
      send_blocked_ns += op["blocked_ns"].get<double>();
      send_wall_ns += op["wall_ns"].get<double>();
    }
  EXPECT_GT(blocked_on_slow, 0) << r.dump().substr(0, 3000);
  EXPECT_EQ(blocked_elsewhere, 0) << "blocked in send to peers that read: " << r["connections_by_blocked"].dump();
  for (std::uint16_t p : blocked_peers) EXPECT_TRUE(slow.count(p)) << "port " << p;
  // The server times each blocking write from its own call to its return
  // (wall clock). tickprobe's window is exact (CLOCK_MONOTONIC, the clock of
  // steady_clock): a call counts iff it began and ended inside it. Like
  // with like: the wall time of send calls (blocked time is that minus the
  // time on CPU, so never more).
  const double t0_ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               t0.time_since_epoch()).count());
  const double w0 = (r["window"]["start_ns"].get<double>() - t0_ns) / 1e9;
  const double w1 = (r["window"]["end_ns"].get<double>() - t0_ns) / 1e9;
  ASSERT_GT(w1, w0);
  const double server_ns = static_cast<double>(u(log.at(w1), {"net", "blocking_write_ns"}) -
                                               u(log.at(w0), {"net", "blocking_write_ns"}));
  ASSERT_GT(server_ns, 0);
  // /stats is published once per tick (50 ms) and polled every 40 ms, and a
  // blocking write straddling an edge is in one count and not the other:
  // each edge can be off by up to a tick's worth of blocking (3 slow peers
  // x 40 ms timeout, serialized on the tick thread, at most ~120 ms).
  const double edge = 2 * 3 * 40e6;
  EXPECT_NEAR(send_wall_ns, server_ns, 0.05 * server_ns + edge)
      << "tickprobe send wall " << send_wall_ns / 1e6 << " ms, server " << server_ns / 1e6 << " ms";
  EXPECT_LE(send_blocked_ns, send_wall_ns + 1e6);
  const double blocked_ns = send_blocked_ns;
  std::printf("sockets: in send %.1f ms wall, %.1f ms blocked (server %.1f ms), all on the %zu slow readers\n",
              send_wall_ns / 1e6, blocked_ns / 1e6, server_ns / 1e6, slow.size());
}

// Without the fault the server never blocks: the same slow readers show as
// backpressure (EAGAIN on send) on exactly those peers.
TEST(NetE2E, SlowReadersShowAsBackpressureOnANonBlockingServer) {
  Game g({"--max-outbound-kb", "64", "--sndbuf-kb", "8"});
  ASSERT_TRUE(g.ready) << g.proc->stderr_text();
  auto b = bots(g, {"--clients", "16", "--slow-readers", "3", "--duration", "12"});
  std::this_thread::sleep_for(1s);
  const auto t0 = Clock::now();
  Probe sockets(t0, {"sockets", "-q", "--pid", std::to_string(g.pid()), "-d", "5", "--top", "50", "--json"});
  StatsLog log;
  run_until_done(g, t0, log, {&sockets}, [](double) {});
  ASSERT_EQ(sockets.rc, 0) << sockets.stderr_text;
  json summary = bots_summary(*b);
  std::set<std::uint16_t> slow;
  for (const auto& p : summary["connections"]["slow_reader_ports"]) slow.insert(p.get<std::uint16_t>());
  ASSERT_EQ(slow.size(), 3u);
  const json& r = sockets.report;
  std::set<std::uint16_t> pressured;
  for (const auto& c : r["connections_by_backpressure"]) {
    if (c["send_eagain"].get<std::uint64_t>() + c["partial_writes"].get<std::uint64_t>() == 0) continue;
    pressured.insert(port_of(c["peer"]));
  }
  EXPECT_FALSE(pressured.empty()) << r.dump().substr(0, 3000);
  for (std::uint16_t p : pressured) EXPECT_TRUE(slow.count(p)) << "backpressure on a peer that reads: port " << p;
  for (std::uint16_t p : slow) EXPECT_TRUE(pressured.count(p)) << "no backpressure on slow reader port " << p;
  double blocked = 0;
  for (const auto& op : r["ops"])
    if (op["op"] == "send") blocked += op["blocked_ns"].get<double>();
  EXPECT_LT(blocked, 5e6) << "a non-blocking server should not block in send";
}
