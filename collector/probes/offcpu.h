// Off-CPU family (bpf/offcpu.bpf.c): time target threads spend switched out,
// per thread, stack (user + kernel) and thread state, from sched_switch.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "core/family.h"
#include "core/result.h"
#include "core/stack_family.h"
#include "model/stack_aggregate.h"

struct offcpu_bpf;
struct offcpu_thread_dump;

namespace tickprobe {

class Session;

struct OffCpuOptions {
  uint64_t min_block_us = 1;
  uint64_t max_block_us = 0;  // 0 = no limit
  bool include_runnable = true;       // preempted time ("R")
  bool include_sleeping = true;       // "S"
  bool include_uninterruptible = true;// "D"
  bool kernel_stacks = true;
  uint32_t max_counts = 16384;
  uint32_t max_threads = 16384;
};

// Single-letter state names used as the "state" label: R, S, D, other.
const char* offcpu_state_name(uint32_t state);

class OffCpuProbe : public Family {
 public:
  static Result<std::unique_ptr<OffCpuProbe>> create(Session& session, const OffCpuOptions& opts);
  ~OffCpuProbe();
  OffCpuProbe(const OffCpuProbe&) = delete;
  OffCpuProbe& operator=(const OffCpuProbe&) = delete;

  const char* name() const override { return "offcpu"; }

  void release_links() override;
  // Moves what was recorded since the last drain to every subscriber
  // (values: off-CPU nanoseconds, number of blocks; label: state) and into
  // the per-process totals.
  void drain() override;
  void subscribe(StackAggregate* agg) { subs_.subscribe(agg); }
  void unsubscribe(StackAggregate* agg) { subs_.unsubscribe(agg); }
  Status attach(uint32_t pid) override;
  void detach(uint32_t pid) override;
  void metrics(MetricsSnapshot& out) const override;
  ProfileShape shape() const;
  Counters counters() const override;

  // For a one-shot recording: threads of `pid` that are blocked (S/D) right
  // now would not show until they wake, or never when they sleep through
  // the window. Their saved user registers and kernel stack come from a
  // task iterator (dump_threads), the user stack from the user-space replay
  // of the unwinder (unwind/user_unwind.h); each gets a start record as if
  // it had switched out now. Returns how many threads were seeded.
  Result<size_t> seed_blocked_threads(uint32_t pid);
  // At the end of a one-shot recording: threads still switched out (their
  // start records are pending) are accounted with now - start, like a
  // switch-in now would, and handed to the subscribers. Call once, after
  // the last drain(); the records stay (an agent must not call this).
  void account_still_blocked();

 private:
  // Every thread of `pid` from the dump_threads task iterator.
  Result<std::vector<offcpu_thread_dump>> dump_threads(uint32_t pid);
  OffCpuProbe(Session& s, const OffCpuOptions& o);
  Session& session_;
  OffCpuOptions opts_;
  SkeletonPtr<offcpu_bpf> skel_;
  uint64_t blocks_ = 0;
  uint64_t seeded_threads_ = 0;   // threads blocked when the recording started
  uint64_t still_blocked_ = 0;    // threads still blocked when it ended
  uint64_t drain_wait_timeouts_ = 0;
  StackSubscribers subs_;
  mutable std::mutex totals_mu_;
  TargetTotals<std::map<std::string, double>> seconds_by_state_;
};

// Registry entry (settings: min_block_us, kernel_stacks, max_counts).
FamilySpec offcpu_family_spec();

}  // namespace tickprobe
