// CPU profile family (bpf/profile.bpf.c): perf_event sampling of target
// threads at a fixed frequency, counted in the kernel per thread and stack.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/bpf_link.h"
#include "core/family.h"
#include "core/stack_family.h"
#include "core/result.h"
#include "model/stack_aggregate.h"

struct profile_bpf;

namespace tickprobe {

class Session;

// The unwinder's per-CPU frame cache (bpf/lib/unwind.bpf.h, TP_FRAME_CACHE);
// kVerify recomputes every hit and counts differences (frame_cache_mismatches).
enum class FrameCacheMode : uint32_t { kOff = 0, kOn = 1, kVerify = 2 };

struct CpuProfileOptions {
  uint32_t frequency = 99;       // samples per second per CPU
  bool kernel_stacks = true;
  bool force_cpu_clock = false;  // skip the hardware cycles event
  uint32_t max_counts = 16384;   // distinct (thread, stack) slots per interval
  FrameCacheMode frame_cache = FrameCacheMode::kOn;  // env TICKPROBE_FRAME_CACHE=off|verify overrides
};

class CpuProfileProbe : public Family {
 public:
  static Result<std::unique_ptr<CpuProfileProbe>> create(Session& session, const CpuProfileOptions& opts);
  ~CpuProfileProbe();
  CpuProfileProbe(const CpuProfileProbe&) = delete;
  CpuProfileProbe& operator=(const CpuProfileProbe&) = delete;

  const char* name() const override { return "profile"; }
  // Moves the counts gathered since the last drain to every subscriber
  // (values: samples, CPU ns) and into the per-process CPU totals.
  void drain() override;
  void subscribe(StackAggregate* agg) { subs_.subscribe(agg); }
  void unsubscribe(StackAggregate* agg) { subs_.unsubscribe(agg); }
  Status attach(uint32_t pid) override;
  void detach(uint32_t pid) override;
  void release_links() override;
  void metrics(MetricsSnapshot& out) const override;
  // "cycles" or "cpu-clock".
  const std::string& event_name() const { return event_name_; }
  uint32_t frequency() const { return opts_.frequency; }
  Counters counters() const override;
  // Target samples the kernel side has taken so far (drained or not): a
  // bound on how full the count and stack maps can have become.
  uint64_t samples_taken() const;
  // One of the BPF self-accounting counters, summed over CPUs (one syscall).
  uint64_t bpf_counter(uint32_t id) const;
  // The profile's shape: samples and CPU nanoseconds (samples * period).
  ProfileShape shape() const;

 private:
  CpuProfileProbe(Session& s, const CpuProfileOptions& o);
  // Per-thread events: opens one on every thread of pid not covered yet
  // (rescanning until no thread is new: one created meanwhile by a thread
  // not yet covered would have inherited nothing).
  Status cover_threads(uint32_t pid);
  Session& session_;
  CpuProfileOptions opts_;
  SkeletonPtr<profile_bpf> skel_;
  // Where the sampling events are: one per CPU (default), where the
  // program also runs on every other process's ticks and filters them out,
  // or one per target thread, inherited by the threads they create (env
  // TICKPROBE_PROFILE_EVENTS=thread; see create() for its bias).
  bool per_thread_ = false;
  bool use_hw_ = true;
  std::vector<UniqueFd> perf_fds_;  // per-CPU mode
  std::vector<BpfLink> links_;      // per-CPU mode
  struct ThreadEvents {
    std::set<uint32_t> tids;
    std::vector<UniqueFd> fds;
    std::vector<BpfLink> links;
  };
  std::mutex events_mu_;
  std::map<uint32_t, ThreadEvents> thread_events_;  // per-thread mode, by target pid
  std::string event_name_;
  uint64_t samples_ = 0;
  uint64_t drain_wait_timeouts_ = 0;
  StackSubscribers subs_;
  mutable std::mutex totals_mu_;
  TargetTotals<double> cpu_seconds_;
};

// Registry entry (settings: frequency, kernel_stacks, max_counts).
FamilySpec profile_family_spec();

}  // namespace tickprobe
