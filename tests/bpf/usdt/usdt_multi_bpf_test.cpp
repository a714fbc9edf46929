// tickprobe's USDT attach through uprobe_multi (core/usdt_multi.h) reads
// the same arguments as libbpf's bpf_program__attach_usdt, and both read
// the values the fixture passes (tests/bpf/usdt/usdt_fixture.c): registers,
// memory operands and immediates of every size, signed and unsigned, and a
// probe behind a semaphore, which fires only once the attach enabled it.
#include <gtest/gtest.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "core/bpf_link.h"
#include "core/uprobe_multi.h"
#include "core/usdt_multi.h"
#include "test_support.h"
#include "usdt_args_test.skel.h"

using namespace tickprobe;
using tickprobe::test::Subprocess;

namespace {

struct Seen {
  uint64_t hits;
  int64_t arg_cnt;
  int64_t args[6];
};

struct Expected {
  const char* name;
  std::vector<int64_t> args;
};

// What the fixture passes (usdt_fixture.c), as usdt.bpf.h returns it: a
// signed value sign-extended, an unsigned one zero-extended.
const Expected kProbes[] = {
    {"regs", {-42, static_cast<int64_t>(0x1122334455667788ull), -7, 65000}},
    {"memory", {-1234567890123LL, 4000000000LL, -30000, 200}},
    {"constants", {-9, 77, 5000000000LL}},
    {"guarded", {31337}},
};

struct TraceRun {
  std::array<Seen, 4> seen{};
  std::string error;
};

// Loads the test program (for uprobe_multi or not), attaches every probe
// of the fixture with the probe's index as usdt cookie, and waits until
// each has fired (or 10 s).
TraceRun trace(pid_t pid, bool multi) {
  TraceRun r;
  usdt_args_test_bpf* sk = usdt_args_test_bpf__open();
  if (!sk) {
    r.error = "open failed";
    return r;
  }
  sk->rodata->target_tgid = static_cast<uint32_t>(pid);
  if (multi && !use_uprobe_multi(sk->obj, /*usdt=*/true)) {
    usdt_args_test_bpf__destroy(sk);
    r.error = "no uprobe_multi";
    return r;
  }
  if (usdt_args_test_bpf__load(sk)) {
    usdt_args_test_bpf__destroy(sk);
    r.error = "load failed";
    return r;
  }
  std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  UsdtSpecTable specs(bpf_object__find_map_by_name(sk->obj, "__bpf_usdt_specs"));
  std::vector<BpfLink> links;
  for (size_t i = 0; i < 4 && r.error.empty(); i++) {
    if (multi) {
      int err = 0;
      auto a = attach_usdt_multi(sk->progs.record, specs, pid, exe, "fixture", kProbes[i].name, i, &err);
      if (!a) r.error = a.error().message;
      else links.push_back(a.take().link);
    } else {
      LIBBPF_OPTS(bpf_usdt_opts, o, .usdt_cookie = i);
      bpf_link* l = bpf_program__attach_usdt(sk->progs.record, pid, exe.c_str(), "fixture", kProbes[i].name, &o);
      if (!l) r.error = std::string("attach_usdt ") + kProbes[i].name + " failed";
      else links.emplace_back(l);
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (r.error.empty()) {
    bool all = true;
    for (uint32_t k = 0; k < 4; k++) {
      bpf_map_lookup_elem(bpf_map__fd(sk->maps.seen), &k, &r.seen[k]);
      all &= r.seen[k].hits > 0;
    }
    if (all || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  links.clear();
  usdt_args_test_bpf__destroy(sk);
  return r;
}

// Until the child has exec'ed the fixture (its /proc/PID/exe is it), 5 s at most.
bool wait_exec(pid_t pid) {
  char want[4096], got[4096];
  if (!realpath(USDT_FIXTURE, want)) return false;
  for (int i = 0; i < 500; i++) {
    ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), got, sizeof got - 1);
    if (n > 0 && std::string(got, n) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void expect_fixture_values(const TraceRun& r, const char* path) {
  ASSERT_TRUE(r.error.empty()) << path << ": " << r.error;
  for (size_t i = 0; i < 4; i++) {
    const Seen& s = r.seen[i];
    ASSERT_GT(s.hits, 0u) << path << ": fixture:" << kProbes[i].name << " never fired";
    EXPECT_EQ(s.arg_cnt, static_cast<int64_t>(kProbes[i].args.size())) << path << " " << kProbes[i].name;
    for (size_t a = 0; a < kProbes[i].args.size(); a++)
      EXPECT_EQ(s.args[a], kProbes[i].args[a]) << path << " fixture:" << kProbes[i].name << " arg " << a;
  }
}

TEST(UsdtMulti, ReadsTheFixturesArgumentsLikeLibbpf) {
  ASSERT_TRUE(uprobe_multi_supported()) << "no uprobe_multi links in this kernel (Linux 6.6+), which tickprobe uses for every uprobe; run `tickprobe doctor`";
  Subprocess fx({USDT_FIXTURE});
  ASSERT_TRUE(fx.started());
  ASSERT_TRUE(wait_exec(fx.pid()));
  TraceRun multi = trace(fx.pid(), true);
  expect_fixture_values(multi, "uprobe_multi");
  TraceRun libbpf = trace(fx.pid(), false);
  expect_fixture_values(libbpf, "bpf_program__attach_usdt");
  for (size_t i = 0; i < 4; i++) {
    EXPECT_EQ(multi.seen[i].arg_cnt, libbpf.seen[i].arg_cnt) << kProbes[i].name;
    for (size_t a = 0; a < 6; a++) EXPECT_EQ(multi.seen[i].args[a], libbpf.seen[i].args[a]) << kProbes[i].name << " " << a;
  }
}

// The semaphore is the kernel's reference counter: set while a link with
// it exists, back to 0 once the link is gone (read from the fixture's
// memory).
TEST(UsdtMulti, SemaphoreIsEnabledWhileAttachedOnly) {
  ASSERT_TRUE(uprobe_multi_supported()) << "no uprobe_multi links in this kernel (Linux 6.6+), which tickprobe uses for every uprobe; run `tickprobe doctor`";
  Subprocess fx({USDT_FIXTURE});
  ASSERT_TRUE(fx.started());
  ASSERT_TRUE(wait_exec(fx.pid()));
  std::string exe = "/proc/" + std::to_string(fx.pid()) + "/exe";
  auto sites = read_usdt_sites(exe);
  ASSERT_TRUE(sites) << sites.error().message;
  uint64_t sema_off = 0;
  for (const auto& s : *sites)
    if (s.name == "guarded") sema_off = s.semaphore_offset;
  ASSERT_GT(sema_off, 0u);
  // its address: the mapping of the executable that holds that file offset
  auto read_sema = [&]() -> int {
    FILE* m = fopen(("/proc/" + std::to_string(fx.pid()) + "/maps").c_str(), "r");
    if (!m) return -1;
    char line[512];
    std::string target;
    char buf[4096];
    ssize_t n = readlink(exe.c_str(), buf, sizeof buf - 1);
    if (n > 0) target.assign(buf, n);
    uint64_t addr = 0;
    while (fgets(line, sizeof line, m)) {
      unsigned long lo, hi, off;
      char path[400] = "";
      if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %399s", &lo, &hi, &off, path) < 3) continue;
      if (target != path) continue;
      if (sema_off >= off && sema_off < off + (hi - lo)) addr = lo + (sema_off - off);
    }
    fclose(m);
    if (!addr) return -1;
    FILE* mem = fopen(("/proc/" + std::to_string(fx.pid()) + "/mem").c_str(), "r");
    if (!mem) return -1;
    unsigned short v = 0;
    fseek(mem, static_cast<long>(addr), SEEK_SET);
    size_t got = fread(&v, sizeof v, 1, mem);
    fclose(mem);
    return got == 1 ? v : -1;
  };
  EXPECT_EQ(read_sema(), 0);
  usdt_args_test_bpf* sk = usdt_args_test_bpf__open();
  ASSERT_TRUE(sk);
  ASSERT_TRUE(use_uprobe_multi(sk->obj, true));
  ASSERT_EQ(usdt_args_test_bpf__load(sk), 0);
  UsdtSpecTable specs(bpf_object__find_map_by_name(sk->obj, "__bpf_usdt_specs"));
  {
    int err = 0;
    auto a = attach_usdt_multi(sk->progs.record, specs, fx.pid(), exe, "fixture", "guarded", 3, &err);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(read_sema(), 1);
    EXPECT_EQ(specs.in_use(), 1u);
    // a missing probe is ENOENT, like libbpf's
    auto missing = attach_usdt_multi(sk->progs.record, specs, fx.pid(), exe, "fixture", "nope", 0, &err);
    EXPECT_FALSE(missing);
    EXPECT_EQ(err, ENOENT);
  }
  // the link's close unregisters the uprobe, which drops the counter
  int after = -1;
  for (int i = 0; i < 100 && (after = read_sema()) != 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(after, 0);
  usdt_args_test_bpf__destroy(sk);
}

}  // namespace
