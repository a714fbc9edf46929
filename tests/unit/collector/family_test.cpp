// The family plumbing without BPF: the counter table, family settings, the
// registry and the agent's family selection, the watch loop and the
// count-slot handshake.
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "core/count_slots.h"
#include "core/family.h"
#include "core/watch.h"
#include "model/counters.h"

namespace tickprobe {
namespace {

TEST(CounterTable, NamesAreUniqueAndInEnumOrder) {
  std::set<std::string> names;
  auto table = counter_table();
  ASSERT_EQ(table.size(), static_cast<size_t>(TP_COUNTER_MAX));
  for (size_t i = 0; i < table.size(); i++) {
    EXPECT_EQ(table[i].id, i);
    EXPECT_TRUE(names.insert(table[i].name).second) << "duplicate counter name " << table[i].name;
    EXPECT_GT(std::string(table[i].help).size(), 5u) << table[i].name;
    for (char c : std::string(table[i].name)) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << table[i].name;
  }
  EXPECT_STREQ(counter_info(TP_ERR_STACKS_FULL).name, "stacks_full");
  EXPECT_EQ(counter_info(TP_ERR_STACKS_FULL).kind, CounterKind::kDrop);
  EXPECT_EQ(counter_info(TP_CTR_SAMPLES).kind, CounterKind::kWork);
}

TEST(CounterTable, MapShowsEveryDropButOnlyMovingWork) {
  Counters c;
  c[TP_CTR_SAMPLES] = 7;
  c[TP_ERR_COUNTS_FULL] = 2;
  auto m = c.to_map(true);
  EXPECT_EQ(m["samples"], 7u);
  EXPECT_EQ(m["counts_full"], 2u);
  EXPECT_EQ(m.count("stacks_full"), 1u);  // a zero drop is shown
  EXPECT_EQ(m.count("blocks"), 0u);       // a zero work counter is not
  EXPECT_EQ(c.drops(), 2u);
  Counters d;
  d[TP_ERR_COUNTS_FULL] = 1;
  c += d;
  EXPECT_EQ(c[TP_ERR_COUNTS_FULL], 3u);
}

TEST(FamilySettings, TypedGettersRejectBadValues) {
  FamilySettings s({{"n", "12"}, {"neg", "-1"}, {"hex", "0x10"}, {"b", "true"}, {"bad", "maybe"}});
  EXPECT_EQ(*s.get_u64("n", 0), 12u);
  EXPECT_EQ(*s.get_u64("missing", 5), 5u);
  EXPECT_FALSE(s.get_u64("neg", 0));
  EXPECT_FALSE(s.get_u64("hex", 0));
  EXPECT_FALSE(s.get_u64("n", 0, 20, 30));
  EXPECT_TRUE(*s.get_bool("b", false));
  EXPECT_FALSE(s.get_bool("bad", false));
}

TEST(FamilyRegistry, EveryFamilyIsRegisteredOnce) {
  std::set<std::string> names;
  for (const auto& f : family_registry()) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_TRUE(f.create) << f.name;
    EXPECT_EQ(find_family(f.name), &f);
  }
  for (const char* want : {"profile", "offcpu", "runtime", "alloc"}) EXPECT_TRUE(names.count(want)) << want;
  EXPECT_EQ(find_family("nope"), nullptr);
}

TEST(AgentFamilies, DefaultsEnableAndDisable) {
  AgentOptions o;
  auto def = agent_families(o);
  ASSERT_TRUE(def);
  std::set<std::string> on;
  for (const auto* f : *def) on.insert(f->name);
  EXPECT_TRUE(on.count("profile"));
  EXPECT_FALSE(on.count("alloc"));  // a trap per malloc: opt-in
  EXPECT_TRUE(on.count("growth"));  // a program per page fault of a target: measured cheap (docs/overhead.md)
  o.enable = {"alloc"};
  o.disable = {"offcpu"};
  on.clear();
  auto chosen = agent_families(o);
  ASSERT_TRUE(chosen);
  for (const auto* f : *chosen) on.insert(f->name);
  EXPECT_TRUE(on.count("alloc"));
  EXPECT_FALSE(on.count("offcpu"));
}

TEST(AgentFamilies, UnknownFamiliesAndSettingsAreUsageErrors) {
  AgentOptions o;
  o.enable = {"nosuch"};
  auto r = agent_families(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nosuch"), std::string::npos);
  o.enable.clear();
  o.settings["profile"]["frequncy"] = "99";
  r = agent_families(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("frequncy"), std::string::npos);
  EXPECT_NE(r.error().hint.find("frequency"), std::string::npos);
}

TEST(WatchLoop, TicksOnTheIntervalAndStopsAtTheDeadline) {
  int ticks = 0;
  WatchLoop w;
  w.duration_s = 0.35;
  w.interval_s = 0.1;
  w.tick = [&](double) { ticks++; };
  double ran = run_watch_loop(w);
  EXPECT_GE(ran, 0.35);
  EXPECT_LT(ran, 5.0);
  EXPECT_GE(ticks, 1);
  EXPECT_LE(ticks, 4);
}

TEST(WatchLoop, StopsWhenTheTargetsAreGoneOrWhenAsked) {
  std::atomic<bool> stop{false};
  WatchLoop w;
  w.interval_s = 0.05;
  w.stop = &stop;
  int ticks = 0;
  w.tick = [&](double) {
    if (++ticks == 2) stop = true;
  };
  run_watch_loop(w);
  EXPECT_EQ(ticks, 2);
  WatchLoop g;
  g.gone = [] { return true; };
  EXPECT_LT(run_watch_loop(g), 1.0);
}

// A loop that sleeps a whole interval at once (max_sleep_s, the one-shot
// recorder) still ends when a signal handler sets stop: the signal cuts the
// nanosleep short. The interval is 30 s, so ending within 10 s can only be
// the signal's doing.
std::atomic<bool> g_watch_stop{false};
extern "C" void watch_test_on_signal(int) { g_watch_stop = true; }

TEST(WatchLoop, LongSleepEndsOnASignal) {
  struct sigaction sa {};
  sa.sa_handler = watch_test_on_signal;
  sa.sa_flags = SA_RESTART;  // nanosleep is never restarted regardless
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  g_watch_stop = false;
  WatchLoop w;
  w.interval_s = 30;
  w.max_sleep_s = 30;
  w.stop = &g_watch_stop;
  int ticks = 0;
  w.tick = [&](double) { ticks++; };
  pthread_t self = pthread_self();
  std::atomic<bool> returned{false};
  // Again every 100 ms until the loop returned: one that landed between the
  // loop's stop check and its nanosleep would be slept through.
  std::thread poker([self, &returned] {
    while (!returned) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!returned) pthread_kill(self, SIGUSR1);
    }
  });
  double ran = run_watch_loop(w);
  returned = true;
  poker.join();
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_LT(ran, 10.0);
  EXPECT_EQ(ticks, 0);
}

// The user-space half of the slot handshake waits for a writer that still
// holds the old slot, and only for it.
TEST(CountSlots, FlipWaitsForWritersOfTheOldSlot) {
  uint32_t active = 0;
  uint64_t writers[2] = {1, 0};  // a writer is inside slot 0
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    __atomic_store_n(&writers[0], 0, __ATOMIC_SEQ_CST);
  });
  auto t0 = std::chrono::steady_clock::now();
  SlotFlip f = flip_count_slot(&active, writers);
  auto waited = std::chrono::steady_clock::now() - t0;
  writer.join();
  EXPECT_EQ(f.drained_slot, 0u);
  EXPECT_EQ(active, 1u);
  EXPECT_TRUE(f.waited_out);
  EXPECT_GE(waited, std::chrono::milliseconds(20));
  writers[1] = 1;  // stuck writer: the flip gives up at the deadline and says so
  SlotFlip g = flip_count_slot(&active, writers, std::chrono::milliseconds(10));
  EXPECT_EQ(g.drained_slot, 1u);
  EXPECT_FALSE(g.waited_out);
}

}  // namespace
}  // namespace tickprobe
