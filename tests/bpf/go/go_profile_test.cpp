// `tickprobe profile` on Go servers: the Go fixture game server
// (tests/fixtures/go/gameserver), whose stripped build names functions only
// in .gopclntab. Ground truth: the fixture's known culprits (main.burnCPU
// with -cpu-hog) and its own runtime/pprof CPU profile. Needs root and BPF.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "test_support.h"

namespace {

using namespace tickprobe::test;
using nlohmann::json;

struct GoServer {
  std::unique_ptr<Subprocess> proc;
  uint16_t http_port = 0;
};

// Starts the fixture and waits for its "ready <http> <tcp> <tls>" line.
GoServer start_server(const std::string& binary, std::vector<std::string> flags) {
  GoServer s;
  std::vector<std::string> argv = {bin_path(binary)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"-duration", "120s"});
  s.proc = std::make_unique<Subprocess>(argv);
  for (int i = 0; i < 200; ++i) {
    std::istringstream out(s.proc->stdout_text());
    std::string word;
    int http = 0;
    if (out >> word >> http && word == "ready") {
      s.http_port = static_cast<uint16_t>(http);
      break;
    }
    usleep(25000);
  }
  EXPECT_NE(s.http_port, 0) << "the Go fixture did not start: " << s.proc->stderr_text();
  return s;
}

std::string run_capture(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *rc = WEXITSTATUS(pclose(p));
  return out;
}

json profile(pid_t pid, const std::string& args) {
  int rc = -1;
  std::string out = run_capture(bin_path("tickprobe") + " profile -q --no-kernel --pid " + std::to_string(pid) +
                                    " " + args + " --json",
                                &rc);
  EXPECT_EQ(rc, 0) << out.substr(0, 2000);
  return rc == 0 ? json::parse(out) : json::object({{"samples", json::array()}, {"top_functions", json::array()}});
}

struct Shares {
  double samples = 0;
  double frames = 0, named_frames = 0;
  std::map<std::string, double> self;  // leaf function -> samples
  std::map<std::string, double> root;  // outermost frame -> samples
};

Shares shares(const json& prof) {
  Shares s;
  for (const auto& sample : prof["samples"]) {
    double v = sample["values"][0].get<double>();
    const auto& stack = sample["stack"];
    if (stack.empty()) continue;
    s.samples += v;
    for (const auto& f : stack) {
      s.frames += v;
      if (!f["function"].get<std::string>().empty()) s.named_frames += v;
    }
    s.self[stack[0]["name"].get<std::string>()] += v;
    s.root[stack[stack.size() - 1]["name"].get<std::string>()] += v;
  }
  return s;
}

TEST(GoProfile, StrippedBinaryIsNamedFromPclntab) {
  GoServer server = start_server("go_gameserver_stripped", {"-cpu-hog"});
  ASSERT_NE(server.http_port, 0);
  json prof = profile(server.proc->pid(), "-d 5 -F 199");
  Shares s = shares(prof);
  ASSERT_GT(s.samples, 200) << prof.dump().substr(0, 2000);
  double named = s.named_frames / s.frames;
  std::printf("samples %.0f, named frames %.2f%%, main.burnCPU self %.1f%%\n", s.samples, 100 * named,
              100 * s.self["main.burnCPU"] / s.samples);
  EXPECT_GE(named, 0.99);
  ASSERT_FALSE(prof["top_functions"].empty());
  EXPECT_EQ(prof["top_functions"][0]["name"], "main.burnCPU") << prof["top_functions"].dump();
  // One goroutine spins: it gets most of one of the two CPUs' samples.
  EXPECT_GT(s.self["main.burnCPU"], 0.5 * s.samples);
  EXPECT_TRUE(server.proc->running()) << "the target died";
}

TEST(GoProfile, LineInfoFromPclntab) {
  GoServer server = start_server("go_gameserver_stripped", {"-cpu-hog"});
  ASSERT_NE(server.http_port, 0);
  json prof = profile(server.proc->pid(), "-d 2 -F 99 --line-info");
  size_t burn = 0, with_line = 0;
  for (const auto& sample : prof["samples"]) {
    const auto& leaf = sample["stack"][0];
    if (leaf["name"] != "main.burnCPU") continue;
    ++burn;
    if (leaf["file"].get<std::string>().find("gameserver/main.go") != std::string::npos && leaf["line"] > 0)
      ++with_line;
  }
  ASSERT_GT(burn, 0u);
  EXPECT_EQ(with_line, burn);
}

}  // namespace
