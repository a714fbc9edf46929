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
  st.forget_exited_after_s = 180;
  st.max_targets = 1024;
  st.max_exited_targets = 64;
  st.exited_targets = 3;
  st.forgotten_targets = 7;
  st.all_ticks = 1200;
  st.all_hitches_by_cause = {{"gc", 4}, {"socket_write", 1}};
  st.attach_failures = {{{"runtime", "no_usdt_probes"}, 2}};
  st.degraded = {"runtime"};
  st.log_messages_suppressed = 4312;
  st.log_lines_printed = 20;

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
  for (const char* line : {"tickprobe_attach_failures_total{family=\"runtime\",reason=\"no_usdt_probes\"} 2",
                           "tickprobe_tracked_processes_limit{state=\"exited\"} 64",
                           "tickprobe_tracked_processes{state=\"exited\"} 3", "tickprobe_forgotten_processes_total 7",
                           "tickprobe_exited_process_retention_seconds 180", "tickprobe_targets_ticks_total 1200",
                           "tickprobe_targets_hitches_total{cause=\"cpu\"} 0",
                           "tickprobe_targets_hitches_total{cause=\"gc\"} 4",
                           "tickprobe_log_messages_suppressed_total 4312"})
    EXPECT_NE(text.find(std::string(line) + "\n"), std::string::npos) << line;
  EXPECT_EQ(agent_health_text(st), "degraded: runtime family not attached (no_usdt_probes x2)\n");
  AgentStats healthy;
  EXPECT_EQ(agent_health_text(healthy), "ok\n");
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
