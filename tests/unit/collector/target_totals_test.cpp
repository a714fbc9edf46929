// TargetTotals: time-based expiry of exited processes, bounded count,
// monotonic all-process totals (issue 11.2). Time is passed in: no sleeps.
#include "core/stack_family.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tickprobe {
namespace {

using Clock = std::chrono::steady_clock;

size_t shown(const TargetTotals<double>& t) {
  size_t n = 0;
  t.for_each([&](uint32_t, double, bool) { n++; });
  return n;
}

TEST(TargetTotals, ExitedProcessesAreForgottenAfterTheRetention) {
  TargetTotals<double> t(RetentionOptions{10, 1000});
  auto t0 = Clock::now();
  double last_all = 0;
  // 500 short-lived processes, one exiting every second.
  for (uint32_t pid = 1; pid <= 500; pid++) {
    auto now = t0 + std::chrono::seconds(pid);
    t.at(pid) += 1.5;
    t.exited(pid, now);
    t.expire(now);
    EXPECT_LE(shown(t), 11u) << pid;  // at most the last 10 s of exits
    EXPECT_GE(t.all(), last_all);
    last_all = t.all();
  }
  EXPECT_DOUBLE_EQ(t.all(), 750);
  t.expire(t0 + std::chrono::seconds(600));
  EXPECT_EQ(shown(t), 0u);
  EXPECT_EQ(t.forgotten_count(), 500u);
  EXPECT_DOUBLE_EQ(t.forgotten(), 750);
  EXPECT_DOUBLE_EQ(t.all(), 750);
}

TEST(TargetTotals, MaxExitedBoundsTheCountToo) {
  TargetTotals<double> t(RetentionOptions{1e9, 3});
  for (uint32_t pid = 1; pid <= 10; pid++) {
    t.at(pid) = pid;
    t.exited(pid);
  }
  EXPECT_EQ(t.exited_count(), 3u);
  EXPECT_DOUBLE_EQ(t.all(), 55);
}

TEST(TargetTotals, LateDrainDoesNotReviveAndAttachDoes) {
  TargetTotals<double> t(RetentionOptions{5, 64});
  auto t0 = Clock::now();
  t.at(7) += 1;
  t.exited(7, t0);
  t.at(7) += 2;  // a drain after the exit: counted, still exited
  EXPECT_EQ(t.live_count(), 0u);
  EXPECT_EQ(t.exited_count(), 1u);
  t.expire(t0 + std::chrono::seconds(6));
  EXPECT_EQ(t.exited_count(), 0u);
  EXPECT_DOUBLE_EQ(t.all(), 3);

  t.at(8) += 1;
  t.exited(8, t0);
  t.attached(8);  // re-traced (exec): live again with its totals
  EXPECT_EQ(t.live_count(), 1u);
  t.expire(t0 + std::chrono::seconds(60));
  EXPECT_EQ(t.live_count(), 1u);
}

TEST(TargetTotals, UntracedLiveEntriesStartToExpire) {
  TargetTotals<std::map<std::string, double>> t(RetentionOptions{5, 64});
  auto t0 = Clock::now();
  t.at(1)["S"] += 1;
  t.at(2)["R"] += 2;
  t.exited_unless_in(std::set<uint32_t>{1}, t0);
  EXPECT_EQ(t.live_count(), 1u);
  t.expire(t0 + std::chrono::seconds(5));
  EXPECT_EQ(t.exited_count(), 0u);
  auto all = t.all();
  EXPECT_DOUBLE_EQ(all["S"], 1);
  EXPECT_DOUBLE_EQ(all["R"], 2);
}

}  // namespace
}  // namespace tickprobe
