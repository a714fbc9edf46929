#include "exporters/agent_metrics.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "exposition_parser.h"
#include "golden.h"

namespace tickprobe {
namespace {

const std::string kComm = "tick\"game\\";  // needs escaping

AgentStats populated_stats() {
  AgentStats st;
  st.uptime_seconds = 12.5;
  TargetStats t;
  t.pid = 4242;
  t.comm = kComm;
  RuntimeTargetStats r;
  r.has_coroutines = true;
  r.coroutines.created = 10;
  r.coroutines.destroyed = 4;
  r.frames = 600;
  r.budget_ns = 16'666'667;
  r.hitches_by_cause = {{"gc", 3}, {"socket_write", 2}};
  LatencyHistogram tick;
  for (uint64_t ns : {1'500'000ull, 1'500'000ull, 3'000'000ull, 40'000'000ull}) tick.add(ns);
  r.histograms["tick"] = tick;
  t.runtime = r;
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
  return st;
}

// The agent's /metrics body, through its Collectable: every value read back
// is the one in the stats, and promtool accepts it.
TEST(AgentMetrics, CollectableExportsTheStats) {
  AgentStats st = populated_stats();
  int scrapes = 0;
  AgentCollectable collectable([&] {
    ++scrapes;
    return st;
  });
  std::string text = prometheus_text(collectable);
  EXPECT_EQ(scrapes, 1) << "the stats are read at scrape time";
  auto e = testing::parse_exposition(text);
  ASSERT_TRUE(e.errors.empty()) << e.errors.front() << "\n" << text;

  // Every drop row of the counter table is exported, zeros included; work
  // rows only when they moved.
  EXPECT_EQ(e.value("tickprobe_bpf_events_dropped_total", {{"family", "profile"}, {"reason", "stacks_full"}}), 3);
  EXPECT_EQ(e.value("tickprobe_bpf_events_dropped_total", {{"family", "offcpu"}, {"reason", "slot_race"}}), 0);
  EXPECT_EQ(e.value("tickprobe_family_events_total", {{"event", "samples"}, {"family", "profile"}}), 1000);
  EXPECT_EQ(e.value("tickprobe_family_events_total", {{"event", "blocks"}, {"family", "offcpu"}}), 77);
  EXPECT_EQ(text.find("event=\"tls_calls\""), std::string::npos) << text;
  EXPECT_EQ(e.value("tickprobe_target_cpu_seconds_total", {{"comm", kComm}, {"pid", "4242"}}), 1.25);
  EXPECT_EQ(e.value("tickprobe_attach_failures_total", {{"family", "runtime"}, {"reason", "no_usdt_probes"}}), 2);
  EXPECT_EQ(e.value("tickprobe_tracked_processes_limit", {{"state", "live"}}), 1024);
  EXPECT_EQ(e.value("tickprobe_tracked_processes_limit", {{"state", "exited"}}), 64);
  EXPECT_EQ(e.value("tickprobe_tracked_processes", {{"state", "exited"}}), 3);
  EXPECT_EQ(e.value("tickprobe_forgotten_processes_total"), 7);
  EXPECT_EQ(e.value("tickprobe_exited_process_retention_seconds"), 180);
  EXPECT_EQ(e.value("tickprobe_targets_ticks_total"), 1200);
  EXPECT_EQ(e.value("tickprobe_targets_hitches_total", {{"cause", "cpu"}}), 0);
  EXPECT_EQ(e.value("tickprobe_targets_hitches_total", {{"cause", "gc"}}), 4);
  EXPECT_EQ(e.value("tickprobe_log_messages_suppressed_total"), 4312);
  EXPECT_EQ(e.value("tickprobe_uptime_seconds"), 12.5);
  EXPECT_EQ(e.value("process_resident_memory_bytes"), 50 << 20);
  EXPECT_EQ(e.value("tickprobe_bpf_map_bytes"), 1 << 20);

  // Game-runtime series of the target.
  const MetricLabels target{{"comm", kComm}, {"pid", "4242"}};
  EXPECT_EQ(e.value("tickprobe_coroutines_created_total", target), 10);
  EXPECT_EQ(e.value("tickprobe_coroutines_live", target), 6);
  EXPECT_EQ(e.value("tickprobe_ticks_total", target), 600);
  MetricLabels gc = target, sw = target;
  gc["cause"] = "gc";
  sw["cause"] = "socket_write";
  EXPECT_EQ(e.value("tickprobe_hitches_total", gc), 3);
  EXPECT_EQ(e.value("tickprobe_hitches_total", sw), 2);
  EXPECT_NEAR(e.value("tickprobe_tick_budget_seconds", target), 0.016666667, 1e-12);
  // The tick histogram: the library's histogram type, cumulative buckets.
  EXPECT_EQ(e.type.at("tickprobe_tick_duration_seconds"), "histogram");
  auto bucket = [&](const char* le) {
    MetricLabels l = target;
    l["le"] = le;
    return e.value("tickprobe_tick_duration_seconds_bucket", l);
  };
  EXPECT_EQ(bucket("0.001048576"), 0);
  EXPECT_EQ(bucket("0.002097152"), 2);
  EXPECT_EQ(bucket("0.004194304"), 3);
  EXPECT_EQ(bucket("0.033554432"), 3);
  EXPECT_EQ(bucket("0.067108864"), 4);
  EXPECT_EQ(bucket("+Inf"), 4);
  EXPECT_EQ(e.value("tickprobe_tick_duration_seconds_count", target), 4);
  EXPECT_NEAR(e.value("tickprobe_tick_duration_seconds_sum", target), 0.046, 1e-9);
  EXPECT_EQ(e.value("tickprobe_metrics_dropped_series_total", {{"reason", "invalid_family"}}), 0);

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
