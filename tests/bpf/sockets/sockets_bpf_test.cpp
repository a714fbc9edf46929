// Ground truth for `tickprobe sockets` against the sockets fixture
// (tests/fixtures/sockets): one loopback TCP connection whose reader drains
// slowly. The fixture logs every send() with CLOCK_MONOTONIC times taken
// around the call; tickprobe reports the CLOCK_MONOTONIC window in which it
// measured (a call counts iff it entered and returned inside it). The test
// recomputes the truth over exactly that window, so the only slack is the
// one call at each edge whose fixture timestamps and syscall entry/exit
// fall on different sides of an edge. Needs root and BPF (label: bpf).
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace {

using Clock = std::chrono::steady_clock;

struct Watch {
  int rc = -1;
  std::string stderr_text;
  json report;
  json truth;  // the fixture's stats file
  int local_port = 0, peer_port = 0;
};

// Starts the fixture in `mode`, runs `tickprobe sockets --json` on it for
// `seconds`, then stops the fixture and reads its log.
Watch run(const std::string& mode, int seconds) {
  Watch r;
  std::string stats = "/tmp/tickprobe-sockets-bpf-" + std::to_string(getpid()) + "-" + mode + ".json";
  unlink(stats.c_str());
  tt::Subprocess fx({tt::bin_path("sockets_fixture"), "--mode", mode, "--stats-file", stats, "--duration", "120"});
  auto deadline = Clock::now() + 10s;
  std::string out;
  while ((out = tt::read_file(fx.stdout_path())).find('\n') == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  int pid = 0;
  if (std::sscanf(out.c_str(), "ready %d %d %d", &pid, &r.local_port, &r.peer_port) != 3) {
    ADD_FAILURE() << "fixture did not start: " << fx.stderr_text();
    return r;
  }
  tt::Subprocess probe({tt::bin_path("tickprobe"), "sockets", "-q", "--pid", std::to_string(fx.pid()), "-d",
                        std::to_string(seconds), "--json"});
  auto st = probe.wait_for(std::chrono::seconds(seconds + 60));
  if (!st) probe.kill_now();
  r.rc = st.value_or(-1);
  r.stderr_text = probe.stderr_text();
  r.report = json::parse(probe.stdout_text(), nullptr, false);
  EXPECT_EQ(fx.terminate(), 0) << fx.stderr_text();
  r.truth = json::parse(tt::read_file(stats), nullptr, false);
  unlink(stats.c_str());
  return r;
}

// The fixture's sends that lie inside tickprobe's window.
struct Truth {
  uint64_t calls = 0, blocked_ns = 0, eagain = 0, partial = 0;
  uint64_t edge_ns = 0;  // longest single send inside the window (slack at each edge)
};

Truth truth_in_window(const Watch& r) {
  Truth t;
  uint64_t ws = r.report["window"]["start_ns"].get<uint64_t>(), we = r.report["window"]["end_ns"].get<uint64_t>();
  for (const auto& s : r.truth["sends"]) {
    uint64_t start = s[0].get<uint64_t>(), end = s[1].get<uint64_t>();
    int64_t ret = s[2].get<int64_t>();
    uint64_t requested = s[3].get<uint64_t>();
    if (start < ws || end > we) continue;
    t.calls++;
    t.blocked_ns += end - start;
    t.edge_ns = std::max(t.edge_ns, end - start);
    if (ret == -11) t.eagain++;
    if (ret >= 0 && static_cast<uint64_t>(ret) < requested) t.partial++;
  }
  return t;
}

const json* find_conn(const json& list, const std::string& peer) {
  for (const auto& c : list)
    if (c.value("peer", "") == peer) return &c;
  return nullptr;
}

std::string conns_text(const json& list) {
  std::ostringstream o;
  for (const auto& c : list)
    o << "  " << c.value("local", "?") << " -> " << c.value("peer", "?") << " blocked_ns=" << c.value("blocked_ns", 0)
      << " eagain=" << c.value("send_eagain", 0) << " partial=" << c.value("partial_writes", 0) << "\n";
  return o.str();
}

const json* op_of(const json& conn, const std::string& op) {
  for (const auto& o : conn["ops"])
    if (o.value("op", "") == op) return &o;
  return nullptr;
}

}  // namespace

// Blocking sends to a slow reader: the blocked time is on the sender's
// connection to the reader's port, matches the fixture's own measurement
// within 5%, and the blocking stack names send_to_slow_peer.
TEST(SocketsBpf, BlockedTimeByPeerMatchesFixture) {
  Watch r = run("blocking", 4);
  ASSERT_EQ(r.rc, 0) << r.stderr_text;
  ASSERT_TRUE(r.report.is_object()) << r.stderr_text;
  ASSERT_TRUE(r.truth.is_object());
  Truth t = truth_in_window(r);
  ASSERT_GT(t.calls, 20u) << "the fixture sent too little to compare";

  const json& list = r.report["connections_by_blocked"];
  ASSERT_FALSE(list.empty()) << r.stderr_text;
  std::string peer = "127.0.0.1:" + std::to_string(r.peer_port);
  // The top connection by blocked time is the sender's, to the slow reader.
  EXPECT_EQ(list[0].value("peer", ""), peer) << conns_text(list);
  EXPECT_EQ(list[0].value("local", ""), "127.0.0.1:" + std::to_string(r.local_port)) << conns_text(list);
  const json* conn = find_conn(list, peer);
  ASSERT_NE(conn, nullptr) << conns_text(list);
  const json* send = op_of(*conn, "send");
  ASSERT_NE(send, nullptr);

  // Every send inside the window was measured (one per edge may differ).
  double calls = send->value("calls", 0.0);
  EXPECT_NEAR(calls, static_cast<double>(t.calls), 2.0);
  // Off-CPU time inside send() vs the fixture's wall time around send():
  // within 5% (the difference is the time send() spends on CPU copying).
  double blocked = conn->value("blocked_ns", 0.0);
  double truth = static_cast<double>(t.blocked_ns);
  double slack = std::max(0.05 * truth, 0.0);
  EXPECT_NEAR(blocked, truth, slack) << "tickprobe " << blocked / 1e6 << " ms, fixture " << truth / 1e6 << " ms over "
                                     << t.calls << " sends";
  std::printf("[ measured ] blocked in send: tickprobe %.1f ms, fixture %.1f ms (%+.2f%%), %llu sends, window %.2f s\n",
              blocked / 1e6, truth / 1e6, 100.0 * (blocked - truth) / truth, static_cast<unsigned long long>(t.calls),
              r.report.value("duration_s", 0.0));
  EXPECT_LE(blocked, send->value("wall_ns", 0.0) + 1);

  // The top blocking stack goes through libc's send to the named function.
  ASSERT_FALSE((*conn)["stacks"].empty());
  bool found = false;
  std::string frames;
  for (const auto& f : (*conn)["stacks"][0]["frames"]) {
    frames += f.get<std::string>() + " < ";
    if (f.get<std::string>().find("send_to_slow_peer") != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << frames;

  // TCP facts of the connection.
  ASSERT_TRUE((*conn)["tcp"].is_object());
  EXPECT_EQ((*conn)["tcp"].value("state", ""), "ESTABLISHED");
  EXPECT_GT((*conn)["tcp"].value("max_send_queue_bytes", 0), 0);
  EXPECT_TRUE(r.report["warnings"].empty()) << r.report["warnings"].dump();
}

// Non-blocking sends: EAGAIN and partial writes on the peer equal the
// fixture's own counts over the same window.
TEST(SocketsBpf, BackpressureCountsMatchFixture) {
  Watch r = run("nonblocking", 4);
  ASSERT_EQ(r.rc, 0) << r.stderr_text;
  ASSERT_TRUE(r.report.is_object()) << r.stderr_text;
  ASSERT_TRUE(r.truth.is_object());
  Truth t = truth_in_window(r);
  ASSERT_GT(t.eagain, 10u) << "the fixture never hit EAGAIN";
  ASSERT_GT(t.partial, 10u) << "the fixture never wrote partially";

  const json& list = r.report["connections_by_backpressure"];
  std::string peer = "127.0.0.1:" + std::to_string(r.peer_port);
  ASSERT_FALSE(list.empty()) << r.stderr_text;
  EXPECT_EQ(list[0].value("peer", ""), peer) << conns_text(list);
  const json* conn = find_conn(list, peer);
  ASSERT_NE(conn, nullptr) << conns_text(list);
  // One call per window edge may fall on either side.
  EXPECT_NEAR(conn->value("send_eagain", 0.0), static_cast<double>(t.eagain), 2.0);
  EXPECT_NEAR(conn->value("partial_writes", 0.0), static_cast<double>(t.partial), 2.0);
  const json* send = op_of(*conn, "send");
  ASSERT_NE(send, nullptr);
  EXPECT_NEAR(send->value("calls", 0.0), static_cast<double>(t.calls), 2.0);
  std::printf("[ measured ] backpressure: EAGAIN tickprobe %d fixture %llu; partial tickprobe %d fixture %llu; "
              "%llu sends\n",
              conn->value("send_eagain", 0), static_cast<unsigned long long>(t.eagain),
              conn->value("partial_writes", 0), static_cast<unsigned long long>(t.partial),
              static_cast<unsigned long long>(t.calls));
  EXPECT_EQ(r.report["totals"].value("send_eagain", 0), conn->value("send_eagain", 0));
}

// A process without socket calls gets a warning, not a silent empty report.
TEST(SocketsBpf, IdleProcessWarns) {
  tt::Subprocess idle({"/bin/sleep", "60"});
  tt::Subprocess probe({tt::bin_path("tickprobe"), "sockets", "-q", "--pid", std::to_string(idle.pid()), "-d", "1"});
  auto st = probe.wait_for(60s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, 0) << probe.stderr_text();
  EXPECT_NE(probe.stderr_text().find("saw 0 socket calls from pid " + std::to_string(idle.pid())), std::string::npos)
      << probe.stderr_text();
  EXPECT_NE(probe.stdout_text().find("saw 0 socket calls"), std::string::npos) << probe.stdout_text();
}

// Errors: one line and a hint, exit 1 at run time and 2 for bad usage.
TEST(SocketsBpf, ErrorsAndExitCodes) {
  tt::Subprocess gone({tt::bin_path("tickprobe"), "sockets", "--pid", "999999999", "-d", "1"});
  auto st = gone.wait_for(30s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, 1);
  EXPECT_NE(gone.stderr_text().find("error: process 999999999 does not exist"), std::string::npos)
      << gone.stderr_text();
  EXPECT_NE(gone.stderr_text().find("hint: "), std::string::npos) << gone.stderr_text();

  tt::Subprocess usage({tt::bin_path("tickprobe"), "sockets", "-d", "1"});
  st = usage.wait_for(30s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, 2);
}
