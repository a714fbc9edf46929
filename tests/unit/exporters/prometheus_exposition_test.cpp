#include "exporters/prometheus_exposition.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>
#include <thread>

#include "exposition_parser.h"
#include "golden.h"
#include "model/histogram.h"

namespace tickprobe {
namespace {

using testing::parse_exposition;

MetricFamily gauge(std::string name, std::string help, std::vector<std::pair<MetricLabels, double>> series) {
  MetricFamily f = metric_family(std::move(name), std::move(help), MetricType::kGauge);
  for (auto& [l, v] : series) add_sample(f, l, v);
  return f;
}

MetricFamily counter(std::string name, std::vector<std::pair<MetricLabels, double>> series) {
  MetricFamily f = metric_family(std::move(name), "Some events.", MetricType::kCounter);
  for (auto& [l, v] : series) add_sample(f, l, v);
  return f;
}

const std::string kAwkwardLabel = "de_dust \"2\"\\new\nline";
const std::string kAwkwardHelp = "Fraction of the tick budget used.\nSecond \\ line.";

// Input shaped like the agent's: self-accounting counters from two families
// under one name, gauges with NaN/-Inf and awkward label values, latency and
// size histograms, an untyped family, and families given out of order.
MetricsSnapshot agent_like_snapshot() {
  MetricsSnapshot s;
  s.push_back(counter("tickprobe_lost_samples_total", {{{{"probe", "profile"}}, 3}}));
  s.push_back(counter("tickgame_ticks_total", {{{}, 123456789012}}));
  s.push_back(gauge("tickgame_players", "Connected players.", {{{{"map", kAwkwardLabel}}, 42}}));
  s.push_back(gauge("tickgame_tick_budget_ratio", kAwkwardHelp, {{{}, 0.625}}));
  s.push_back(gauge("tickgame_last_gc_seconds", "Seconds since the last GC, NaN if none.",
                    {{{}, std::numeric_limits<double>::quiet_NaN()}}));
  s.push_back(gauge("tickgame_deadline_slack_seconds", "Worst slack, -Inf when missed.",
                    {{{{"phase", "net"}}, -std::numeric_limits<double>::infinity()}}));
  // Latency: the agent's bounds (2^10 .. 2^36 ns, in seconds).
  MetricFamily tick = metric_family("tickgame_tick_duration_seconds", "Server tick duration.", MetricType::kHistogram);
  MetricSample ts;
  ts.labels = {{"map", "arena"}};
  ts.histogram = HistogramData::with_bounds(latency_bucket_bounds_seconds());
  for (double v : {0.0009, 0.0009, 0.003, 0.003, 0.003, 0.02, 100.0}) ts.histogram.observe(v);
  tick.samples.push_back(ts);
  s.push_back(tick);
  MetricFamily size = metric_family("tickgame_packet_size_bytes", "Size of sent packets.", MetricType::kHistogram);
  MetricSample ps;
  ps.labels = {{"dir", "out"}};
  ps.histogram = HistogramData::with_bounds({64, 256, 1024, 4096});
  for (double v : {10.0, 64.0, 65.0, 3000.0, 100000.0}) ps.histogram.observe(v);
  size.samples.push_back(ps);
  s.push_back(size);
  s.push_back(counter("tickprobe_lost_samples_total", {{{{"probe", "offcpu"}}, 1}}));
  MetricFamily info = metric_family("tickprobe_build_info", "Build information.", MetricType::kUntyped);
  add_sample(info, {{"version", "0.1.0"}}, 1);
  s.push_back(info);
  return s;
}

std::string render(const MetricsSnapshot& s, size_t cap = kDefaultMaxSeriesPerFamily) {
  SnapshotCollectable c([s] { return s; }, cap);
  return prometheus_text(c);
}

TEST(Prometheus, GoldenText) { testing::expect_matches_golden("metrics.prom", render(agent_like_snapshot())); }

// What a scraper reads back is exactly what went in.
TEST(Prometheus, ParsedValuesMatchInput) {
  auto e = parse_exposition(render(agent_like_snapshot()));
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.type.at("tickprobe_lost_samples_total"), "counter");
  EXPECT_EQ(e.value("tickprobe_lost_samples_total", {{"probe", "profile"}}), 3);
  EXPECT_EQ(e.value("tickprobe_lost_samples_total", {{"probe", "offcpu"}}), 1) << "merged from a second contribution";
  EXPECT_EQ(e.value("tickgame_ticks_total"), 123456789012.0);
  EXPECT_EQ(e.type.at("tickgame_players"), "gauge");
  EXPECT_EQ(e.value("tickgame_players", {{"map", kAwkwardLabel}}), 42) << "label value escaped and read back";
  EXPECT_EQ(e.help.at("tickgame_tick_budget_ratio"), kAwkwardHelp) << "HELP escaped and read back";
  EXPECT_EQ(e.value("tickgame_tick_budget_ratio"), 0.625);
  EXPECT_TRUE(std::isnan(e.value("tickgame_last_gc_seconds")) && e.has("tickgame_last_gc_seconds"));
  EXPECT_EQ(e.value("tickgame_deadline_slack_seconds", {{"phase", "net"}}), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(e.type.at("tickprobe_build_info"), "untyped");
  EXPECT_EQ(e.value("tickprobe_build_info", {{"version", "0.1.0"}}), 1);

  // Histograms: cumulative buckets, +Inf == _count, _sum of the observations.
  EXPECT_EQ(e.type.at("tickgame_packet_size_bytes"), "histogram");
  auto bucket = [&](const char* name, MetricLabels l, const char* le) {
    l["le"] = le;
    return e.value(std::string(name) + "_bucket", l);
  };
  EXPECT_EQ(bucket("tickgame_packet_size_bytes", {{"dir", "out"}}, "64"), 2);
  EXPECT_EQ(bucket("tickgame_packet_size_bytes", {{"dir", "out"}}, "256"), 3);
  EXPECT_EQ(bucket("tickgame_packet_size_bytes", {{"dir", "out"}}, "1024"), 3);
  EXPECT_EQ(bucket("tickgame_packet_size_bytes", {{"dir", "out"}}, "4096"), 4);
  EXPECT_EQ(bucket("tickgame_packet_size_bytes", {{"dir", "out"}}, "+Inf"), 5);
  EXPECT_EQ(e.value("tickgame_packet_size_bytes_count", {{"dir", "out"}}), 5);
  EXPECT_EQ(e.value("tickgame_packet_size_bytes_sum", {{"dir", "out"}}), 103139);
  // Latency bounds as the agent exports them: 2^k ns, written as decimals.
  const MetricLabels arena{{"map", "arena"}};
  EXPECT_EQ(e.count("tickgame_tick_duration_seconds_bucket"), latency_bucket_bounds_seconds().size() + 1);
  EXPECT_EQ(bucket("tickgame_tick_duration_seconds", arena, "1.024e-06"), 0);
  EXPECT_EQ(bucket("tickgame_tick_duration_seconds", arena, "0.000524288"), 0);
  EXPECT_EQ(bucket("tickgame_tick_duration_seconds", arena, "0.001048576"), 2);
  EXPECT_EQ(bucket("tickgame_tick_duration_seconds", arena, "0.004194304"), 5);
  EXPECT_EQ(bucket("tickgame_tick_duration_seconds", arena, "0.033554432"), 6);
  EXPECT_EQ(bucket("tickgame_tick_duration_seconds", arena, "68.719476736"), 6);
  EXPECT_EQ(bucket("tickgame_tick_duration_seconds", arena, "+Inf"), 7);
  EXPECT_EQ(e.value("tickgame_tick_duration_seconds_count", arena), 7);
  EXPECT_NEAR(e.value("tickgame_tick_duration_seconds_sum", arena), 2 * 0.0009 + 3 * 0.003 + 0.02 + 100, 1e-12);

  // The exposition's own accounting is always there.
  EXPECT_EQ(e.type.at("tickprobe_metrics_dropped_series_total"), "counter");
  for (const char* reason : {"invalid_family", "duplicate_series", "series_limit"})
    EXPECT_EQ(e.value("tickprobe_metrics_dropped_series_total", {{"reason", reason}}), 0) << reason;
  // Sorted by family name, whatever the order of contribution.
  EXPECT_TRUE(std::is_sorted(e.family_order.begin(), e.family_order.end()));
}

TEST(Prometheus, PromtoolAcceptsOutput) {
  std::string text = render(agent_like_snapshot());
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

TEST(Prometheus, ValueSpelling) {
  std::string text = render({gauge("v", "Values.",
                                   {{{{"k", "int"}}, 1e12},
                                    {{{"k", "neg"}}, -17},
                                    {{{"k", "negzero"}}, -0.0},
                                    {{{"k", "frac"}}, 0.1},
                                    {{{"k", "small"}}, 0.000001},
                                    {{{"k", "big"}}, 2.5e20},
                                    {{{"k", "inf"}}, std::numeric_limits<double>::infinity()}})});
  for (const char* line : {"v{k=\"int\"} 1000000000000\n", "v{k=\"neg\"} -17\n", "v{k=\"negzero\"} 0\n",
                           "v{k=\"frac\"} 0.1\n", "v{k=\"small\"} 1e-06\n", "v{k=\"big\"} 2.5e+20\n",
                           "v{k=\"inf\"} +Inf\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << text;
  EXPECT_EQ(escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
}

TEST(Prometheus, InvalidFamiliesAreLeftOutAndCounted) {
  MetricsSnapshot invalid;
  invalid.push_back(gauge("bad name", "B.", {{{}, 1}}));
  invalid.push_back(counter("tickprobe_lost_samples", {{{}, 1}, {{{"x", "2"}}, 1}}));  // counter without _total
  invalid.push_back(gauge("players_total", "Gauge named like a counter.", {{{}, 1}}));
  invalid.push_back(gauge("ok_gauge", "Bad label.", {{{{"__reserved", "x"}}, 1}}));
  invalid.push_back(gauge("ok_gauge2", "Bad label.", {{{{"bad-label", "x"}}, 1}}));
  MetricFamily le = metric_family("h_seconds", "Histogram using le.", MetricType::kHistogram);
  MetricSample hs;
  hs.labels = {{"le", "1"}};
  hs.histogram = HistogramData::with_bounds({1, 2});
  le.samples.push_back(hs);
  invalid.push_back(le);
  MetricFamily unsorted = metric_family("h2_seconds", "Bounds out of order.", MetricType::kHistogram);
  unsorted.samples.push_back(MetricSample{{}, 0, HistogramData{{2, 1}, {0, 0, 0}, 0}});
  invalid.push_back(unsorted);
  MetricFamily shape = metric_family("h3_seconds", "Too few buckets.", MetricType::kHistogram);
  shape.samples.push_back(MetricSample{{}, 0, HistogramData{{1, 2}, {0, 0}, 0}});
  invalid.push_back(shape);
  for (const auto& f : invalid) EXPECT_FALSE(validate_family(f)) << f.name;
  EXPECT_NE(validate_family(invalid[1]).error().message.find("_total"), std::string::npos);

  MetricsSnapshot s;
  s.push_back(counter("a_total", {{{{"x", "1"}}, 1}}));
  s.push_back(gauge("clash", "A gauge.", {{{}, 1}}));
  s.insert(s.end(), invalid.begin(), invalid.end());
  MetricFamily clash = metric_family("clash", "The same name, another type.", MetricType::kUntyped);
  add_sample(clash, {{"x", "1"}}, 2);
  s.push_back(clash);
  s.push_back(counter("tickprobe_metrics_dropped_series_total", {{{}, 5}}));  // the exposition's own name
  for (const auto& f : s) {
    if (f.name == "a_total" || f.name == "clash" || f.name == "tickprobe_metrics_dropped_series_total") {
      EXPECT_TRUE(validate_family(f)) << f.name;
    }
  }

  ExpositionDrops d;
  auto families = to_prometheus_families(s, kDefaultMaxSeriesPerFamily, &d);
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(families[0].name, "a_total");
  EXPECT_EQ(d.invalid_family, 10u) << "every series of the invalid families and of the type clash";

  auto e = parse_exposition(render(s));
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.family_order, (std::vector<std::string>{"a_total", "clash", "tickprobe_metrics_dropped_series_total"}));
  EXPECT_EQ(e.value("a_total", {{"x", "1"}}), 1);
  EXPECT_EQ(e.type.at("clash"), "gauge") << "the first type wins";
  EXPECT_EQ(e.value("clash"), 1);
  EXPECT_EQ(e.value("tickprobe_metrics_dropped_series_total", {{"reason", "invalid_family"}}), 11)
      << "plus the series contributed under the exposition's own name";
}

TEST(Prometheus, DuplicatesAndEmptyFamilies) {
  MetricsSnapshot s;
  s.push_back(counter("a_total", {{{{"x", "2"}}, 2}, {{{"x", "1"}}, 1}}));
  s.push_back(counter("a_total", {{{{"x", "1"}}, 7}}));  // repeats a series: the first one stays
  s.push_back(metric_family("empty", "No series yet.", MetricType::kGauge));
  auto e = parse_exposition(render(s));
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.type.count("empty"), 0u) << "families without series are left out";
  EXPECT_EQ(e.value("a_total", {{"x", "1"}}), 1);
  EXPECT_EQ(e.value("a_total", {{"x", "2"}}), 2);
  EXPECT_EQ(e.value("tickprobe_metrics_dropped_series_total", {{"reason", "duplicate_series"}}), 1);
}

TEST(Prometheus, SeriesCapIsCountedNotSilent) {
  MetricsSnapshot s{gauge("g", "Per process.", {{{{"pid", "1"}}, 1}, {{{"pid", "3"}}, 3}, {{{"pid", "2"}}, 2}})};
  SnapshotCollectable c([s] { return s; }, 2);
  auto e = parse_exposition(prometheus_text(c));
  EXPECT_EQ(e.count("g"), 2u);
  EXPECT_EQ(e.value("g", {{"pid", "1"}}), 1);
  EXPECT_EQ(e.value("g", {{"pid", "2"}}), 2);
  EXPECT_FALSE(e.has("g", {{"pid", "3"}})) << "the sorted first series stay";
  EXPECT_EQ(e.value("tickprobe_metrics_dropped_series_total", {{"reason", "series_limit"}}), 1);
  e = parse_exposition(prometheus_text(c));
  EXPECT_EQ(e.value("tickprobe_metrics_dropped_series_total", {{"reason", "series_limit"}}), 2)
      << "a counter: each scrape that leaves a series out adds it";
}

// Pull model: the source runs on every scrape, from any HTTP thread.
TEST(Prometheus, CollectReadsTheSourceAtScrapeTime) {
  std::atomic<int> calls{0};
  SnapshotCollectable c([&calls] {
    int n = ++calls;
    return MetricsSnapshot{counter("scrapes_total", {{{}, static_cast<double>(n)}})};
  });
  EXPECT_EQ(parse_exposition(prometheus_text(c)).value("scrapes_total"), 1);
  EXPECT_EQ(parse_exposition(prometheus_text(c)).value("scrapes_total"), 2);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (!parse_exposition(prometheus_text(c)).errors.empty()) ++bad;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(calls.load(), 802);
}

}  // namespace
}  // namespace tickprobe
