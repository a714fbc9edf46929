#include "exporters/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <thread>

#include "golden.h"

namespace tickprobe {
namespace {

// A registry shaped like the agent's: self-accounting counters, gauges,
// latency and size histograms, a scrape-time collector, and label values
// that need escaping.
MetricsRegistry& fill(MetricsRegistry& r) {
  EXPECT_TRUE(r.add_counter("tickprobe_lost_samples_total", "Samples lost because the ring buffer was full.",
                            {{"probe", "profile"}}, 3));
  EXPECT_TRUE(r.add_counter("tickprobe_lost_samples_total", "Samples lost because the ring buffer was full.",
                            {{"probe", "offcpu"}}, 1));
  EXPECT_TRUE(r.set_counter("tickgame_ticks_total", "Server ticks observed.", {}, 123456789012));
  EXPECT_TRUE(r.set_gauge("tickgame_players", "Connected players.", {{"map", "de_dust \"2\"\\new\nline"}}, 42));
  EXPECT_TRUE(r.set_gauge("tickgame_tick_budget_ratio", "Fraction of the tick budget used.\nSecond \\ line.", {},
                          0.625));
  EXPECT_TRUE(r.set_gauge("tickgame_last_gc_seconds", "Seconds since the last GC, NaN if none.", {},
                          std::numeric_limits<double>::quiet_NaN()));
  EXPECT_TRUE(r.set_gauge("tickgame_deadline_slack_seconds", "Worst slack, -Inf when missed.", {{"phase", "net"}},
                          -std::numeric_limits<double>::infinity()));

  // Tick duration from a BPF log2 histogram in nanoseconds.
  std::vector<uint64_t> slots(34, 0);
  slots[9] = 5;    // [512ns, 1024ns): edge 1.024µs -> le 2e-06
  slots[20] = 10;  // [1.05ms, 2.10ms) -> le 0.004096
  slots[23] = 7;   // [8.4ms, 16.8ms) -> le 0.032768
  slots[33] = 1;   // [8.6s, 17.2s): edge beyond 16.777216 -> +Inf only
  auto bounds = log2_bucket_bounds(1e-6, 16);
  EXPECT_TRUE(r.set_histogram("tickgame_tick_duration_seconds", "Server tick duration.", {{"map", "arena"}},
                              histogram_from_log2_slots(slots, 1e-9, bounds, 9.5)));
  std::vector<double> size_bounds = {64, 256, 1024, 4096};
  for (double v : {10.0, 64.0, 65.0, 3000.0, 100000.0}) {
    EXPECT_TRUE(r.observe("tickgame_packet_size_bytes", "Size of sent packets.", {{"dir", "out"}}, size_bounds, v));
  }
  r.add_collector([](MetricsSnapshot& s) {
    MetricFamily f{"tickprobe_probe_attached", "1 if the probe is attached.", MetricType::kGauge, {}};
    f.samples.push_back({{{"probe", "profile"}}, 1, {}});
    f.samples.push_back({{{"probe", "offcpu"}}, 0, {}});
    s.push_back(std::move(f));
    MetricFamily u{"tickprobe_build_info", "Build information.", MetricType::kUntyped, {}};
    u.samples.push_back({{{"version", "0.1.0"}}, 1, {}});
    s.push_back(std::move(u));
  });
  return r;
}

TEST(Prometheus, GoldenText) {
  MetricsRegistry r;
  std::string text = fill(r).render();
  testing::expect_matches_golden("metrics.prom", text);
}

TEST(Prometheus, Format) {
  MetricsRegistry r;
  std::string text = fill(r).render();
  EXPECT_NE(text.find("# HELP tickprobe_lost_samples_total Samples lost because the ring buffer was full.\n"
                      "# TYPE tickprobe_lost_samples_total counter\n"
                      "tickprobe_lost_samples_total{probe=\"offcpu\"} 1\n"
                      "tickprobe_lost_samples_total{probe=\"profile\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tickgame_ticks_total 123456789012\n"), std::string::npos);
  EXPECT_NE(text.find("tickgame_players{map=\"de_dust \\\"2\\\"\\\\new\\nline\"} 42\n"), std::string::npos);
  EXPECT_NE(text.find("# HELP tickgame_tick_budget_ratio Fraction of the tick budget used.\\nSecond \\\\ line.\n"),
            std::string::npos);
  EXPECT_NE(text.find("tickgame_last_gc_seconds NaN\n"), std::string::npos);
  EXPECT_NE(text.find("tickgame_deadline_slack_seconds{phase=\"net\"} -Inf\n"), std::string::npos);
  EXPECT_NE(text.find("tickgame_packet_size_bytes_bucket{dir=\"out\",le=\"64\"} 2\n"
                      "tickgame_packet_size_bytes_bucket{dir=\"out\",le=\"256\"} 3\n"
                      "tickgame_packet_size_bytes_bucket{dir=\"out\",le=\"1024\"} 3\n"
                      "tickgame_packet_size_bytes_bucket{dir=\"out\",le=\"4096\"} 4\n"
                      "tickgame_packet_size_bytes_bucket{dir=\"out\",le=\"+Inf\"} 5\n"
                      "tickgame_packet_size_bytes_sum{dir=\"out\"} 103139\n"
                      "tickgame_packet_size_bytes_count{dir=\"out\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tickgame_tick_duration_seconds_bucket{map=\"arena\",le=\"+Inf\"} 23\n"), std::string::npos)
      << "le comes last, as in the Go client";
  EXPECT_NE(text.find("tickprobe_metrics_dropped_series_total 0\n"), std::string::npos);
  EXPECT_NE(text.find("tickprobe_probe_attached{probe=\"profile\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE tickprobe_build_info untyped\n"), std::string::npos);
}

TEST(Prometheus, PromtoolAcceptsOutput) {
  MetricsRegistry r;
  std::string text = fill(r).render();
  std::string dir = testing::make_temp_dir("promtool");
  std::string path = dir + "/metrics.prom";
  testing::write_file(path, text);
  std::string out;
  ASSERT_EQ(testing::run_command("command -v promtool", &out), 0)
      << "promtool not found\nhint: run scripts/bootstrap.sh (installs prometheus)";
  int rc = testing::run_command("promtool check metrics < '" + path + "'", &out, true);
  EXPECT_EQ(rc, 0) << out << "\n--- input ---\n" << text;
  EXPECT_EQ(out, "") << "promtool lint findings";
  if (rc == 0) std::filesystem::remove_all(dir);
}

TEST(Prometheus, FormatsValues) {
  EXPECT_EQ(format_prometheus_value(0), "0");
  EXPECT_EQ(format_prometheus_value(-0.0), "0");
  EXPECT_EQ(format_prometheus_value(42), "42");
  EXPECT_EQ(format_prometheus_value(1e12), "1000000000000");
  EXPECT_EQ(format_prometheus_value(-17), "-17");
  EXPECT_EQ(format_prometheus_value(0.1), "0.1");
  EXPECT_EQ(format_prometheus_value(0.000001), "1e-06");
  EXPECT_EQ(format_prometheus_value(2.5e20), "2.5e+20");
  EXPECT_EQ(format_prometheus_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_prometheus_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_prometheus_value(std::nan("")), "NaN");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
}

TEST(Prometheus, Log2Buckets) {
  auto bounds = log2_bucket_bounds(1e-6, 16);
  ASSERT_EQ(bounds.size(), 25u);
  EXPECT_DOUBLE_EQ(bounds.front(), 1e-6);
  EXPECT_DOUBLE_EQ(bounds.back(), 16.777216);

  // Microsecond slots map exactly: slot i's edge 2^(i+1) µs == bound i+1.
  std::vector<uint64_t> us(30, 0);
  us[0] = 4;   // 0..1µs   -> le 2e-06
  us[3] = 2;   // 8..15µs  -> le 1.6e-05
  us[29] = 1;  // ~9..18 min -> +Inf
  HistogramData h = histogram_from_log2_slots(us, 1e-6, bounds);
  EXPECT_EQ(h.count(), 7u);
  EXPECT_EQ(h.bucket_counts[1], 4u);
  EXPECT_EQ(h.bucket_counts[4], 2u);
  EXPECT_EQ(h.bucket_counts.back(), 1u);
  EXPECT_NEAR(h.sum, (4 * 0.5 + 2 * 12 + 1 * 1.5 * std::ldexp(1.0, 29)) * 1e-6, 1e-9);

  // Nanosecond slots: every value stays <= its bucket's le.
  std::vector<uint64_t> ns(40, 0);
  ns[9] = 1;   // [512, 1024) ns: edge 1.024µs -> le 2e-06 (1e-06 would be a lie)
  ns[10] = 1;  // [1024, 2048) ns: edge 2.048µs -> le 4e-06
  HistogramData hn = histogram_from_log2_slots(ns, 1e-9, bounds, 42.0);
  EXPECT_EQ(hn.bucket_counts[1], 1u);
  EXPECT_EQ(hn.bucket_counts[2], 1u);
  EXPECT_EQ(hn.sum, 42.0);
}

TEST(Prometheus, RegistryRejectsBadInput) {
  MetricsRegistry r;
  EXPECT_FALSE(r.add_counter("tickprobe_lost_samples", "no _total suffix", {}, 1));
  EXPECT_FALSE(r.set_gauge("tickgame_players_total", "gauge named like a counter", {}, 1));
  EXPECT_FALSE(r.set_gauge("1bad", "bad name", {}, 1));
  EXPECT_FALSE(r.set_gauge("ok_gauge", "bad label", {{"__reserved", "x"}}, 1));
  EXPECT_FALSE(r.set_gauge("ok_gauge", "bad label", {{"bad-label", "x"}}, 1));
  EXPECT_FALSE(r.set_gauge("ok_gauge", "", {}, 1)) << "help is required";
  EXPECT_FALSE(r.add_counter("x_total", "h", {}, -1)) << "counters only go up";
  EXPECT_FALSE(r.observe("h_seconds", "h", {{"le", "1"}}, {1, 2}, 1));
  EXPECT_FALSE(r.set_histogram("h_seconds", "h", {}, HistogramData{{2, 1}, {0, 0, 0}, 0}));
  ASSERT_TRUE(r.set_gauge("ok_gauge", "help", {}, 1));
  EXPECT_FALSE(r.add_counter("ok_gauge", "help", {}, 1)) << "type conflict";
  auto st = r.set_gauge("ok_gauge", "other help", {}, 1);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("ok_gauge"), std::string::npos);
}

TEST(Prometheus, SeriesCapIsCountedNotSilent) {
  MetricsRegistry r(2);
  EXPECT_TRUE(r.set_gauge("g", "help", {{"pid", "1"}}, 1));
  EXPECT_TRUE(r.set_gauge("g", "help", {{"pid", "2"}}, 1));
  EXPECT_FALSE(r.set_gauge("g", "help", {{"pid", "3"}}, 1));
  EXPECT_TRUE(r.set_gauge("g", "help", {{"pid", "2"}}, 5)) << "existing series still update";
  std::string text = r.render();
  EXPECT_NE(text.find("tickprobe_metrics_dropped_series_total 1\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("pid=\"3\""), std::string::npos);
  EXPECT_NE(text.find("g{pid=\"2\"} 5\n"), std::string::npos);
}

TEST(Prometheus, RenderSkipsInvalidAndMergesFamilies) {
  MetricsSnapshot s;
  s.push_back({"a_total", "A.", MetricType::kCounter, {{{{"x", "1"}}, 1, {}}}});
  s.push_back({"bad name", "B.", MetricType::kGauge, {{{}, 1, {}}}});
  s.push_back({"a_total", "A.", MetricType::kCounter, {{{{"x", "2"}}, 2, {}}}});
  s.push_back({"a_total", "A.", MetricType::kGauge, {{{}, 2, {}}}});  // invalid: gauge with _total
  s.push_back({"empty", "No samples yet.", MetricType::kGauge, {}});
  std::string text = render_prometheus_text(s);
  EXPECT_EQ(text,
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2\n"
            "# skipped invalid metric family: invalid metric name \"bad name\"\n"
            "# skipped invalid metric family: metric a_total ends in _total but is a gauge\n");
}

TEST(Prometheus, RegistryIsThreadSafe) {
  MetricsRegistry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 2000; ++i) {
        (void)r.add_counter("events_total", "Events.", {{"worker", std::to_string(t % 2)}}, 1);
        (void)r.observe("latency_seconds", "Latency.", {}, {0.001, 0.01}, 0.005);
        if (i % 100 == 0) (void)r.render();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::string text = r.render();
  EXPECT_NE(text.find("events_total{worker=\"0\"} 4000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("events_total{worker=\"1\"} 4000\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_count 8000\n"), std::string::npos);
}

}  // namespace
}  // namespace tickprobe
