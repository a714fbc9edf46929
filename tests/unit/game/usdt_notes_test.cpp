// The USDT contract (docs/usdt.md) as seen by a tracer: readelf -n on the
// built tickgame must list every probe with its semaphore and arg count,
// and the fault functions must exist as symbols (stacks name them).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "test_support.h"
#include "tickgame/usdt.h"

namespace {
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

struct Note { std::string semaphore; int args = -1; std::uint64_t location = 0; };

std::map<std::string, Note> tickgame_notes(const std::string& bin) {
  std::map<std::string, Note> notes;
  std::istringstream in(run("readelf -n '" + bin + "'"));
  std::string line, provider, name;
  while (std::getline(in, line)) {
    auto field = [&](const char* key) -> std::string {
      auto p = line.find(key);
      if (p == std::string::npos) return "";
      std::string v = line.substr(p + std::strlen(key));
      auto end = v.find(',');
      v = v.substr(0, end);
      while (!v.empty() && v.front() == ' ') v.erase(v.begin());
      return v;
    };
    if (auto v = field("Provider:"); !v.empty()) provider = v;
    else if (auto n = field("Name:"); !n.empty()) name = n;
    if (auto s = field("Semaphore:"); !s.empty() && provider == "tickgame") notes[name].semaphore = s;
    if (auto l = field("Location:"); !l.empty() && provider == "tickgame") notes[name].location = std::stoull(l, nullptr, 16);
    if (line.find("Arguments:") != std::string::npos && provider == "tickgame") {
      std::istringstream args(line.substr(line.find("Arguments:") + 10));
      std::string a;
      int count = 0;
      while (args >> a) ++count;
      notes[name].args = count;
    }
  }
  return notes;
}
}  // namespace

TEST(UsdtContract, EveryProbeHasASemaphoreAndItsArguments) {
  const std::string bin = tickprobe::test::bin_path("tickgame");
  auto notes = tickgame_notes(bin);
  ASSERT_FALSE(notes.empty()) << "no tickgame USDT notes in " << bin;
  const std::map<std::string, int> expected_args = {
      {"tick__begin", 1},  {"tick__end", 2},    {"gc__begin", 1},     {"gc__end", 3},
      {"arena__reset__begin", 1}, {"arena__reset__end", 1}, {"coro__create", 2}, {"coro__resume", 1},
      {"coro__suspend", 1}, {"coro__destroy", 1}, {"session__open", 1}, {"session__close", 1}};
  for (const char* probe : tickgame::kUsdtProbeNames) {
    auto it = notes.find(probe);
    ASSERT_NE(it, notes.end()) << "probe tickgame:" << probe << " missing from readelf -n";
    EXPECT_NE(it->second.semaphore, "") << probe;
    EXPECT_NE(std::stoull(it->second.semaphore, nullptr, 16), 0u) << probe << " has no semaphore";
    EXPECT_EQ(it->second.args, expected_args.at(probe)) << probe;
  }
  EXPECT_EQ(notes.size(), expected_args.size()) << "probes not in the contract (docs/usdt.md)";
}

TEST(UsdtContract, SemaphoreSymbolsLiveInProbesSection) {
  const std::string bin = tickprobe::test::bin_path("tickgame");
  std::string syms = run("readelf -sW '" + bin + "'");
  std::string sections = run("readelf -SW '" + bin + "'");
  EXPECT_NE(sections.find(".probes"), std::string::npos);
  for (const char* probe : tickgame::kUsdtProbeNames) {
    EXPECT_NE(syms.find(std::string("tickgame_") + probe + "_semaphore"), std::string::npos) << probe;
  }
}

TEST(UsdtContract, FaultFunctionsAreRealSymbols) {
  std::string syms = run("nm -C '" + tickprobe::test::bin_path("tickgame") + "'");
  for (const char* fn : {"tickgame::inject_leak_bytes(", "tickgame::inject_coroutine_leak(", "tickgame::inject_gc_garbage(",
                         "tickgame::inject_cpu_hog(", "tickgame::blocking_write_to_slow_client(", "tickgame::Scheduler::spawn("}) {
    EXPECT_NE(syms.find(fn), std::string::npos) << fn << " was inlined or renamed";
  }
}

// coro__create must sit inside Scheduler::spawn (a real, non-inlined frame),
// so a user stack at the probe continues into whoever created the coroutine.
TEST(UsdtContract, CoroCreateFiresInsideSchedulerSpawn) {
  const std::string bin = tickprobe::test::bin_path("tickgame");
  auto notes = tickgame_notes(bin);
  ASSERT_TRUE(notes.count("coro__create"));
  const std::uint64_t loc = notes["coro__create"].location;
  std::istringstream in(run("nm -C --print-size --defined-only '" + bin + "'"));
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    if (line.find("tickgame::Scheduler::spawn(") == std::string::npos || line.find("[clone") != std::string::npos) continue;
    std::istringstream f(line);
    std::string addr, size;
    f >> addr >> size;
    const std::uint64_t lo = std::stoull(addr, nullptr, 16), len = std::stoull(size, nullptr, 16);
    found = true;
    EXPECT_GE(loc, lo);
    EXPECT_LT(loc, lo + len) << "coro__create is not inside Scheduler::spawn";
  }
  EXPECT_TRUE(found) << "Scheduler::spawn has no symbol (inlined?)";
}
