// Ground-truth tests for the off-CPU family's cached paths (the per-thread
// user-stack unwind cache and the per-thread kernel-stack cache, whose
// stacks are taken at switch-in), on the
// pipe_pingpong fixture (tests/fixtures/bench): its ping thread blocks in
// read() inside ping_wait(), called in turn from ping_via_a() and
// ping_via_b() at the same user registers, and measures the time it spends
// inside that read(). Needs root and BPF (label: bpf).
#include <algorithm>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

const std::string kBin = TICKPROBE_BIN_DIR;

struct Fixture {
  pid_t pid = -1;
  int out = -1;  // its stdout after "ready"
};

Fixture start_pingpong(const std::string& args) {
  int fds[2];
  Fixture f;
  if (pipe(fds) != 0) return f;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    std::string cmd = "exec " + kBin + "/pipe_pingpong " + args;
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char buf[6] = {};
  ssize_t n = read(fds[0], buf, 6);  // "ready\n"
  EXPECT_EQ(n, 6) << "pipe_pingpong did not start";
  f.pid = pid;
  f.out = fds[0];
  return f;
}

// Waits for the fixture's end and parses its "key value" lines.
std::map<std::string, double> finish(Fixture& f) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(f.out, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(f.out);
  int st;
  waitpid(f.pid, &st, 0);
  std::map<std::string, double> kv;
  std::istringstream in(text);
  std::string k;
  double v;
  while (in >> k >> v) kv[k] = v;
  return kv;
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

// Off-CPU ns of the samples whose stack holds `fn`, by the frame below it.
struct Inclusive {
  double ns = 0;
  std::map<std::string, double> callers;
  double kernel_pipe_read_ns = 0;  // of ns: stacks with a kernel *pipe_read frame
  double kernel_unix_read_ns = 0;  // of ns: stacks with a kernel unix_stream_read* frame
};

Inclusive inclusive(const nlohmann::json& prof, const std::string& fn) {
  Inclusive out;
  for (const auto& s : prof["samples"]) {
    const auto& stack = s["stack"];
    for (size_t i = 0; i < stack.size(); i++) {
      if (stack[i]["name"] != fn) continue;
      double v = s["values"][0].get<double>();
      out.ns += v;
      out.callers[i + 1 < stack.size() ? stack[i + 1]["name"].get<std::string>() : "(none)"] += v;
      bool pipe = false, unix_read = false;
      for (const auto& fr : stack) {
        if (!fr["kernel"].get<bool>()) continue;
        const std::string name = fr["name"].get<std::string>();
        if (name.find("pipe_read") != std::string::npos) pipe = true;
        if (name.rfind("unix_stream_read", 0) == 0) unix_read = true;
      }
      if (pipe) out.kernel_pipe_read_ns += v;
      if (unix_read) out.kernel_unix_read_ns += v;
      break;
    }
  }
  return out;
}

// One recording: the fixture started with `args`, `tickprobe offcpu` over
// `seconds` of it, the fixture's own counts at its end.
struct Recording {
  int rc = -1;
  std::string out;
  nlohmann::json prof;
  std::map<std::string, double> truth;
};

Recording record(const std::string& args, int seconds) {
  Recording r;
  Fixture f = start_pingpong(args);
  if (f.pid <= 0) return r;
  r.out = run_capture(kBin + "/tickprobe offcpu -q --pid " + std::to_string(f.pid) + " -d " +
                          std::to_string(seconds) + " --format json",
                      &r.rc);
  r.truth = finish(f);
  if (r.rc == 0) r.prof = nlohmann::json::parse(r.out);
  return r;
}

// Blocks in S (at the fixture's fixed places, not preemptions).
double sleeping_blocks(const nlohmann::json& prof) {
  double n = 0;
  for (const auto& s : prof["samples"])
    if (s["labels"].value("state", "") == "S") n += s["values"][1].get<double>();
  return n;
}

// The same blocking read reached from two callers at identical registers:
// the cache must not hand one caller's stack to the other, and the blocked
// time must match what the fixture measured around its read() calls.
TEST(OffCpuCache, TwoCallersAtSameRegistersKeepTheirStacksAndTotals) {
  // The pong side naps 2 ms per round trip: the ping thread's reads block
  // ~2 ms each, so its time inside read() is almost all off-CPU.
  Recording r = record("--duration 9 --delay-us 2000 --two-callers", 5);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto& prof = r.prof;
  auto& truth = r.truth;
  ASSERT_GT(truth["elapsed_ns"], 0);

  Inclusive wait = inclusive(prof, "ping_wait");
  Inclusive read_fn = inclusive(prof, "read");
  ASSERT_GT(wait.ns, 0) << prof.dump().substr(0, 2000);
  // Both callers, in the fixture's 1:1 split.
  double a = wait.callers["ping_via_a"], b = wait.callers["ping_via_b"];
  EXPECT_NEAR(a / (a + b), 0.5, 0.06) << "via_a=" << a << " via_b=" << b;
  EXPECT_GT(a + b, 0.99 * wait.ns);
  std::printf("ping_wait split via_a:via_b = %.3f (fixture: %g:%g)\n", a / b, truth["via_a"], truth["via_b"]);
  // libc's read (no frame pointers) keeps its caller.
  EXPECT_GT(read_fn.callers["ping_wait"] + read_fn.callers["pong_wait"], 0.99 * read_fn.ns);
  // Kernel frames (taken at switch-in) below the blocking read (the rest:
  // the odd preemption inside read, whose kernel stack is the interrupt's).
  EXPECT_GT(wait.kernel_pipe_read_ns, 0.95 * wait.ns);
  // Blocked share of the window vs the fixture's share of its run spent in
  // read(): the read's own CPU time is a few us per 2 ms block.
  double window_ns = prof["duration_nanos"].get<double>();
  double traced_share = wait.ns / window_ns;
  double truth_share = truth["ping_wait_ns"] / truth["elapsed_ns"];
  EXPECT_NEAR(traced_share / truth_share, 1.0, 0.1) << "traced " << traced_share << " fixture " << truth_share;
  std::printf("ping thread blocked in read: traced %.3f of the window, fixture %.3f of its run\n", traced_share,
              truth_share);
}

// A thread that blocks where it blocked last time reuses its last walk;
// the stacks and totals are still those of the walk.
TEST(OffCpuCache, RepeatedBlocksHitTheCacheWithRightStacks) {
  Recording r = record("--duration 8 --delay-us 1000", 4);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto& prof = r.prof;
  auto& truth = r.truth;
  double blocks = prof["counters"]["blocks"].get<double>();
  double hits = prof["counters"]["unwind_cache_hits"].get<double>();
  double sleeps = sleeping_blocks(prof);
  std::printf("blocks %g (%g sleeping), unwind cache hits %g (%.0f%% of the sleeps)\n", blocks, sleeps, hits,
              100 * hits / std::max(sleeps, 1.0));
  // Ping blocks in read, pong in read and nanosleep: all at fixed places,
  // so the cache serves a good share of them and the checks below cover
  // cached stacks. The share itself is a benchmark number (scripts/
  // bench_offcpu.sh: 87% on the plain ping-pong); here it only has to be
  // substantial: 42% was measured with the suite and stress-ng alongside
  // (why load lowers the share is not known yet).
  EXPECT_GT(hits, 0.2 * sleeps);
  Inclusive wait = inclusive(prof, "ping_wait");
  Inclusive nap = inclusive(prof, "pong_nap");
  EXPECT_GT(wait.callers["ping_via_a"], 0.99 * wait.ns);
  EXPECT_GT(nap.callers["pong_loop"], 0.99 * nap.ns);
  double window_ns = prof["duration_nanos"].get<double>();
  double truth_share = truth["ping_wait_ns"] / truth["elapsed_ns"];
  EXPECT_NEAR(wait.ns / window_ns / truth_share, 1.0, 0.1);
  EXPECT_EQ(truth["via_b"], 0);
}

// One user stack, two kernel paths: the ping thread's read() in ping_wait
// waits on the pipe and on a unix socket in turn. The kernel-stack cache is
// picked by the user stack, so both paths share its way; it must still
// hand each block its own kernel stack, in the fixture's measured split,
// while serving most blocks from the cache.
TEST(OffCpuCache, OneUserStackTwoKernelPathsKeepTheirKernelStacks) {
  Recording r = record("--duration 8 --delay-us 1000 --two-paths", 4);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto& prof = r.prof;
  auto& truth = r.truth;
  ASSERT_GT(truth["ping_wait_ns"], 0);
  Inclusive wait = inclusive(prof, "ping_wait");
  ASSERT_GT(wait.ns, 0) << prof.dump().substr(0, 2000);
  double truth_sock = truth["ping_wait_sock_ns"] / truth["ping_wait_ns"];
  double traced_sock = wait.kernel_unix_read_ns / wait.ns;
  std::printf("ping_wait in unix_stream_read: traced %.3f, fixture %.3f; in pipe_read: traced %.3f\n", traced_sock,
              truth_sock, wait.kernel_pipe_read_ns / wait.ns);
  // Each block ~1 ms (the pong side naps): the split is by time, 1:1.
  EXPECT_NEAR(traced_sock, truth_sock, 0.06);
  EXPECT_GT(wait.kernel_pipe_read_ns + wait.kernel_unix_read_ns, 0.95 * wait.ns);
  double sleeps = sleeping_blocks(prof);
  double hits = prof["counters"].value("kernel_stack_cache_hits", 0.0);
  std::printf("sleeping blocks %g, kernel stack cache hits %g\n", sleeps, hits);
  // Mostly served from the cache (the share is a benchmark number; here it
  // only has to be large enough that the checks above cover cached stacks).
  EXPECT_GT(hits, 0.2 * sleeps);
}

}  // namespace
