// The sockets family through the Family interface, the way the agent runs
// it: created from the registry, drained on an interval, /metrics rendered
// and validated, and the hitch hook asked for the fixture's sender thread.
// Needs root and BPF (label: bpf).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "core/family.h"
#include "core/session.h"
#include "exporters/prometheus_exposition.h"
#include "probes/sockets.h"
#include "test_support.h"

using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace tickprobe {
namespace {

TEST(SocketsFamily, DrainMetricsAndHitchHook) {
  tt::Subprocess fx({tt::bin_path("sockets_fixture"), "--mode", "blocking", "--duration", "60"});
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((out = tt::read_file(fx.stdout_path())).find('\n') == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  int pid = 0, lport = 0, pport = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "ready %d %d %d", &pid, &lport, &pport), 3) << fx.stderr_text();

  auto session = Session::create({});
  ASSERT_TRUE(session) << session.error().message;
  ASSERT_TRUE((*session)->add_target(static_cast<uint32_t>(pid)));
  const FamilySpec* spec = find_family("sockets");
  ASSERT_NE(spec, nullptr);
  auto fam = spec->create(**session, FamilySettings(std::map<std::string, std::string>{{"tcp_probe_gap_us", "500"}}));
  ASSERT_TRUE(fam) << fam.error().message;
  auto* probe = dynamic_cast<SocketsProbe*>(fam->get());
  ASSERT_NE(probe, nullptr);
  EXPECT_FALSE(spec->create(**session, FamilySettings(std::map<std::string, std::string>{{"max_conns", "x"}})));

  // Three intervals: the first drain reads an empty slot (delayed drain),
  // the later ones the interval before.
  std::optional<SocketBlockedPeer> peer;
  for (int i = 0; i < 3; i++) {
    std::this_thread::sleep_for(500ms);
    probe->drain();
    if (auto p = probe->top_blocked_peer(static_cast<uint32_t>(pid), static_cast<uint32_t>(pid))) peer = p;
  }
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->op, "send");
  EXPECT_EQ(peer->peer, "127.0.0.1:" + std::to_string(pport));
  EXPECT_GT(peer->blocked_ns, 100'000'000u);  // most of a 500 ms interval
  std::printf("[ measured ] hitch hook: %s\n", peer->describe().c_str());
  EXPECT_GT(probe->socket_calls(static_cast<uint32_t>(pid)), 0u);

  MetricsSnapshot snap;
  probe->metrics(snap);
  for (const auto& f : snap) EXPECT_TRUE(validate_family(f)) << f.name;
  std::string text = prometheus_text(SnapshotCollectable([&snap] { return snap; }));
  EXPECT_NE(text.find("tickprobe_socket_blocked_seconds_bucket{comm=\"sockets_fixture\","), std::string::npos)
      << text;
  EXPECT_NE(text.find("op=\"send\""), std::string::npos) << text;
  EXPECT_NE(text.find("tickprobe_socket_backpressure_events_total"), std::string::npos) << text;
  EXPECT_NE(text.find("tickprobe_tcp_connections_total"), std::string::npos) << text;
  EXPECT_NE(text.find("tickprobe_tcp_retransmits_total"), std::string::npos) << text;
  EXPECT_NE(text.find("tickprobe_socket_top_peer_blocked_seconds"), std::string::npos) << text;

  Counters c = probe->counters();
  EXPECT_GT(c[TP_CTR_SOCK_SYSCALLS], 0u);
  EXPECT_GT(c[TP_CTR_SOCK_BLOCKS], 0u);
  EXPECT_EQ(c[TP_ERR_COUNTS_FULL], 0u);
  EXPECT_EQ(c[TP_ERR_START_FULL], 0u);
  fx.terminate();
}

}  // namespace
}  // namespace tickprobe
