// `tickprobe allocs` against the leak fixture (tests/fixtures/leak), read back
// with the real `go tool pprof`. The fixture waits for SIGUSR1 until
// tickprobe says its probes are in place, so every allocation of the timed
// part is seen; its --stats-file is the ground truth:
//   warm_cache_fill    1 MiB in 16 KiB chunks (posix_memalign/aligned_alloc)
//                      in the first second, never freed;
//   leak_memory_slowly --leak-bytes-per-sec in 4 KiB mallocs, never freed;
//   pool_churn         --pool-ops-per-sec replacements of a --pool-size
//                      buffer (4 ways; one is realloc shrink + grow, so 1.125
//                      x pool-size bytes and 1.25 allocations per op), the
//                      pool itself allocated before the timed part.
// Both steady rates follow wall time (the loops catch up), so their ratio
// does not depend on the machine's load. Needs root and BPF (label: bpf).
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
#include <vector>

#include "test_support.h"

using nlohmann::json;
using namespace std::chrono_literals;
namespace tt = tickprobe::test;

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kLeakRate = 262144;  // B/s
constexpr double kLeakSize = 4096;
constexpr double kPoolSize = 8192;
constexpr double kPoolOps = 100;  // per s
constexpr double kCacheBytes = 1 << 20;

std::string shell(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

struct Recording {
  int rc = -1;
  std::string stderr_text;
  std::string dir;
  std::string pb;   // the pprof file
  json truth;       // the fixture's stats right after tickprobe ended
  std::string fixture_path;
};

// Starts the fixture (waiting), runs `tickprobe allocs` on it, releases the
// fixture once tickprobe reports its probes attached, and waits for the end.
Recording record(const std::vector<std::string>& extra_args, const std::string& fixture = "leak_fixture") {
  Recording r;
  r.dir = "/tmp/tickprobe-allocs-bpf-" + std::to_string(getpid()) + "-" + std::to_string(Clock::now().time_since_epoch().count());
  std::filesystem::create_directories(r.dir);
  std::string stats = r.dir + "/stats.json";
  r.pb = r.dir + "/allocs.pb.gz";
  r.fixture_path = tt::bin_path(fixture);
  tt::Subprocess fx({r.fixture_path, "--duration", "60", "--stats-file", stats, "--wait-for-signal",
                     "--leak-bytes-per-sec", "262144", "--leak-size", "4096", "--pool", "64", "--pool-size", "8192",
                     "--pool-ops-per-sec", "100", "--cache-bytes", "1048576"});
  auto deadline = Clock::now() + 10s;
  while (tt::read_file(fx.stdout_path()).find("ready ") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_NE(tt::read_file(fx.stdout_path()).find("ready "), std::string::npos) << fx.stderr_text();
  std::vector<std::string> argv = {tt::bin_path("tickprobe"), "allocs", "--pid", std::to_string(fx.pid()),
                                   "-d", "6", "-o", r.pb};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  tt::Subprocess probe(argv);
  deadline = Clock::now() + 30s;
  bool released = false;
  std::optional<int> st;
  while (!(st = probe.wait_for(20ms)) && Clock::now() < deadline + 30s) {
    if (!released && probe.stderr_text().find("tickprobe allocs: tracing") != std::string::npos) {
      kill(fx.pid(), SIGUSR1);
      released = true;
    }
  }
  r.truth = json::parse(tt::read_file(stats), nullptr, false);
  if (!st) probe.kill_now();
  r.rc = st.value_or(-1);
  r.stderr_text = probe.stderr_text();
  EXPECT_TRUE(released) << r.stderr_text;
  fx.terminate();
  return r;
}

// `go tool pprof` with a writable HOME/GOCACHE.
std::string pprof(const Recording& r, const std::string& args) {
  std::string cmd = "cd '" + r.dir + "' && HOME='" + r.dir + "' GOCACHE='" + r.dir + "/gocache' GOPATH='" + r.dir +
                    "/gopath' PPROF_TMPDIR='" + r.dir + "' PPROF_BINARY_PATH=/nonexistent TZ=UTC go tool pprof " +
                    args + " '" + r.pb + "' 2>>'" + r.dir + "/pprof.stderr'";
  int rc = -1;
  std::string out = shell(cmd, &rc);
  EXPECT_EQ(rc, 0) << cmd << "\n" << tt::read_file(r.dir + "/pprof.stderr");
  return out;
}

// name -> (flat, cum) from `go tool pprof -top` for one sample index. Bytes
// are printed with -unit=B ("123B"), counts bare.
std::map<std::string, std::pair<double, double>> top(const Recording& r, const std::string& index) {
  std::string out = pprof(r, "-top -nodecount=200 -unit=B -sample_index=" + index);
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

std::string dump(const std::map<std::string, std::pair<double, double>>& rows) {
  std::string s;
  for (const auto& [k, v] : rows) s += "  " + k + " flat=" + std::to_string(v.first) + " cum=" + std::to_string(v.second) + "\n";
  return s;
}

double cum(const std::map<std::string, std::pair<double, double>>& rows, const std::string& fn) {
  auto it = rows.find(fn);
  return it == rows.end() ? 0 : it->second.second;
}

// The profile's window, from `go tool pprof -raw` ("Duration: 6.00").
double duration_s(const Recording& r) {
  std::string raw = pprof(r, "-raw");
  std::smatch m;
  std::regex dur(R"(Duration: ([\d.]+))");
  if (!std::regex_search(raw, m, dur)) return 0;
  return std::stod(m[1]);
}

// The checks on every run; `tol` is the relative tolerance of the estimates
// (exact mode: bounded by the 100 ms granularity of the stats file).
void expect_shares(const Recording& r, double tol, const std::string& label) {
  ASSERT_EQ(r.rc, 0) << r.stderr_text;
  ASSERT_TRUE(r.truth.is_object());
  auto space = top(r, "alloc_space");
  auto objects = top(r, "alloc_objects");
  auto inuse = top(r, "inuse_space");
  auto inuse_n = top(r, "inuse_objects");
  double leak = cum(space, "leak_memory_slowly"), pool = cum(space, "pool_churn"), cache = cum(space, "warm_cache_fill");
  // The fixture's loops follow its wall clock from SIGUSR1, sent as soon as
  // tickprobe's probes are in place, i.e. at the start of the profile's
  // window: over the window's Duration it allocated rate x Duration (the
  // release takes a poll of tickprobe's stderr, 20 ms, within the slack).
  // Its stats file, read after tickprobe exited (detaching uprobes can take
  // seconds), bounds what tickprobe may have seen.
  double d = duration_s(r);
  ASSERT_GT(d, 5.5);
  double truth_leak = kLeakRate * d;
  double truth_pool = kPoolOps * 1.125 * kPoolSize * d;
  double truth_cache = r.truth["cache_bytes"].get<double>();
  EXPECT_EQ(truth_cache, kCacheBytes);
  EXPECT_LE(leak, (1 + tol) * r.truth["leaked_bytes"].get<double>()) << dump(space);
  EXPECT_LE(pool, (1 + tol) * r.truth["pool_ops"].get<double>() * 1.125 * kPoolSize) << dump(space);
  std::printf("%s alloc_space: leak %.0f (truth %.0f, %+.1f%%)  pool %.0f (truth %.0f, %+.1f%%)  cache %.0f (truth %.0f, %+.1f%%)\n",
              label.c_str(), leak, truth_leak, 100 * (leak / truth_leak - 1), pool, truth_pool,
              100 * (pool / truth_pool - 1), cache, truth_cache, 100 * (cache / truth_cache - 1));
  // The stats file lags by up to 100 ms (and the fixture runs on after
  // tickprobe's last read): a few % of a 6 s window, on top of `tol`.
  EXPECT_NEAR(leak, truth_leak, (tol + 0.05) * truth_leak) << dump(space);
  EXPECT_NEAR(pool, truth_pool, (tol + 0.05) * truth_pool) << dump(space);
  EXPECT_NEAR(cache, truth_cache, tol * truth_cache + 16384) << dump(space);
  // Shares: the two steady rates in their known ratio.
  EXPECT_NEAR(pool / leak, 1.125 * kPoolSize * kPoolOps / kLeakRate, tol * 2 * 3.5) << dump(space);
  // The leaf is the allocation site: allocator frames were dropped.
  EXPECT_GT(space["leak_memory_slowly"].first, 0.95 * leak) << dump(space);
  EXPECT_EQ(space.count("malloc"), 0u) << dump(space);
  // Objects: the leak in 4 KiB allocations, the cache in 16 KiB chunks.
  double leak_n = cum(objects, "leak_memory_slowly");
  EXPECT_NEAR(leak_n, truth_leak / kLeakSize, (tol + 0.05) * truth_leak / kLeakSize) << dump(objects);
  EXPECT_NEAR(cum(objects, "warm_cache_fill"), truth_cache / 16384, tol * truth_cache / 16384 + 1) << dump(objects);
  // In use at the end: the leak and the cache are never freed; the pool
  // holds at most its 64 buffers.
  EXPECT_NEAR(cum(inuse, "leak_memory_slowly"), leak, (tol + 0.02) * leak) << dump(inuse);
  EXPECT_NEAR(cum(inuse, "warm_cache_fill"), cache, tol * cache + 16384) << dump(inuse);
  EXPECT_LE(cum(inuse, "pool_churn"), (1 + tol) * 64 * kPoolSize + 16384) << dump(inuse);
  EXPECT_LE(cum(inuse_n, "pool_churn"), (1 + tol) * 64 + 2) << dump(inuse_n);
}

TEST(AllocsBpf, ExactModeMatchesTheFixture) {
  Recording r = record({"--sample-bytes", "0"});
  expect_shares(r, 0.03, "exact");
  std::string raw = pprof(r, "-raw");
  EXPECT_NE(raw.find("PeriodType: space bytes"), std::string::npos) << raw;
  EXPECT_NE(raw.find("alloc_objects/count alloc_space/bytes[dflt] inuse_objects/count inuse_space/bytes"),
            std::string::npos)
      << raw;
  if (!HasFailure()) std::filesystem::remove_all(r.dir);
}

TEST(AllocsBpf, SampledModeScalesUp) {
  // ~1000 samples over the window: the estimates' Poisson error is a few %.
  Recording r = record({"--sample-bytes", "8192"});
  expect_shares(r, 0.25, "sampled 8 KiB");
  if (!HasFailure()) std::filesystem::remove_all(r.dir);
}

// pprof names the program: the first mapping is the executable (not libc),
// and the mappings carry build ids and file offsets.
TEST(AllocsBpf, PprofFileNamesTheExecutableWithBuildIds) {
  Recording r = record({"--sample-bytes", "65536"});
  ASSERT_EQ(r.rc, 0) << r.stderr_text;
  std::string t = pprof(r, "-top -sample_index=alloc_space");
  EXPECT_NE(t.find("File: leak_fixture\n"), std::string::npos) << t;
  std::string raw = pprof(r, "-raw");
  std::string id = shell("readelf -n '" + r.fixture_path + "' | sed -n 's/.*Build ID: //p' | head -1");
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  ASSERT_FALSE(id.empty());
  // "Mappings\n1: 0x..../0x..../0x1000 /path/leak_fixture <build id>"
  size_t at = raw.find("Mappings\n");
  ASSERT_NE(at, std::string::npos) << raw;
  std::string first = raw.substr(at + 9, raw.find('\n', at + 9) - at - 9);
  EXPECT_NE(first.find(r.fixture_path + " " + id), std::string::npos) << raw;
  EXPECT_EQ(first.rfind("1: ", 0), 0u) << first;
  std::regex offset(R"(1: 0x[0-9a-f]+/0x[0-9a-f]+/0x([0-9a-f]+) )");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first, m, offset)) << first;
  EXPECT_NE(m[1], "0") << "the executable's text is not at file offset 0: " << first;
  std::string libc = shell("readelf -n /lib/x86_64-linux-gnu/libc.so.6 | sed -n 's/.*Build ID: //p' | head -1");
  while (!libc.empty() && (libc.back() == '\n' || libc.back() == ' ')) libc.pop_back();
  EXPECT_NE(raw.find("libc.so.6 " + libc), std::string::npos) << raw;
  if (!HasFailure()) std::filesystem::remove_all(r.dir);
}

// ---------------------------------------------------------------------------
// Every call counted, on every allocator, with the probes on the cheapest
// sound instruction (collector/core/uprobe_site.h: e.g. jemalloc's malloc on
// the `ja` at +7, its free on the `jne` at +48, mimalloc's malloc at +21
// with the size moved to %rsi). The fixture's bench loop (malloc 64..1024
// bytes, free; every 64th block kept in a ring of 1024) prints what it did:
// an exact-mode profile must hold exactly that many allocations and bytes,
// and exactly the ring's blocks and bytes in use at the end.

struct ExactCase {
  std::string name;
  std::string fixture;
};

std::ostream& operator<<(std::ostream& os, const ExactCase& c) { return os << c.name; }

class AllocsExactEveryAllocator : public ::testing::TestWithParam<ExactCase> {};

TEST_P(AllocsExactEveryAllocator, CountsEqualTheFixture) {
  const ExactCase& c = GetParam();
  std::string fixture = tt::bin_path(c.fixture);
  // scripts/bootstrap.sh installs every allocator, so every fixture is built:
  // a missing one is a failure, not a skip.
  ASSERT_EQ(access(fixture.c_str(), X_OK), 0)
      << fixture << " not built; hint: scripts/bootstrap.sh installs its allocator (libjemalloc-dev, "
      << "libgoogle-perftools-dev, libmimalloc-dev)";
  std::string dir = "/tmp/tickprobe-allocs-exact-" + std::to_string(getpid()) + "-" + c.name;
  std::filesystem::create_directories(dir);
  std::string out = dir + "/allocs.json";
  tt::Subprocess fx({fixture, "--bench", "20000", "--wait-for-signal"});
  auto deadline = Clock::now() + 10s;
  while (tt::read_file(fx.stdout_path()).find("ready ") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_NE(tt::read_file(fx.stdout_path()).find("ready "), std::string::npos) << fx.stderr_text();
  tt::Subprocess probe({tt::bin_path("tickprobe"), "allocs", "--pid", std::to_string(fx.pid()), "--sample-bytes", "0",
                        "-d", "120", "--json", "-o", out, "-v"});
  deadline = Clock::now() + 30s;
  while (probe.stderr_text().find("tickprobe allocs: tracing") == std::string::npos && Clock::now() < deadline &&
         probe.running())
    std::this_thread::sleep_for(20ms);
  ASSERT_NE(probe.stderr_text().find("tickprobe allocs: tracing"), std::string::npos) << probe.stderr_text();
  kill(fx.pid(), SIGUSR1);
  auto fx_status = fx.wait_for(120s);
  ASSERT_TRUE(fx_status.has_value()) << "the bench loop did not finish";
  EXPECT_EQ(*fx_status, 0) << fx.stderr_text();
  // tickprobe ends by itself once the process is gone.
  auto st = probe.wait_for(60s);
  if (!st) probe.kill_now();
  ASSERT_TRUE(st.has_value()) << probe.stderr_text();
  ASSERT_EQ(*st, 0) << probe.stderr_text();
  std::string line = tt::read_file(fx.stdout_path());
  line = line.substr(line.find('{'));
  json truth = json::parse(line, nullptr, false);
  ASSERT_TRUE(truth.is_object()) << line;
  json prof = json::parse(tt::read_file(out), nullptr, false);
  ASSERT_TRUE(prof.is_object()) << out;
  // values: alloc_objects, alloc_space, inuse_objects, inuse_space
  const json& v = prof["totals"]["values"];
  ASSERT_EQ(v.size(), 4u) << prof["totals"].dump();
  EXPECT_EQ(v[0].get<uint64_t>(), truth["allocs"].get<uint64_t>()) << prof["totals"].dump();
  EXPECT_EQ(v[1].get<uint64_t>(), truth["alloc_bytes"].get<uint64_t>()) << prof["totals"].dump();
  EXPECT_EQ(v[2].get<uint64_t>(), truth["kept"].get<uint64_t>()) << prof["totals"].dump();
  EXPECT_EQ(v[3].get<uint64_t>(), truth["kept_bytes"].get<uint64_t>()) << prof["totals"].dump();
  EXPECT_EQ(prof["counters"].value("nesting_lost", 0), 0);
  // The allocations come from the loop (the allocator's frames dropped, the
  // stack unwound from the moved probe site).
  ASSERT_FALSE(prof["samples"].empty());
  for (const auto& smp : prof["samples"])
    EXPECT_EQ(smp["stack"][0]["function"], "bench_alloc_loop") << smp.dump();
  // The run did exercise a moved site: free's probe sits past its entry on
  // each of these builds (glibc +3, jemalloc +48, tcmalloc +10, mimalloc +6).
  std::smatch m;
  std::string err = probe.stderr_text();
  ASSERT_TRUE(std::regex_search(err, m, std::regex(R"(alloc: free probed at \+(\d+) \(([^,]+), (\S+);)")))
      << err;
  std::printf("%s: free probed at +%s (%s, %s)\n", c.name.c_str(), m[1].str().c_str(), m[2].str().c_str(),
              m[3].str().c_str());
  EXPECT_GT(std::stoi(m[1]), 0) << err;
  EXPECT_EQ(m[3], "emulated") << err;
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Allocators, AllocsExactEveryAllocator,
                         ::testing::Values(ExactCase{"glibc", "leak_fixture"},
                                           ExactCase{"jemalloc", "leak_fixture_jemalloc"},
                                           ExactCase{"tcmalloc", "leak_fixture_tcmalloc"},
                                           ExactCase{"mimalloc", "leak_fixture_mimalloc"}),
                         [](const ::testing::TestParamInfo<ExactCase>& i) { return i.param.name; });

}  // namespace
