// Ground truth for `tickprobe leaks` against the leak fixture
// (tests/fixtures/leak): leak_tick() -> leak_memory_slowly() leaks at a known
// rate, pool_churn() keeps a flat pool and warm_cache_fill() grows a cache
// for one second and stops. The fixture rewrites --stats-file every 100 ms
// with the bytes it leaked so far; the test polls it while tickprobe runs and
// compares the report with what leaked during tickprobe's watch. Needs root
// and BPF (label: bpf).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct TruthPoint {
  double t_s;  // since tickprobe started
  double leaked_bytes;
};

struct Hunt {
  int rc = -1;
  std::string stderr_text;
  json report;
  double t_exit_s = 0;  // tickprobe's exit, since it started
  std::vector<TruthPoint> truth;

  // The fixture's leaked bytes at time t (linear between polls).
  double leaked_at(double t) const {
    if (truth.empty()) return NAN;
    if (t <= truth.front().t_s) return truth.front().leaked_bytes;
    for (size_t i = 1; i < truth.size(); i++) {
      if (t <= truth[i].t_s) {
        const auto &a = truth[i - 1], &b = truth[i];
        return a.leaked_bytes + (b.leaked_bytes - a.leaked_bytes) * (t - a.t_s) / (b.t_s - a.t_s);
      }
    }
    return truth.back().leaked_bytes;
  }
  // Bytes leaked while tickprobe watched: its report covers duration_s
  // seconds that ended just before it exited (symbolizing and printing the
  // report takes a few ms, which this ignores: < 1% of the window).
  double leaked_in_window() const {
    double d = report.value("duration_s", 0.0);
    return leaked_at(t_exit_s) - leaked_at(t_exit_s - d);
  }
};

// Starts the fixture, waits for "ready <pid>", runs `tickprobe leaks` on it
// while polling the fixture's stats file, and stops the fixture.
Hunt hunt(const std::string& fixture, const std::vector<std::string>& fixture_args,
          const std::vector<std::string>& tickprobe_args, const std::vector<std::string>& fixture_env = {},
          bool quiet = true) {
  Hunt h;
  std::string stats = "/tmp/tickprobe-leaks-bpf-" + std::to_string(getpid()) + "-" + fixture + ".json";
  std::vector<std::string> fargv = {tt::bin_path(fixture), "--duration", "30", "--stats-file", stats};
  fargv.insert(fargv.end(), fixture_args.begin(), fixture_args.end());
  tt::Subprocess fx(fargv, fixture_env);
  auto deadline = Clock::now() + 10s;
  while (tt::read_file(fx.stdout_path()).find("ready ") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_NE(tt::read_file(fx.stdout_path()).find("ready "), std::string::npos)
      << fixture << " did not start: " << fx.stderr_text();

  auto read_truth = [&](Clock::time_point t0) {
    json j = json::parse(tt::read_file(stats), nullptr, false);  // rewritten with rename: never torn
    if (j.is_object() && j.contains("leaked_bytes"))
      h.truth.push_back({seconds_since(t0), j["leaked_bytes"].get<double>()});
  };
  std::vector<std::string> argv = {tt::bin_path("tickprobe"), "leaks", "--pid", std::to_string(fx.pid()), "--json"};
  if (quiet) argv.push_back("-q");
  argv.insert(argv.end(), tickprobe_args.begin(), tickprobe_args.end());
  auto t0 = Clock::now();
  tt::Subprocess probe(argv);
  std::optional<int> st;
  while (!(st = probe.wait_for(50ms)) && seconds_since(t0) < 60) read_truth(t0);
  h.t_exit_s = seconds_since(t0);
  read_truth(t0);
  if (!st) probe.kill_now();
  h.rc = st.value_or(-1);
  h.stderr_text = probe.stderr_text();
  h.report = json::parse(probe.stdout_text(), nullptr, false);
  fx.terminate();
  unlink(stats.c_str());
  return h;
}

bool stack_has(const json& entry, const std::string& fn) {
  for (const auto& f : entry["stack"]["frames"])
    if (f.get<std::string>().find(fn) != std::string::npos) return true;
  return false;
}

std::string describe(const json& list) {
  std::string s;
  for (const auto& l : list) {
    s += "  " + l.value("site", "?") + " bytes=" + std::to_string(l.value("bytes", 0.0)) +
         " growth/s=" + std::to_string(l.value("growth_bytes_per_s", 0.0)) + " (" + l.value("why", "") + ") [";
    for (const auto& f : l["stack"]["frames"]) s += f.get<std::string>() + " < ";
    s += "]\n";
  }
  return s;
}

// The checks shared by every run: the top leak is leak_memory_slowly called
// from leak_tick, and neither the pool nor the cache is called a leak.
void expect_fixture_leak_found(const Hunt& h) {
  ASSERT_EQ(h.rc, 0) << h.stderr_text;
  ASSERT_TRUE(h.report.is_object()) << "no JSON report";
  const json& leaks = h.report["leaks"];
  ASSERT_FALSE(leaks.empty()) << "no leak found; not leaking:\n" << describe(h.report["largest_not_leaking"])
                              << "growing:\n" << describe(h.report["growing"]);
  const json& top = leaks[0];
  EXPECT_EQ(top["site"], "leak_memory_slowly") << describe(leaks);
  std::vector<std::string> frames = top["stack"]["frames"];
  auto leaker = std::find(frames.begin(), frames.end(), "leak_memory_slowly");
  ASSERT_NE(leaker, frames.end()) << describe(leaks);
  // Its caller, found by the unwinder (through CFI when there are no frame pointers).
  ASSERT_NE(leaker + 1, frames.end()) << describe(leaks);
  EXPECT_EQ(*(leaker + 1), "leak_tick") << describe(leaks);
  for (const auto& l : leaks) {
    EXPECT_FALSE(stack_has(l, "pool_churn")) << "the steady pool was called a leak:\n" << describe(leaks);
    EXPECT_FALSE(stack_has(l, "warm_cache_fill")) << "the warmed cache was called a leak:\n" << describe(leaks);
  }
  // The leak is never freed: its oldest allocation is about as old as the watch.
  EXPECT_GT(top["oldest_age_s"].get<double>(), 0.8 * h.report["duration_s"].get<double>());
  EXPECT_EQ(h.report["counters"]["tracking_map_full"], 0);
}

// The exact-mode comparison with the fixture's truth: the leak's bytes
// within 10% of what leaked in the window, its rate within 10% of the
// fixture's 64 KiB/s, and the pool tracked and judged flat. `label` names
// the run in the printed numbers.
void expect_exact_leak(const Hunt& h, const std::string& label) {
  expect_fixture_leak_found(h);
  if (::testing::Test::HasFatalFailure()) return;
  const json& top = h.report["leaks"][0];
  double truth = h.leaked_in_window();
  EXPECT_NEAR(top["bytes"].get<double>(), truth, 0.10 * truth) << "window " << h.report["duration_s"];
  EXPECT_NEAR(top["growth_bytes_per_s"].get<double>(), 65536.0, 0.10 * 65536.0);
  bool pool_seen = false;
  for (const auto& l : h.report["largest_not_leaking"]) pool_seen |= stack_has(l, "pool_churn");
  EXPECT_TRUE(pool_seen) << describe(h.report["largest_not_leaking"]);
  EXPECT_EQ(h.report["verdict"], "leak");
  std::printf("%s: reported %.0f bytes (+%.0f B/s), fixture leaked %.0f bytes in the %.2f s window (%+.1f%%)\n",
              label.c_str(), top["bytes"].get<double>(), top["growth_bytes_per_s"].get<double>(), truth,
              h.report["duration_s"].get<double>(), 100.0 * (top["bytes"].get<double>() - truth) / truth);
}

TEST(LeaksBpf, FindsTheLeakWithFramePointers) {
  // Fixture defaults: 64 KiB/s in 4 KiB allocations, 256 x 8 KiB pool
  // replaced 2000 times a second, a 1 MiB cache filled in the first second.
  Hunt h = hunt("leak_fixture", {}, {"-d", "8", "-i", "1"});
  expect_exact_leak(h, "leak (glibc)");
  EXPECT_NE(h.report.value("allocator_object", "").find("libc.so"), std::string::npos);
}

// The fixture linked against another malloc (tests/fixtures/leak), or glibc's
// build run with that malloc preloaded: malloc/free must be probed where the
// dynamic linker binds them, not in glibc (mapped, but never called).
struct AllocatorCase {
  std::string name;
  std::string fixture;
  std::vector<std::string> env;
  std::string allocator_object;  // a substring of the object malloc must resolve to
  std::vector<std::string> also_probed;  // entry points of that allocator that must be probed there
};

std::ostream& operator<<(std::ostream& os, const AllocatorCase& c) { return os << c.name; }

class LeaksOtherAllocator : public ::testing::TestWithParam<AllocatorCase> {};

TEST_P(LeaksOtherAllocator, FindsTheLeak) {
  const AllocatorCase& c = GetParam();
  Hunt h = hunt(c.fixture, {}, {"-d", "8", "-i", "1"}, c.env);
  expect_exact_leak(h, "leak (" + c.name + ")");
  if (HasFatalFailure()) return;
  EXPECT_NE(h.report["allocator_object"].get<std::string>().find(c.allocator_object), std::string::npos)
      << h.report["attached_objects"].dump();
  std::vector<std::string> probed;
  for (const auto& o : h.report["attached_objects"])
    if (o["object"].get<std::string>().find(c.allocator_object) != std::string::npos)
      for (const auto& f : o["functions"]) probed.push_back(f);
  for (const auto& f : c.also_probed)
    EXPECT_NE(std::find(probed.begin(), probed.end(), f), probed.end())
        << f << " not probed in " << c.allocator_object << ": " << h.report["attached_objects"].dump();
}

INSTANTIATE_TEST_SUITE_P(
    Allocators, LeaksOtherAllocator,
    ::testing::Values(
        AllocatorCase{"jemalloc", "leak_fixture_jemalloc", {}, "libjemalloc.so", {"free", "sdallocx", "_ZdlPvm"}},
        AllocatorCase{"tcmalloc", "leak_fixture_tcmalloc", {}, "libtcmalloc.so", {"free", "tc_free_sized", "_Znwm"}},
        AllocatorCase{"mimalloc", "leak_fixture_mimalloc", {}, "libmimalloc.so", {"free", "mi_free_size", "_Znwm"}},
        AllocatorCase{"ld_preload_jemalloc", "leak_fixture",
                      {"LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "libjemalloc.so", {"sdallocx"}}),
    [](const ::testing::TestParamInfo<AllocatorCase>& i) { return i.param.name; });

TEST(LeaksBpf, NoAllocatorCallsIsNoVerdict) {
  // The fixture with nothing to do allocates nothing after startup: the hunt
  // must warn and give no verdict (exit 1), never a silent "no leak".
  Hunt h = hunt("leak_fixture", {"--leak-bytes-per-sec", "0", "--pool-ops-per-sec", "0", "--cache-bytes", "0"},
                {"-d", "6", "-i", "1"}, {}, /*quiet=*/false);
  ASSERT_TRUE(h.report.is_object()) << h.stderr_text;
  EXPECT_EQ(h.rc, 1) << h.stderr_text;
  EXPECT_EQ(h.report["verdict"], "no_verdict");
  EXPECT_NE(h.report["warning"].get<std::string>().find("saw 0 allocator calls"), std::string::npos);
  EXPECT_NE(h.report["warning"].get<std::string>().find("malloc"), std::string::npos);
  // Said while running (at 5 s), and again as the reason for exit code 1.
  EXPECT_NE(h.stderr_text.find("saw 0 allocator calls in 5 s"), std::string::npos) << h.stderr_text;
  EXPECT_NE(h.stderr_text.find("no verdict: saw 0 allocator calls"), std::string::npos) << h.stderr_text;
}

TEST(LeaksBpf, FindsTheLeakWithoutFramePointers) {
  // -O2 -fomit-frame-pointer: leak_tick is only found through CFI.
  Hunt h = hunt("leak_fixture_nofp", {}, {"-d", "8", "-i", "1"});
  expect_fixture_leak_found(h);
  if (HasFatalFailure()) return;
  const json& top = h.report["leaks"][0];
  double truth = h.leaked_in_window();
  EXPECT_NEAR(top["bytes"].get<double>(), truth, 0.10 * truth) << "window " << h.report["duration_s"];
  EXPECT_NEAR(top["growth_bytes_per_s"].get<double>(), 65536.0, 0.10 * 65536.0);
  std::printf("leak (no frame pointers): reported %.0f bytes (+%.0f B/s), fixture leaked %.0f bytes\n",
              top["bytes"].get<double>(), top["growth_bytes_per_s"].get<double>(), truth);
}

TEST(LeaksBpf, SampledModeStillFindsTheLeak) {
  // One sample per 64 KiB allocated: an allocation of s bytes is sampled with
  // probability 1 - exp(-s / 65536) and scaled up. The estimate is a count of
  // sampled allocations, so its relative error is about
  // sqrt((1 - p) / (p * n)) for n leaked allocations. With the default 64 KiB/s
  // in 4 KiB pieces that is ~1 sampled leak per second, 35% error over 8 s:
  // too noisy for any bound. 2 MiB/s in 64 KiB pieces (p = 0.63, 256
  // allocations in 8 s) gives ~5%, so 25% is a > 4 sigma bound.
  const double rate = 2 * 1048576.0;
  Hunt h = hunt("leak_fixture", {"--leak-bytes-per-sec", "2097152", "--leak-size", "65536"},
                {"-d", "8", "-i", "1", "--sample-bytes", "65536"});
  expect_fixture_leak_found(h);
  if (HasFatalFailure()) return;
  EXPECT_EQ(h.report["mode"], "sampled");
  EXPECT_GT(h.report["counters"]["events_sampled_out"].get<double>(), 0);
  const json& top = h.report["leaks"][0];
  double truth = h.leaked_in_window();
  EXPECT_NEAR(top["bytes"].get<double>(), truth, 0.25 * truth);
  EXPECT_NEAR(top["growth_bytes_per_s"].get<double>(), rate, 0.25 * rate);
  std::printf("sampled leak: estimated %.0f bytes (+%.0f B/s), fixture leaked %.0f bytes (%.0f B/s)\n",
              top["bytes"].get<double>(), top["growth_bytes_per_s"].get<double>(), truth, rate);
}

}  // namespace
