#include "exporters/agent_metrics.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "golden.h"

namespace tickprobe {
namespace {

// The agent's /metrics body must pass promtool with every map populated,
// including label values that need escaping.
TEST(AgentMetrics, PromtoolAcceptsPopulatedStats) {
  AgentStats st;
  st.uptime_seconds = 12.5;
  st.cpu_frequency = 99;
  st.cpu_event = "cpu-clock";
  TargetStats t;
  t.pid = 4242;
  t.comm = "tick\"game\\";
  t.cpu_seconds = 1.25;
  t.offcpu_seconds = {{"S", 3.5}, {"D", 0.25}};
  st.targets = {t};
  st.targets_attached = 1;
  st.targets_added = 2;
  st.targets_removed = 1;
  st.cpu_samples = 1000;
  st.offcpu_blocks = 77;
  st.drains = 5;
  st.family_counters = {{"profile", {{"stacks_full", 3}}}, {"offcpu", {{"lost", 1}}}};
  st.symbolizer = {{"cache_hits", 10}, {"cache_misses", 2}};
  st.unwind = {{"rows_used", 100}};
  st.stacks = {{"missing", 4}};
  st.bpf_map_bytes = 1 << 20;
  st.self_rss_bytes = 50 << 20;
  st.self_cpu_seconds = 0.75;

  std::string text = render_prometheus_text(agent_metrics(st));
  EXPECT_EQ(text.find("# skipped"), std::string::npos) << text;
  std::string dir = testing::make_temp_dir("agent-metrics");
  testing::write_file(dir + "/metrics.prom", text);
  std::string out;
  ASSERT_EQ(testing::run_command("command -v promtool", &out), 0)
      << "promtool not found\nhint: run scripts/bootstrap.sh (installs prometheus)";
  int rc = testing::run_command("promtool check metrics < '" + dir + "/metrics.prom'", &out, true);
  EXPECT_EQ(rc, 0) << out << "\n--- input ---\n" << text;
  EXPECT_EQ(out, "") << "promtool lint findings\n--- input ---\n" << text;
  if (rc == 0 && out.empty()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tickprobe
