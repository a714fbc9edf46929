// Real profiles of symbols_fixture (tests/fixtures/symbols): its stripped
// copies resolve by name through a build-id debug dir, .gnu_debuglink and a
// real local debuginfod server, and without any debug file group by their
// .eh_frame FDE (checked against the unstripped build's symbol table);
// vDSO stacks keep their callers; threads blocked through the whole window
// show with its length; --per-thread keeps same-named workers apart.
// Needs root and BPF (label: bpf).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "symbolize/elf_info.h"
#include "symbolize/symbolizer.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

const std::string kBin = TICKPROBE_BIN_DIR;

struct Fixture {
  pid_t pid = -1;
  std::string ready_line;
  ~Fixture() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      int st;
      waitpid(pid, &st, 0);
    }
  }
};

// Starts bin/<name> MODE SECONDS and waits for its "ready" line.
void start_fixture(Fixture& fx, const std::string& name, const std::string& mode, const std::string& seconds) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fx.pid = fork();
  if (fx.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    std::string path = kBin + "/" + name;
    execl(path.c_str(), name.c_str(), mode.c_str(), seconds.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') fx.ready_line += c;
  close(fds[0]);
  ASSERT_EQ(fx.ready_line.rfind("ready", 0), 0u) << name << " did not start";
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

// `tickprobe <cmd> -q --pid PID <args> --format json` with `env` in front
// (DEBUGINFOD_URLS is unset unless env sets it).
nlohmann::json record(const std::string& command, pid_t pid, const std::string& args, const std::string& env = "") {
  int rc = -1;
  std::string out = run_capture("env -u DEBUGINFOD_URLS " + env + " " + kBin + "/tickprobe " + command + " -q --pid " +
                                    std::to_string(pid) + " " + args + " --format json 2>&1",
                                &rc);
  EXPECT_EQ(rc, 0) << out.substr(0, 4000);
  if (rc != 0) return nlohmann::json::object({{"samples", nlohmann::json::array()}, {"duration_nanos", 1}});
  return nlohmann::json::parse(out);
}

double total(const nlohmann::json& prof) {
  double t = 0;
  for (const auto& s : prof["samples"]) t += s["values"][0].get<double>();
  return t;
}

// Sum of value[0] over samples with a frame named `fn`; callers[name]: the
// value of those whose frame right above it (towards the root) is `name`.
struct Inclusive {
  double value = 0;
  std::map<std::string, double> callers;
};
Inclusive inclusive(const nlohmann::json& prof, const std::string& fn) {
  Inclusive out;
  for (const auto& s : prof["samples"]) {
    const auto& stack = s["stack"];
    for (size_t i = 0; i < stack.size(); i++) {
      if (stack[i]["name"] != fn) continue;
      double v = s["values"][0].get<double>();
      out.value += v;
      out.callers[i + 1 < stack.size() ? stack[i + 1]["name"].get<std::string>() : "<root>"] += v;
      break;
    }
  }
  return out;
}

std::string top_names(const nlohmann::json& prof) {
  std::map<std::string, double> leaf;
  for (const auto& s : prof["samples"])
    if (!s["stack"].empty()) leaf[s["stack"][0]["name"].get<std::string>()] += s["values"][0].get<double>();
  std::string out;
  for (const auto& [k, v] : leaf) out += k + " " + std::to_string(v) + "\n";
  return out.substr(0, 3000);
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/tickprobe-symbols-XXXXXX";
  char* d = mkdtemp(tmpl);
  return d ? d : "";
}

std::string build_id_of_fixture() {
  return tickprobe::read_build_id(kBin + "/symbols_fixture");
}

uint64_t unstripped_address(const std::string& fn) {
  tickprobe::Symbolizer sym;
  auto addr = sym.find_symbol_address(kBin + "/symbols_fixture", fn);
  return addr.value_or(0);
}

// The stripped copy's hot function resolves by name: nearly all samples.
void expect_hot_function_named(const nlohmann::json& prof) {
  double all = total(prof);
  Inclusive hot = inclusive(prof, "hot_static_loop");
  ASSERT_GT(all, 50) << "too few samples";
  EXPECT_GT(hot.value, 0.8 * all) << top_names(prof);
  EXPECT_GT(hot.callers["main"], 0.95 * hot.value) << top_names(prof);
}

TEST(SymbolsBpf, StrippedBinaryResolvesThroughBuildIdDebugDir) {
  std::string dir = make_temp_dir();
  std::string id = build_id_of_fixture();
  ASSERT_GT(id.size(), 2u);
  fs::create_directories(dir + "/.build-id/" + id.substr(0, 2));
  fs::copy_file(kBin + "/symbols_fixture.debug", dir + "/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug");
  Fixture fx;
  start_fixture(fx, "symbols_fixture_stripped", "cpu", "30");
  auto prof = record("profile", fx.pid, "-d 3 -F 299 --debug-dir " + dir);
  expect_hot_function_named(prof);
  fs::remove_all(dir);
}

TEST(SymbolsBpf, StrippedBinaryResolvesThroughDebuglink) {
  Fixture fx;
  start_fixture(fx, "symbols_fixture_linked", "cpu", "30");
  auto prof = record("profile", fx.pid, "-d 3 -F 299");
  expect_hot_function_named(prof);
}

TEST(SymbolsBpf, StrippedBinaryResolvesThroughDebuginfod) {
  std::string dir = make_temp_dir();
  fs::create_directories(dir + "/served");
  fs::copy_file(kBin + "/symbols_fixture.debug", dir + "/served/symbols_fixture.debug");
  uint16_t port = tickprobe::test::pick_free_port();
  tickprobe::test::Subprocess server(
      {"/usr/bin/debuginfod", "-F", dir + "/served", "-p", std::to_string(port), "-d", dir + "/index.sqlite"});
  ASSERT_TRUE(server.started());
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  std::string id = build_id_of_fixture();
  // Wait until the server has scanned the directory: a lookup succeeds.
  // Each try uses a fresh client cache, since the client caches misses.
  bool served = false;
  for (int i = 0; i < 120 && !served; i++) {
    int rc = -1;
    run_capture("DEBUGINFOD_URLS=" + url + " DEBUGINFOD_CACHE_PATH=" + dir + "/probe" + std::to_string(i) +
                    " /usr/bin/debuginfod-find debuginfo " + id + " >/dev/null 2>&1",
                &rc);
    served = rc == 0;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(served) << "debuginfod did not serve " << id << ": " << server.stderr_text().substr(0, 2000);

  Fixture fx;
  start_fixture(fx, "symbols_fixture_stripped", "cpu", "30");
  auto prof =
      record("profile", fx.pid, "-d 3 -F 299", "DEBUGINFOD_URLS=" + url + " DEBUGINFOD_CACHE_PATH=" + dir + "/cache");
  expect_hot_function_named(prof);
  // It went through the client's cache, keyed by build-id.
  EXPECT_TRUE(fs::exists(dir + "/cache/" + id + "/debuginfo"));
  server.terminate();
  fs::remove_all(dir);
}

TEST(SymbolsBpf, NoSymbolsAtAllGroupsByFdeStart) {
  uint64_t hot = unstripped_address("hot_static_loop");
  uint64_t main_addr = unstripped_address("main");
  ASSERT_NE(hot, 0u);
  ASSERT_NE(main_addr, 0u);
  char hot_name[96], main_name[96];
  std::snprintf(hot_name, sizeof hot_name, "func@0x%" PRIx64 " in symbols_fixture_stripped", hot);
  std::snprintf(main_name, sizeof main_name, "func@0x%" PRIx64 " in symbols_fixture_stripped", main_addr);
  Fixture fx;
  start_fixture(fx, "symbols_fixture_stripped", "cpu", "30");
  auto prof = record("profile", fx.pid, "-d 3 -F 299");
  double all = total(prof);
  ASSERT_GT(all, 50);
  Inclusive h = inclusive(prof, hot_name);
  // All samples of the hot function on one frame (not shattered by address).
  EXPECT_GT(h.value, 0.8 * all) << hot_name << "\n" << top_names(prof);
  EXPECT_GT(h.callers[main_name], 0.95 * h.value) << top_names(prof);
  std::printf("FDE-named hot function: %.0f of %.0f samples\n", h.value, all);
}

TEST(SymbolsBpf, VdsoStacksKeepTheirCallers) {
  Fixture fx;
  start_fixture(fx, "symbols_fixture", "vdso", "30");
  auto prof = record("profile", fx.pid, "-d 3 -F 499 --no-kernel");
  double in_vdso = 0, reaching = 0;
  for (const auto& s : prof["samples"]) {
    const auto& stack = s["stack"];
    if (stack.empty() || stack[0]["module"] != "[vdso]") continue;
    double v = s["values"][0].get<double>();
    in_vdso += v;
    for (const auto& f : stack)
      if (f["name"] == "clock_spin") {
        reaching += v;
        break;
      }
  }
  ASSERT_GT(in_vdso, 50) << top_names(prof);
  // clock_spin is the only caller of clock_gettime here, so every vDSO
  // sample must reach it. Without the vDSO's table the frame-pointer step
  // from a vDSO leaf caught before its `push rbp` skips libc's wrapper and
  // clock_spin: measured 13 of ~1000 samples ending "main;clock_gettime".
  EXPECT_EQ(reaching, in_vdso) << top_names(prof);
  std::printf("vDSO samples reaching clock_spin: %.0f of %.0f\n", reaching, in_vdso);
}

// --line-info reaches the text formats, not only pprof.
TEST(SymbolsBpf, LineInfoInFoldedAndTop) {
  Fixture fx;
  start_fixture(fx, "symbols_fixture", "cpu", "30");
  int rc = -1;
  std::string folded = run_capture(
      kBin + "/tickprobe profile -q --pid " + std::to_string(fx.pid) + " -d 2 -F 199 --line-info -f folded", &rc);
  ASSERT_EQ(rc, 0) << folded;
  EXPECT_NE(folded.find(";hot_static_loop (symbols_fixture.c:"), std::string::npos) << folded.substr(0, 2000);
  EXPECT_NE(folded.find("main (symbols_fixture.c:"), std::string::npos) << folded.substr(0, 2000);
  std::string top = run_capture(
      kBin + "/tickprobe profile -q --pid " + std::to_string(fx.pid) + " -d 1 -F 199 --line-info -f top", &rc);
  ASSERT_EQ(rc, 0) << top;
  EXPECT_NE(top.find("hot_static_loop (symbols_fixture.c:"), std::string::npos) << top;
}

TEST(SymbolsBpf, ThreadsBlockedThroughTheWholeWindowShowWithItsLength) {
  Fixture fx;
  start_fixture(fx, "symbols_fixture", "blocked", "60");
  auto prof = record("offcpu", fx.pid, "-d 3");
  double window = prof["duration_nanos"].get<double>();
  ASSERT_GT(window, 2.5e9);
  for (const char* fn : {"wait_on_pipe", "wait_on_cond", "sleep_in_main"}) {
    Inclusive in = inclusive(prof, fn);
    // Blocked from before the start to after the end: the whole window
    // (seeded a moment before it starts, folded in a moment after it ends).
    EXPECT_GT(in.value, 0.97 * window) << fn << "\n" << top_names(prof);
    EXPECT_LT(in.value, 1.10 * window) << fn;
    std::printf("%s: %.3f s off-CPU of a %.3f s window\n", fn, in.value / 1e9, window / 1e9);
  }
  // The kernel side of the stack is there too (from the task iterator).
  bool kernel_frame = false;
  for (const auto& s : prof["samples"]) {
    bool has_fn = false, has_k = false;
    for (const auto& f : s["stack"]) {
      has_fn |= f["name"] == "wait_on_pipe";
      has_k |= f["kernel"].get<bool>();
    }
    kernel_frame |= has_fn && has_k;
  }
  EXPECT_TRUE(kernel_frame);
}

// A thread that blocks during the window and never wakes (stuck on a
// lock): its start record is pending at the end and is folded in. The
// signal comes at some point inside the window; whatever that point, the
// thread was off-CPU the whole window, first in wait_for_signal, then in
// stuck_on_lock.
TEST(SymbolsBpf, ThreadStuckOnALockUntilTheEndIsCounted) {
  Fixture fx;
  start_fixture(fx, "symbols_fixture", "blocked", "60");
  std::string out = make_temp_dir() + "/offcpu.json";
  tickprobe::test::Subprocess rec(
      {kBin + "/tickprobe", "offcpu", "-q", "--pid", std::to_string(fx.pid), "-d", "5", "--format", "json"}, {}, out);
  ASSERT_TRUE(rec.started());
  // Meant to land inside the window (tickprobe starts in well under 1.5 s
  // of a 5 s window). The assertions do not depend on where it lands: had
  // it come before the start, the thread is seeded in stuck_on_lock and
  // still must be folded in at the end.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(kill(fx.pid, SIGUSR1), 0);
  auto rc = rec.wait_for(std::chrono::seconds(60));
  ASSERT_TRUE(rc.has_value());
  ASSERT_EQ(*rc, 0) << rec.stderr_text();
  auto prof = nlohmann::json::parse(tickprobe::test::read_file(out));
  double window = prof["duration_nanos"].get<double>();
  std::string late_stacks;  // for failure messages
  for (const auto& smp : prof["samples"]) {
    if (smp["thread"] != "late-waiter") continue;
    late_stacks += std::to_string(smp["values"][0].get<double>() / 1e9) + " s:";
    for (const auto& f : smp["stack"]) late_stacks += " " + f["name"].get<std::string>();
    late_stacks += "\n";
  }
  Inclusive before = inclusive(prof, "wait_for_signal");
  Inclusive stuck = inclusive(prof, "stuck_on_lock");
  EXPECT_GT(stuck.value, 0.05 * window) << top_names(prof);
  EXPECT_GT(before.value + stuck.value, 0.97 * window)
      << late_stacks << prof["counters"].dump() << "\n" << rec.stderr_text();
  EXPECT_LT(before.value + stuck.value, 1.10 * window);
  std::printf("late-waiter: %.3f s in wait_for_signal + %.3f s in stuck_on_lock of a %.3f s window\n",
              before.value / 1e9, stuck.value / 1e9, window / 1e9);
  fs::remove_all(fs::path(out).parent_path());
}

TEST(SymbolsBpf, PerThreadKeepsSameNamedWorkersApart) {
  Fixture fx;
  start_fixture(fx, "symbols_fixture", "prefork", "30");
  std::istringstream in(fx.ready_line.substr(5));
  int kid1 = 0, kid2 = 0;
  in >> kid1 >> kid2;
  ASSERT_GT(kid1, 0);
  ASSERT_GT(kid2, 0);
  int rc = -1;
  std::string folded =
      run_capture(kBin + "/tickprobe profile -q --comm worker -d 2 -F 199 --per-thread -f folded", &rc);
  ASSERT_EQ(rc, 0) << folded;
  std::set<std::string> roots;
  std::istringstream lines(folded);
  std::string line;
  while (std::getline(lines, line)) roots.insert(line.substr(0, line.find(';', line.find(';') + 1)));
  for (int kid : {kid1, kid2}) {
    std::string root = "worker-" + std::to_string(kid) + ";worker-" + std::to_string(kid);
    EXPECT_TRUE(roots.count(root)) << root << " missing in\n" << folded.substr(0, 2000);
  }
}

}  // namespace
