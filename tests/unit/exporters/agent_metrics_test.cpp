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
  TargetStats t;
  t.pid = 4242;
  t.comm = "tick\"game\\";
  st.targets = {t};
  st.targets_attached = 1;
  st.targets_added = 2;
  st.targets_removed = 1;
  st.drains = 5;
  Counters prof, off;
  prof[TP_ERR_STACKS_FULL] = 3;
  prof[TP_CTR_SAMPLES] = 1000;
  off[TP_CTR_BLOCKS] = 77;
  st.family_counters = {{"profile", prof}, {"offcpu", off}};
  // What a family contributes itself, with a label value that needs escaping.
  auto cpu = metric_family("tickprobe_target_cpu_seconds_total", "CPU time of a traced process.", MetricType::kCounter);
  add_sample(cpu, {{"pid", "4242"}, {"comm", t.comm}}, 1.25);
  st.family_metrics.push_back(cpu);
  st.symbolizer = {{"cache_hits", 10}, {"cache_misses", 2}};
  st.unwind = {{"rows_used", 100}};
  st.stacks = {{"missing", 4}};
  st.bpf_map_bytes = 1 << 20;
  st.self_rss_bytes = 50 << 20;
  st.self_cpu_seconds = 0.75;

  std::string text = render_prometheus_text(agent_metrics(st));
  EXPECT_EQ(text.find("# skipped"), std::string::npos) << text;
  // Every drop row of the counter table is exported, zeros included; work
  // rows only when they moved.
  EXPECT_NE(text.find("tickprobe_bpf_events_dropped_total{family=\"profile\",reason=\"stacks_full\"} 3"),
            std::string::npos) << text;
  EXPECT_NE(text.find("tickprobe_bpf_events_dropped_total{family=\"offcpu\",reason=\"slot_race\"} 0"),
            std::string::npos) << text;
  EXPECT_NE(text.find("tickprobe_family_events_total{event=\"samples\",family=\"profile\"} 1000"),
            std::string::npos) << text;
  EXPECT_EQ(text.find("event=\"tls_calls\""), std::string::npos) << text;
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
