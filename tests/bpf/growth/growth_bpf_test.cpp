// `tickprobe growth` against the growth fixture (tests/fixtures/growth),
// whose growth is exact and known: map_and_touch() maps 8 MiB and touches
// its 2048 pages, grow_heap() moves the break up 1 MiB and touches its 256
// pages (no huge pages). The fixture starts growing on SIGUSR1, sent once
// tickprobe says it is tracing, so nothing is missed; the profile is read
// with the real `go tool pprof` for each sample type. Sampled faults
// (--fault-sample 4) are checked against the same truth with a binomial
// tolerance. Needs root and BPF (label: bpf).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "test_support.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace {

using Clock = std::chrono::steady_clock;

struct Recording {
  int rc = -1;
  std::string err, dir, pb;
  json truth;
};

Recording record(const std::vector<std::string>& extra) {
  Recording r;
  r.dir = "/tmp/tickprobe-growth-bpf-" + std::to_string(getpid()) + "-" +
          std::to_string(Clock::now().time_since_epoch().count());
  std::filesystem::create_directories(r.dir);
  r.pb = r.dir + "/growth.pb.gz";
  tt::Subprocess fx({tt::bin_path("growth_fixture"), "--mmap-mib", "8", "--brk-kib", "1024", "--wait-for-signal"});
  auto deadline = Clock::now() + 10s;
  while (tt::read_file(fx.stdout_path()).find("ready ") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  std::vector<std::string> argv = {tt::bin_path("tickprobe"), "growth", "--pid", std::to_string(fx.pid()), "-d", "3",
                                   "-o", r.pb};
  argv.insert(argv.end(), extra.begin(), extra.end());
  tt::Subprocess probe(argv);
  bool released = false;
  std::optional<int> st;
  deadline = Clock::now() + 60s;
  while (!(st = probe.wait_for(20ms)) && Clock::now() < deadline) {
    if (!released && probe.stderr_text().find("tickprobe growth: tracing") != std::string::npos) {
      kill(fx.pid(), SIGUSR1);
      released = true;
    }
  }
  if (!st) probe.kill_now();
  r.rc = st.value_or(-1);
  r.err = probe.stderr_text();
  std::string out = tt::read_file(fx.stdout_path());
  size_t brace = out.find('{');
  r.truth = json::parse(brace == std::string::npos ? "" : out.substr(brace), nullptr, false);
  EXPECT_TRUE(released) << r.err;
  fx.terminate();
  return r;
}

std::map<std::string, std::pair<double, double>> top(const Recording& r, const std::string& index) {
  std::string cmd = "cd '" + r.dir + "' && HOME='" + r.dir + "' GOCACHE='" + r.dir + "/gocache' PPROF_TMPDIR='" +
                    r.dir + "' PPROF_BINARY_PATH=/nonexistent go tool pprof -top -nodecount=200 -unit=B -sample_index=" +
                    index + " '" + r.pb + "' 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::regex row(R"(^\s*(-?\d+)B?\s+[-\d.]+%\s+[-\d.]+%\s+(-?\d+)B?\s+[-\d.]+%\s+(.+?)\s*$)");
  std::map<std::string, std::pair<double, double>> rows;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, row)) rows[m[3]] = {std::stod(m[1]), std::stod(m[2])};
  }
  EXPECT_FALSE(rows.empty()) << out;
  return rows;
}

double cum(const std::map<std::string, std::pair<double, double>>& rows, const std::string& fn) {
  auto it = rows.find(fn);
  return it == rows.end() ? 0 : it->second.second;
}

TEST(GrowthBpf, EveryFirstTouchBrkAndMmapIsCounted) {
  Recording r = record({});
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_TRUE(r.truth.is_object());
  auto faults = top(r, "page_faults");
  auto space = top(r, "page_fault_space");
  auto brk = top(r, "brk_space");
  auto mmap = top(r, "mmap_space");
  double mmap_pages = r.truth["mmap_pages"], brk_pages = r.truth["brk_pages"];
  std::printf("faults: map_and_touch %.0f (truth %.0f), grow_heap %.0f (truth %.0f)\n", cum(faults, "map_and_touch"),
              mmap_pages, cum(faults, "grow_heap"), brk_pages);
  EXPECT_EQ(cum(faults, "map_and_touch"), mmap_pages);
  EXPECT_EQ(cum(faults, "grow_heap"), brk_pages);
  EXPECT_EQ(cum(space, "map_and_touch"), r.truth["mmap_bytes"].get<double>());
  EXPECT_EQ(cum(space, "grow_heap"), r.truth["brk_bytes"].get<double>());
  // Leaves are the first-touching functions themselves (touch() is inlined).
  EXPECT_EQ(space["map_and_touch"].first, r.truth["mmap_bytes"].get<double>());
  // brk: the 1 MiB plus at most the alignment to a page before it.
  EXPECT_GE(cum(brk, "grow_heap"), r.truth["brk_bytes"].get<double>());
  EXPECT_LT(cum(brk, "grow_heap"), r.truth["brk_bytes"].get<double>() + 4096);
  EXPECT_EQ(cum(mmap, "map_and_touch"), r.truth["mmap_bytes"].get<double>());
  if (!HasFailure()) std::filesystem::remove_all(r.dir);
}

TEST(GrowthBpf, SampledFaultsAreScaledUp) {
  Recording r = record({"--fault-sample", "4"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto faults = top(r, "page_faults");
  double truth = r.truth["mmap_pages"];
  // Each fault is kept with p = 1/4 and weighted 4: sd = 4 sqrt(n p (1-p)).
  double sd = 4 * std::sqrt(truth * 0.25 * 0.75);
  std::printf("sampled 1/4: map_and_touch %.0f faults (truth %.0f, sd %.0f)\n", cum(faults, "map_and_touch"), truth, sd);
  EXPECT_NEAR(cum(faults, "map_and_touch"), truth, 5 * sd);
  if (!HasFailure()) std::filesystem::remove_all(r.dir);
}

}  // namespace
