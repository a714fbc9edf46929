// Hitch attribution: budget inference, splitting a late frame into its
// causes, and the blocking-reason codes the runtime family packs
// (RT_REASON in bpf/include/runtime.h).
#include <gtest/gtest.h>

#include <linux/types.h>

#include <numeric>
#include <string>
#include <vector>

#include "bpf/include/runtime.h"
#include "model/hitch.h"

namespace tickprobe {
namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint32_t kStateR = 0, kStateS = 1, kStateD = 2;  // enum offcpu_state
// x86_64 syscall numbers
constexpr int kRead = 0, kWrite = 1, kMmap = 9, kNanosleep = 35, kConnect = 42, kSendto = 44, kRecvfrom = 45,
              kFsync = 74, kFutex = 202, kClockNanosleep = 230, kEpollWait = 232, kEpollPwait2 = 441;

uint32_t reason(uint32_t state, uint32_t fd_kind, int nr) {
  return RT_REASON(state, fd_kind, static_cast<uint32_t>(nr + 1));
}

FrameRecord frame(uint64_t tick, uint64_t frame_ns, uint32_t tgid = 100) {
  FrameRecord f;
  f.tgid = tgid;
  f.tid = tgid;
  f.tick = tick;
  f.start_ns = tick * 50 * kMs;
  f.frame_ns = frame_ns;
  f.tick_ns = 2 * kMs;
  f.comm = "tick-main";
  return f;
}

// A normal 50 ms frame: a little CPU, the rest idle in epoll_wait.
FrameRecord normal_frame(uint64_t tick, uint64_t jitter_ns = 0, uint32_t tgid = 100) {
  FrameRecord f = frame(tick, 50 * kMs + jitter_ns, tgid);
  f.offcpu_ns[reason(kStateS, RT_FD_NONE, kEpollWait)] = 47 * kMs + jitter_ns;
  return f;
}

// The frame of the hitch in the docs: 95 ms GC + 31 ms blocked in a socket
// send + 10 ms CPU = 136 ms.
FrameRecord gc_and_send_frame(uint64_t tick) {
  FrameRecord f = frame(tick, 136 * kMs);
  f.pause_ns["gc"] = 95 * kMs;
  f.offcpu_ns[reason(kStateS, RT_FD_SOCKET, kSendto)] = 31 * kMs;
  return f;
}

TEST(BlockReason, DecodesStateFdAndSyscall) {
  uint32_t r = reason(kStateS, RT_FD_SOCKET, kSendto);
  EXPECT_EQ(RT_REASON_STATE(r), kStateS);
  EXPECT_EQ(RT_REASON_FD(r), static_cast<uint32_t>(RT_FD_SOCKET));
  EXPECT_EQ(RT_REASON_SYSCALL(r), kSendto);
  EXPECT_EQ(RT_REASON_SYSCALL(RT_REASON(kStateD, RT_FD_NONE, 0)), -1);  // not in a syscall

  BlockReason b = describe_block_reason(r);
  EXPECT_EQ(b.cause, "socket_write");
  EXPECT_EQ(b.label, "blocked in socket write (sendto)");
  EXPECT_FALSE(b.idle);

  struct Case {
    uint32_t code;
    const char* cause;
    bool idle;
  };
  const Case cases[] = {
      {reason(kStateR, RT_FD_SOCKET, kSendto), "runqueue", false},  // preempted: the syscall does not matter
      {RT_REASON(kStateD, RT_FD_NONE, 0), "uninterruptible", false},
      {RT_REASON(kStateS, RT_FD_NONE, 0), "other", false},
      {reason(kStateS, RT_FD_SOCKET, kRecvfrom), "socket_read", false},
      {reason(kStateS, RT_FD_SOCKET, kWrite), "socket_write", false},
      {reason(kStateS, RT_FD_SOCKET, kRead), "socket_read", false},
      {reason(kStateD, RT_FD_FILE, kRead), "file_io", false},
      {reason(kStateD, RT_FD_FILE, kFsync), "file_io", false},
      {reason(kStateS, RT_FD_OTHER, kWrite), "fd_io", false},
      {reason(kStateS, RT_FD_NONE, kFutex), "lock", false},
      {reason(kStateS, RT_FD_SOCKET, kConnect), "socket_connect", false},
      {reason(kStateD, RT_FD_NONE, kMmap), "memory", false},
      {reason(kStateS, RT_FD_NONE, kEpollWait), "idle", true},
      {reason(kStateS, RT_FD_NONE, kEpollPwait2), "idle", true},
      {reason(kStateS, RT_FD_NONE, kNanosleep), "idle", true},
      {reason(kStateS, RT_FD_NONE, kClockNanosleep), "idle", true},
      {reason(kStateS, RT_FD_NONE, 1000), "syscall", false},
  };
  for (const auto& c : cases) {
    BlockReason d = describe_block_reason(c.code);
    EXPECT_EQ(d.cause, c.cause) << "code 0x" << std::hex << c.code << " label " << d.label;
    EXPECT_EQ(d.idle, c.idle) << d.label;
    EXPECT_FALSE(d.label.empty());
  }
  EXPECT_EQ(describe_block_reason(reason(kStateS, RT_FD_NONE, kEpollWait)).label, "idle in epoll_wait");
  EXPECT_EQ(describe_block_reason(reason(kStateS, RT_FD_NONE, kFutex)).label, "waiting on a lock (futex)");
  EXPECT_NE(describe_block_reason(reason(kStateS, RT_FD_NONE, 1000)).label.find("syscall_1000"), std::string::npos);
}

TEST(BlockReason, GoroutineParksInsideAndOutsideTheTickBody) {
  BlockReason io = describe_block_reason(RT_REASON_GO(2, false));  // waitReasonIOWait
  EXPECT_EQ(io.cause, "goroutine_blocked");
  EXPECT_EQ(io.label, "goroutine blocked (IO wait)");
  EXPECT_FALSE(io.idle);
  BlockReason idle = describe_block_reason(RT_REASON_GO(14, true));  // chan receive, outside the body
  EXPECT_EQ(idle.cause, "idle");
  EXPECT_TRUE(idle.idle);
  EXPECT_NE(idle.label.find("chan receive"), std::string::npos);
  EXPECT_EQ(go_wait_reason(18), "semacquire");
  EXPECT_EQ(go_wait_reason(200), "wait reason 200");
}

TEST(AttributeFrame, GoFrameIsStopTheWorldBlockedIdleAndCpu) {
  FrameRecord f;
  f.frame_ns = 100'000'000;
  f.pause_ns["stw"] = 30'000'000;
  f.offcpu_ns[RT_REASON_GO(2, false)] = 40'000'000;
  f.offcpu_ns[RT_REASON_GO(14, true)] = 20'000'000;
  auto parts = attribute_frame(f);
  uint64_t sum = 0;
  for (const auto& p : parts) sum += p.ns;
  EXPECT_EQ(sum, f.frame_ns);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].cause, "goroutine_blocked");
  EXPECT_EQ(parts[1].cause, "stw");
  EXPECT_EQ(parts[1].label, "stop-the-world");
  EXPECT_EQ(parts[2].cause, "idle");
  EXPECT_EQ(parts[3].cause, "cpu");
  EXPECT_EQ(parts[3].ns, 10'000'000u);
}

TEST(BlockReason, SyscallNames) {
  EXPECT_EQ(syscall_name(kSendto), "sendto");
  EXPECT_EQ(syscall_name(kEpollWait), "epoll_wait");
  EXPECT_EQ(syscall_name(kFutex), "futex");
  EXPECT_EQ(syscall_name(kRead), "read");
  EXPECT_EQ(syscall_name(99999), "syscall_99999");
}

TEST(AttributeFrame, PartsAddUpToTheFrameLargestFirst) {
  FrameRecord f = gc_and_send_frame(7);
  f.offcpu_ns[reason(kStateS, RT_FD_NONE, kEpollWait)] = 2 * kMs;
  f.off_other_ns = 1 * kMs;
  std::vector<HitchPart> parts = attribute_frame(f);
  uint64_t sum = 0;
  for (const auto& p : parts) sum += p.ns;
  EXPECT_EQ(sum, f.frame_ns);
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[0].cause, "gc");
  EXPECT_EQ(parts[0].label, "GC");
  EXPECT_EQ(parts[0].ns, 95 * kMs);
  EXPECT_EQ(parts[1].cause, "socket_write");
  EXPECT_EQ(parts[1].ns, 31 * kMs);
  EXPECT_EQ(parts[2].cause, "cpu");
  EXPECT_EQ(parts[2].ns, 7 * kMs);  // 136 - 95 - 31 - 2 - 1
  for (size_t i = 1; i < parts.size(); i++) EXPECT_GE(parts[i - 1].ns, parts[i].ns);
  // More off-CPU than the frame (clock skew between probes): CPU is 0, not negative.
  FrameRecord over = frame(1, 10 * kMs);
  over.offcpu_ns[reason(kStateS, RT_FD_NONE, kEpollWait)] = 12 * kMs;
  for (const auto& p : attribute_frame(over)) EXPECT_NE(p.cause, "cpu");
}

TEST(HitchAnalyzer, InfersTheBudgetFromTheMedianFrameAndAttributesTheHitch) {
  HitchAnalyzer a;
  std::vector<Hitch> hitches;
  auto add = [&](const FrameRecord& f) {
    for (auto& h : a.add(f)) hitches.push_back(std::move(h));
  };
  // The hitch comes third: held back until the budget is known.
  add(normal_frame(1, 100000));
  add(normal_frame(2, 0));
  add(gc_and_send_frame(3));
  for (uint64_t t = 4; t <= 30; t++) add(normal_frame(t, (t % 5) * 20000));
  for (auto& h : a.flush()) hitches.push_back(std::move(h));

  EXPECT_EQ(a.budget_for(100), 50 * kMs + 40000);  // the median of the 30 frame lengths (one is 136 ms)
  const auto& proc = a.processes().at(100);
  EXPECT_TRUE(proc.budget_inferred);
  EXPECT_EQ(proc.frames, 30u);
  ASSERT_EQ(hitches.size(), 1u);
  EXPECT_EQ(proc.hitches, 1u);
  const Hitch& h = hitches[0];
  EXPECT_EQ(h.frame.tick, 3u);
  EXPECT_EQ(h.dominant_cause, "gc");
  EXPECT_NE(h.summary.find("GC"), std::string::npos) << h.summary;
  EXPECT_NE(h.summary.find("socket write"), std::string::npos) << h.summary;
  EXPECT_NE(h.summary.find("tick 3"), std::string::npos) << h.summary;
  EXPECT_NE(h.summary.find("136.0 ms"), std::string::npos) << h.summary;
  EXPECT_NE(h.summary.find("95.0 ms"), std::string::npos) << h.summary;
  EXPECT_NE(h.summary.find("31.0 ms"), std::string::npos) << h.summary;
  EXPECT_EQ(proc.hitches_by_cause.at("gc"), 1u);
  EXPECT_EQ(proc.hitch_ns_by_cause.at("gc"), 95 * kMs);
  EXPECT_EQ(proc.hitch_ns_by_cause.at("socket_write"), 31 * kMs);
  ASSERT_EQ(proc.worst.size(), 1u);
  EXPECT_EQ(proc.worst[0].frame.tick, 3u);
}

TEST(HitchAnalyzer, IdleWaitsAreNeverTheDominantCause) {
  HitchAnalyzer a(HitchOptions{50 * kMs, 0, 20});
  // 120 ms, of which 100 ms idle in epoll_wait: late because of the 20 ms of CPU.
  FrameRecord f = frame(1, 120 * kMs);
  f.offcpu_ns[reason(kStateS, RT_FD_NONE, kEpollWait)] = 100 * kMs;
  std::vector<Hitch> h = a.add(f);  // a given budget needs no inference: judged at once
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].parts[0].cause, "idle");
  EXPECT_TRUE(h[0].parts[0].idle);
  EXPECT_EQ(h[0].dominant_cause, "cpu");
  // A 3 ms futex wait beats 100 ms idle, too.
  FrameRecord g = frame(2, 103 * kMs);
  g.offcpu_ns[reason(kStateS, RT_FD_NONE, kEpollWait)] = 100 * kMs;
  g.offcpu_ns[reason(kStateS, RT_FD_NONE, kFutex)] = 3 * kMs;
  h = a.add(g);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].dominant_cause, "lock");
  // Only when nothing but idle time is left is the cause "idle".
  FrameRecord i = frame(3, 120 * kMs);
  i.offcpu_ns[reason(kStateS, RT_FD_NONE, kEpollPwait2)] = 120 * kMs;
  h = a.add(i);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].dominant_cause, "idle");
}

TEST(HitchAnalyzer, GivenBudgetAndSlack) {
  HitchAnalyzer a(HitchOptions{50 * kMs, 0, 20});
  // Default slack: max(1 ms, budget / 20) = 2.5 ms.
  EXPECT_TRUE(a.add(frame(1, 52500000)).empty());
  EXPECT_EQ(a.add(frame(2, 52500001)).size(), 1u);
  EXPECT_EQ(a.budget_for(100), 50 * kMs);
  EXPECT_FALSE(a.processes().at(100).budget_inferred);
  HitchAnalyzer b(HitchOptions{10 * kMs, 5 * kMs, 20});
  EXPECT_TRUE(b.add(frame(1, 15 * kMs)).empty());
  EXPECT_EQ(b.add(frame(2, 15 * kMs + 1)).size(), 1u);
  // Tiny budget: the slack is at least 1 ms.
  HitchAnalyzer c(HitchOptions{2 * kMs, 0, 20});
  EXPECT_TRUE(c.add(frame(1, 3 * kMs)).empty());
  EXPECT_EQ(c.add(frame(2, 3 * kMs + 1)).size(), 1u);
}

TEST(HitchAnalyzer, KeepsTheWorstPerProcessAndBudgetsApart) {
  HitchAnalyzer a(HitchOptions{0, 0, 3});
  // Process 1 ticks at 50 ms, process 2 at 16 ms.
  for (uint64_t t = 1; t <= 20; t++) {
    a.add(normal_frame(t, 0, 1));
    FrameRecord f = frame(t, 16 * kMs, 2);
    f.offcpu_ns[reason(kStateS, RT_FD_NONE, kEpollWait)] = 15 * kMs;
    a.add(f);
  }
  EXPECT_EQ(a.budget_for(1), 50 * kMs);
  EXPECT_EQ(a.budget_for(2), 16 * kMs);
  // Five frames of 31..35 ms: hitches for process 2 only.
  for (uint64_t t = 21; t <= 25; t++) {
    a.add(frame(t, (t + 10) * kMs, 1));
    a.add(frame(t, (t + 10) * kMs, 2));
  }
  a.flush();
  EXPECT_EQ(a.processes().at(1).hitches, 0u);
  const auto& p2 = a.processes().at(2);
  EXPECT_EQ(p2.hitches, 5u);
  ASSERT_EQ(p2.worst.size(), 3u);  // keep_worst
  EXPECT_EQ(p2.worst[0].frame.tick, 25u);
  EXPECT_EQ(p2.worst[1].frame.tick, 24u);
  EXPECT_EQ(p2.worst[2].frame.tick, 23u);
  EXPECT_EQ(p2.hitches_by_cause.at("cpu"), 5u);
}

TEST(HitchAnalyzer, FlushJudgesFramesHeldBackBeforeTheBudgetWasKnown) {
  HitchAnalyzer a;
  // Fewer frames than inference needs: nothing is judged until flush().
  EXPECT_TRUE(a.add(normal_frame(1)).empty());
  EXPECT_TRUE(a.add(normal_frame(2)).empty());
  EXPECT_TRUE(a.add(gc_and_send_frame(3)).empty());
  EXPECT_TRUE(a.add(normal_frame(4)).empty());
  std::vector<Hitch> h = a.flush();
  EXPECT_EQ(a.budget_for(100), 50 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].dominant_cause, "gc");
  EXPECT_TRUE(a.flush().empty());  // nothing judged twice
  EXPECT_EQ(a.processes().at(100).hitches, 1u);
}

}  // namespace
}  // namespace tickprobe
