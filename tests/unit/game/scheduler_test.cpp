// The coroutine scheduler: ids, live counts, timers, next-tick and fd waits.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "tickgame/clock.h"
#include "tickgame/scheduler.h"

using namespace tickgame;

namespace {
Task sleeper(Scheduler& s, std::uint64_t ns, int tag, std::vector<int>& order) {
  co_await s.sleep_for(ns);
  order.push_back(tag);
}

Task ticker(Scheduler& s, int ticks, std::vector<int>& seen, int tag) {
  for (int i = 0; i < ticks; ++i) {
    co_await s.next_tick();
    seen.push_back(tag);
  }
}

Task finishes_at_once(int& runs) {
  ++runs;
  co_return;
}

Task forever(Scheduler& s) { co_await s.suspend_forever(); }

Task reader(Scheduler& s, IoWaiter& w, std::vector<bool>& results) {
  results.push_back(co_await s.readable(w));
  results.push_back(co_await s.readable(w));
}

void drive_until_idle(Scheduler& s, std::uint64_t max_ns) {
  std::uint64_t end = mono_ns() + max_ns;
  while (s.live() > 0 && mono_ns() < end) {
    s.fire_timers(mono_ns());
    s.run_ready();
  }
}
}  // namespace

TEST(Scheduler, TimersFireInDeadlineOrder) {
  Scheduler s;
  std::vector<int> order;
  s.spawn(sleeper(s, 30'000'000, 3, order), "sleeper");
  s.spawn(sleeper(s, 10'000'000, 1, order), "sleeper");
  s.spawn(sleeper(s, 20'000'000, 2, order), "sleeper");
  s.spawn(sleeper(s, 10'000'000, 11, order), "sleeper");  // same deadline-ish: FIFO after 1
  s.run_ready();
  EXPECT_EQ(s.live(), 4u);
  drive_until_idle(s, 2'000'000'000);
  EXPECT_EQ(order, (std::vector<int>{1, 11, 2, 3}));
  EXPECT_EQ(s.live(), 0u);
}

TEST(Scheduler, TimersDoNotFireEarly) {
  Scheduler s;
  std::vector<int> order;
  std::uint64_t t0 = mono_ns();
  s.spawn(sleeper(s, 20'000'000, 1, order), "sleeper");
  s.run_ready();
  s.fire_timers(t0);
  s.run_ready();
  EXPECT_TRUE(order.empty());
  EXPECT_GE(s.next_timer_deadline(), t0 + 20'000'000);
  drive_until_idle(s, 1'000'000'000);
  EXPECT_GE(mono_ns() - t0, 20'000'000u);
}

TEST(Scheduler, NextTickResumesOncePerTick) {
  Scheduler s;
  std::vector<int> seen;
  s.spawn(ticker(s, 3, seen, 1), "world");
  s.spawn(ticker(s, 2, seen, 2), "npc_ai");
  s.run_ready();
  EXPECT_TRUE(seen.empty());  // nothing until a tick happens
  s.wake_tick_waiters();
  s.run_ready();
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  s.run_ready();  // no tick, no progress
  EXPECT_EQ(seen.size(), 2u);
  s.wake_tick_waiters();
  s.run_ready();
  s.wake_tick_waiters();
  s.run_ready();
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 1, 2, 1}));
  EXPECT_EQ(s.live(), 0u);
}

TEST(Scheduler, IdsAreUniqueMonotonicAndCountsAddUp) {
  Scheduler s;
  std::set<CoroId> ids;
  CoroId last = 0;
  int runs = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 200; ++i) {
      CoroId id = s.spawn(finishes_at_once(runs), "short");
      EXPECT_GT(id, last);
      last = id;
      ids.insert(id);
    }
    s.run_ready();  // they finish and are destroyed; ids are never reused
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(runs, 1000);
  EXPECT_EQ(s.created(), 1000u);
  EXPECT_EQ(s.destroyed(), 1000u);
  EXPECT_EQ(s.live(), 0u);
}

TEST(Scheduler, LiveCountsAndNamesOfSuspendedTasks) {
  Scheduler s;
  CoroId id = s.spawn(forever(s), "leaked_task");
  s.spawn(forever(s), "leaked_task");
  s.run_ready();
  EXPECT_EQ(s.live(), 2u);
  EXPECT_STREQ(s.name_of(id), "leaked_task");
  EXPECT_EQ(s.count_named("leaked_task"), 2u);
  s.destroy_all();
  EXPECT_EQ(s.live(), 0u);
  EXPECT_EQ(s.destroyed(), 2u);
  EXPECT_EQ(s.name_of(id), nullptr);
}

TEST(Scheduler, FdWaitsWakeAndCancel) {
  Scheduler s;
  IoWaiter w;
  std::vector<bool> results;
  s.spawn(reader(s, w, results), "session");
  s.run_ready();
  EXPECT_TRUE(results.empty());
  s.wake_reader(w);
  s.run_ready();
  EXPECT_EQ(results, (std::vector<bool>{true}));
  s.cancel(w);
  s.run_ready();
  EXPECT_EQ(results, (std::vector<bool>{true, false}));
  EXPECT_EQ(s.live(), 0u);
}

TEST(Scheduler, BetweenTicksWaitersAreSeparate) {
  Scheduler s;
  int gc_runs = 0;
  auto gc = [](Scheduler& s, int& runs) -> Task {
    for (;;) {
      co_await s.between_ticks();
      ++runs;
    }
  };
  s.spawn(gc(s, gc_runs), "gc");
  s.run_ready();
  s.wake_tick_waiters();
  s.run_ready();
  EXPECT_EQ(gc_runs, 0);
  s.wake_between_ticks_waiters();
  s.run_ready();
  EXPECT_EQ(gc_runs, 1);
}
