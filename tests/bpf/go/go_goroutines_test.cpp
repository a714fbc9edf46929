// `tickprobe goroutines` on the Go fixture: goroutines read from the
// target's memory (no probes). Ground truth: the fixture's own
// runtime.NumGoroutine, its own goroutine profile (/debug/pprof/goroutine),
// its leak counter, and its blocked writer's byte count. Both builds: the
// normal one (allgs from .symtab, offsets from DWARF) and -s -w (allgs from
// runtime.allgadd, offsets from the Go 1.19 table). Needs root (reading
// another process's memory).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "test_support.h"

namespace {

using namespace tickprobe::test;
using nlohmann::json;

struct GoServer {
  std::unique_ptr<Subprocess> proc;
  uint16_t http_port = 0;
};

GoServer start_server(const std::string& binary, std::vector<std::string> flags) {
  GoServer s;
  std::vector<std::string> argv = {bin_path(binary)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"-duration", "120s"});
  s.proc = std::make_unique<Subprocess>(argv);
  for (int i = 0; i < 200 && !s.http_port; ++i) {
    std::istringstream out(s.proc->stdout_text());
    std::string word;
    int http = 0;
    if (out >> word >> http && word == "ready")
      s.http_port = static_cast<uint16_t>(http);
    else
      usleep(25000);
  }
  EXPECT_NE(s.http_port, 0) << "the Go fixture did not start: " << s.proc->stderr_text();
  return s;
}

std::string get(const GoServer& s, const std::string& path) {
  auto r = http_get("127.0.0.1", s.http_port, path, std::chrono::seconds(20));
  EXPECT_EQ(r.status, 200) << path;
  return r.body;
}
json get_json(const GoServer& s, const std::string& path) {
  std::string body = get(s, path);
  return body.empty() ? json::object() : json::parse(body);
}

// Runs tickprobe to completion; its stdout.
std::string tickprobe(const std::string& args, const std::string& name, int* status = nullptr) {
  std::string out_path = std::string(TICKPROBE_BINARY_DIR) + "/go_goroutines_test_" + name + ".out";
  std::vector<std::string> argv = {bin_path("tickprobe")};
  std::istringstream in(args);
  for (std::string w; in >> w;) argv.push_back(w);
  Subprocess p(argv, {}, out_path);
  auto st = p.wait_for(std::chrono::seconds(90));
  EXPECT_TRUE(st.has_value());
  if (status) *status = st.value_or(-1);
  EXPECT_EQ(st.value_or(-1), 0) << args << ": " << p.stderr_text();
  return read_file(out_path);
}

std::string frames_of(const json& group) {
  return group["stack"].dump();
}

class GoGoroutines : public ::testing::TestWithParam<std::string> {};

// Goroutines of a debug=2 dump: goid => its text block.
std::map<int64_t, std::string> dump_goroutines(const std::string& text) {
  std::map<int64_t, std::string> out;
  std::regex head("^goroutine ([0-9]+) \\[");
  std::istringstream in(text);
  int64_t cur = -1;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, head)) cur = std::stoll(m[1]);
    if (cur >= 0) out[cur] += line + "\n";
    if (line.empty()) cur = -1;
  }
  return out;
}

// An HTTP request to the fixture runs two goroutines of net/http (the
// connection and its background reader) while it is served.
bool is_http_request_goroutine(const std::string& block) {
  return block.find("created by net/http.(*Server).Serve") != std::string::npos ||
         block.find("created by net/http.(*connReader).startBackgroundRead") != std::string::npos;
}

// The live goroutines are exactly the fixture's: the same goids as its own
// /debug/pprof/goroutine?debug=2 (up to the goroutines of the HTTP request
// in flight), their count equals runtime.NumGoroutine minus those, and 50
// goroutines leaked by /spawn are one group, parked in main.leakyWorker on
// a channel receive.
TEST_P(GoGoroutines, LiveGoroutinesMatchNumGoroutine) {
  GoServer server = start_server(GetParam(), {});
  ASSERT_NE(server.http_port, 0);
  const std::string pid = std::to_string(server.proc->pid());
  get_json(server, "/spawn?n=50&leak=1");
  usleep(200000);  // the /spawn request's goroutines end
  json before = get_json(server, "/stats");
  usleep(200000);
  json r = json::parse(tickprobe("goroutines -q --pid " + pid + " --json --dump --top 50", "live_" + GetParam()));
  json after = get_json(server, "/stats");
  auto own = dump_goroutines(get(server, "/debug/pprof/goroutine?debug=2"));
  auto ours = dump_goroutines(r["dump"].get<std::string>());
  int64_t live = r["live"], ng_before = before["num_goroutine"], ng_after = after["num_goroutine"];
  int64_t own_in_flight = 0, mismatches = 0;
  for (const auto& [goid, block] : own) {
    if (is_http_request_goroutine(block)) {
      ++own_in_flight;
      continue;
    }
    if (!ours.count(goid)) {
      ++mismatches;
      ADD_FAILURE() << "tickprobe misses goroutine " << goid << ":\n" << block;
    }
  }
  int64_t ours_in_flight = 0;  // a previous request's goroutines, still ending
  for (const auto& [goid, block] : ours) {
    ours_in_flight += is_http_request_goroutine(block);
    if (!own.count(goid) && !is_http_request_goroutine(block)) {
      ++mismatches;
      ADD_FAILURE() << "tickprobe has goroutine " << goid << " the fixture does not:\n" << block;
    }
  }
  std::printf(
      "%s: tickprobe live %lld (+%lld runtime, allgs from %s, offsets from %s); NumGoroutine %lld/%lld "
      "(of them %lld serving the request); the fixture's own debug=2: %zu goroutines, %lld mismatched goids; "
      "snapshot %.3f ms\n",
      GetParam().c_str(), static_cast<long long>(live), static_cast<long long>(r["live_system"]),
      r["allgs_source"].get<std::string>().c_str(), r["layout_source"].get<std::string>().c_str(),
      static_cast<long long>(ng_before), static_cast<long long>(ng_after), static_cast<long long>(own_in_flight),
      own.size(), static_cast<long long>(mismatches), r["snapshot_ms"]["mean"].get<double>());
  // Quiet server: nothing starts or ends between the reads but the
  // goroutines of HTTP requests: 2 for the one being served (counted by
  // NumGoroutine and the fixture's own profile), and 2 more when the
  // previous request's are still ending. Everything else is exact: the
  // same goids (above), so the same count.
  EXPECT_LE(std::abs(ng_before - ng_after), 2);
  const int64_t ours_steady = live - ours_in_flight;
  EXPECT_EQ(ours_steady, static_cast<int64_t>(own.size()) - own_in_flight);
  EXPECT_GE(ours_steady, ng_after - 4);
  EXPECT_LE(ours_steady, ng_after - 2);
  EXPECT_LE(ours_in_flight, 2);
  EXPECT_EQ(r["counters"].value("g_invalid", 0), 0);
  EXPECT_EQ(r["counters"].value("stack_truncated", 0), 0);
  bool found = false;
  for (const auto& g : r["groups"]) {
    if (g["created_by"].get<std::string>().find("main.spawnHandler") == std::string::npos) continue;
    found = true;
    EXPECT_EQ(g["count"], 50);
    EXPECT_EQ(g["states"].value("chan receive", 0), 50);
    EXPECT_NE(frames_of(g).find("main.leakyWorker"), std::string::npos) << frames_of(g);
    EXPECT_NE(frames_of(g).find("runtime.chanrecv"), std::string::npos) << frames_of(g);
  }
  EXPECT_TRUE(found) << r.dump(1).substr(0, 3000);
  EXPECT_TRUE(server.proc->running());
}

// -leak-goroutines 20: the growth hunt finds the group created by
// main.leakGoroutines, parked in main.leakyWorker, growing at 20/s (within
// 10%, as the fixture's own counter also says).
TEST_P(GoGoroutines, LeakFoundWithRate) {
  GoServer server = start_server(GetParam(), {"-leak-goroutines", "20"});
  ASSERT_NE(server.http_port, 0);
  const std::string pid = std::to_string(server.proc->pid());
  json before = get_json(server, "/stats");
  auto t0 = std::chrono::steady_clock::now();
  json r = json::parse(tickprobe("goroutines -q --pid " + pid + " --leaks -d 8 -i 0.5 --json", "leak_" + GetParam()));
  double truth_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json after = get_json(server, "/stats");
  double truth_rate = (after["leaked_goroutines"].get<double>() - before["leaked_goroutines"].get<double>()) / truth_s;
  ASSERT_FALSE(r["leaks"].empty()) << r.dump(1).substr(0, 3000);
  const json& leak = r["leaks"][0];
  double rate = leak["growth"]["per_second"];
  std::printf("%s: leak rate %.2f/s (r2 %.3f), fixture's counter %.2f/s, injected 20/s; %zu snapshots, %.3f ms each\n",
              GetParam().c_str(), rate, leak["growth"]["r2"].get<double>(), truth_rate, r["snapshots"].get<size_t>(),
              r["snapshot_ms"]["mean"].get<double>());
  EXPECT_NE(leak["created_by"].get<std::string>().find("main.leakGoroutines"), std::string::npos) << leak.dump();
  EXPECT_NE(frames_of(leak).find("main.leakyWorker"), std::string::npos) << frames_of(leak);
  EXPECT_EQ(leak["stack_state"], "chan receive");
  EXPECT_NEAR(rate, 20.0, 2.0);
  // Leaked goroutines never end: the oldest was there from the first snapshot to the last.
  EXPECT_NEAR(leak["oldest_s"].get<double>(), r["elapsed_s"].get<double>(), 1.0);
  EXPECT_EQ(r["leaks"].size(), 1u) << r["leaks"].dump(1);
  EXPECT_TRUE(server.proc->running());
}

// -block-writes: main.pushSnapshots is stuck in conn.Write on a peer that
// never reads (the fixture's byte count stands still). The wait profile
// names it by its goroutine's stack, in IO wait, for the whole window.
TEST_P(GoGoroutines, BlockedWriteNamedByItsStack) {
  GoServer server = start_server(GetParam(), {"-block-writes"});
  ASSERT_NE(server.http_port, 0);
  const std::string pid = std::to_string(server.proc->pid());
  int64_t pushed = -1;
  for (int i = 0; i < 100; ++i) {  // until the socket buffers are full
    int64_t now = get_json(server, "/stats")["pushed_bytes"];
    if (now > 0 && now == pushed) break;
    pushed = now;
    usleep(200000);
  }
  std::string folded =
      tickprobe("goroutines -q --pid " + pid + " --waits -d 3 -i 0.5 -f folded", "waits_" + GetParam());
  int64_t pushed_after = get_json(server, "/stats")["pushed_bytes"];
  ASSERT_EQ(pushed, pushed_after) << "the writer was not blocked for the whole window";
  int64_t blocked_ns = -1;
  std::istringstream in(folded);
  for (std::string line; std::getline(in, line);)
    if (line.find("main.pushSnapshots") != std::string::npos) {
      EXPECT_NE(line.find("net.(*conn).Write"), std::string::npos) << line;
      EXPECT_NE(line.find("internal/poll.(*FD).Write"), std::string::npos) << line;
      EXPECT_NE(line.find(";[IO wait] "), std::string::npos) << line;
      blocked_ns = std::stoll(line.substr(line.rfind(' ') + 1));
    }
  std::printf("%s: main.pushSnapshots charged %.2f s of IO wait in a 3 s window\n", GetParam().c_str(),
              blocked_ns / 1e9);
  ASSERT_GT(blocked_ns, 0) << folded.substr(0, 3000);
  // Charged = the time between the first and the last snapshot: 3 s, plus
  // at most one interval of scheduling slack on a loaded machine.
  EXPECT_GE(blocked_ns, 2'900'000'000);
  EXPECT_LE(blocked_ns, 3'600'000'000);
}

// The goroutine profile (-o x.pb.gz) is read by `go tool pprof`, with the
// same count per stack as the fixture's own profile.
TEST_P(GoGoroutines, GoToolPprofReadsTheGoroutineProfile) {
  GoServer server = start_server(GetParam(), {});
  ASSERT_NE(server.http_port, 0);
  const std::string pid = std::to_string(server.proc->pid());
  get_json(server, "/spawn?n=30&leak=1");
  const std::string path = std::string(TICKPROBE_BINARY_DIR) + "/go_goroutines_test_" + GetParam() + ".pb.gz";
  tickprobe("goroutines -q --pid " + pid + " -o " + path, "pprof_" + GetParam());
  std::string raw;
  FILE* p = popen(("HOME=/tmp go tool pprof -raw " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) raw.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << raw;
  EXPECT_NE(raw.find("PeriodType: goroutine count"), std::string::npos) << raw.substr(0, 2000);
  // The 30 leaked goroutines are one sample of 30 whose stack holds main.leakyWorker.
  std::smatch m;
  EXPECT_TRUE(std::regex_search(raw, m, std::regex("\\n\\s+30: [0-9 ]+\\n"))) << raw.substr(0, 4000);
  EXPECT_NE(raw.find("main.leakyWorker"), std::string::npos);
}

// Snapshots of a target that churns goroutines (short-lived ones by the
// hundred, leaked ones, GC moving and shrinking stacks) while it is read:
// torn reads are dropped and counted, never shown; every group shown is
// named; the leak is still the one suspect; the target is unaffected.
TEST_P(GoGoroutines, TornReadsUnderChurnAreDroppedNotShown) {
  GoServer server = start_server(GetParam(), {"-gc-garbage", "-leak-goroutines", "10"});
  ASSERT_NE(server.http_port, 0);
  const std::string pid = std::to_string(server.proc->pid());
  std::string out_path = std::string(TICKPROBE_BINARY_DIR) + "/go_goroutines_test_churn_" + GetParam() + ".out";
  Subprocess hunt({bin_path("tickprobe"), "goroutines", "-q", "--pid", pid, "--leaks", "-d", "6", "-i", "0.1", "--json",
                   "--top", "100"},
                  {}, out_path);
  int requests = 0;
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5); std::chrono::steady_clock::now() < end;
       ++requests)
    get_json(server, "/spawn?n=200");
  auto st = hunt.wait_for(std::chrono::seconds(60));
  ASSERT_EQ(st.value_or(-1), 0) << hunt.stderr_text();
  json r = json::parse(read_file(out_path));
  std::printf("%s: %d churn requests (200 goroutines each); %zu snapshots; counters %s\n", GetParam().c_str(), requests,
              r["snapshots"].get<size_t>(), r["counters"].dump().c_str());
  EXPECT_GE(r["snapshots"].get<size_t>(), 20u);
  for (const auto& g : r["groups"]) {
    EXPECT_FALSE(g["start_function"].get<std::string>().empty()) << g.dump();
    EXPECT_EQ(g["created_by"].get<std::string>().find("[unknown]"), std::string::npos) << g.dump();
  }
  ASSERT_FALSE(r["leaks"].empty()) << r.dump(1).substr(0, 3000);
  EXPECT_NE(frames_of(r["leaks"][0]).find("main.leakyWorker"), std::string::npos);
  EXPECT_NEAR(r["leaks"][0]["growth"]["per_second"].get<double>(), 10.0, 1.0);
  EXPECT_TRUE(server.proc->running()) << server.proc->stderr_text();
}

// The agent serves the same at /debug/pprof/goroutine: pprof by default,
// debug=2 text, and refuses a pid that is not its target.
TEST(GoGoroutinesAgent, ServesTheGoroutineProfile) {
  GoServer server = start_server("go_gameserver_stripped", {});
  ASSERT_NE(server.http_port, 0);
  get_json(server, "/spawn?n=20&leak=1");
  const uint16_t port = pick_free_port();
  Subprocess agent({bin_path("tickprobe"), "agent", "-q", "--pid", std::to_string(server.proc->pid()), "--listen",
                    "127.0.0.1:" + std::to_string(port), "--no-offcpu", "--no-runtime"});
  ASSERT_TRUE(wait_for_tcp_port(port, std::chrono::seconds(60))) << agent.stderr_text();
  auto text = http_get("127.0.0.1", port, "/debug/pprof/goroutine?debug=2", std::chrono::seconds(20));
  ASSERT_EQ(text.status, 200) << text.body;
  auto blocks = dump_goroutines(text.body);
  size_t leaked = 0;
  for (const auto& [goid, block] : blocks) leaked += block.find("main.leakyWorker") != std::string::npos;
  EXPECT_EQ(leaked, 20u) << text.body.substr(0, 3000);
  auto prof = http_get("127.0.0.1", port, "/debug/pprof/goroutine", std::chrono::seconds(20));
  ASSERT_EQ(prof.status, 200) << prof.body;
  const std::string path = std::string(TICKPROBE_BINARY_DIR) + "/go_goroutines_test_agent.pb.gz";
  {
    std::ofstream out(path, std::ios::binary);
    out << prof.body;
  }
  std::string raw;
  FILE* p = popen(("HOME=/tmp go tool pprof -raw " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) raw.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << raw;
  std::smatch m;
  EXPECT_TRUE(std::regex_search(raw, m, std::regex("\\n\\s+20: [0-9 ]+\\n"))) << raw.substr(0, 4000);
  auto wrong = http_get("127.0.0.1", port, "/debug/pprof/goroutine?pid=1", std::chrono::seconds(20));
  EXPECT_EQ(wrong.status, 400);
  agent.terminate();
}

INSTANTIATE_TEST_SUITE_P(Builds, GoGoroutines, ::testing::Values("go_gameserver", "go_gameserver_stripped"));

}  // namespace
