// The continuous collector behind `tickprobe agent`: follows targets (by
// pid, comm or exe, picking up new processes and restarts through exec/exit
// events), keeps CPU and off-CPU probes attached, drains them on an interval
// into cumulative per-target statistics, and records profiles on demand.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "core/recorder.h"
#include "core/session.h"
#include "model/agent_stats.h"
#include "model/profile.h"
#include "probes/offcpu.h"
#include "probes/profile.h"
#include "probes/targets.h"
#include "probes/alloc.h"
#include "probes/runtime.h"
#include "runtime/leak_tracker.h"
#include "model/hitch.h"
#include "targets/target_spec.h"

namespace tickprobe {

struct AgentOptions {
  TargetSpec targets;
  CpuProfileOptions cpu;
  OffCpuOptions offcpu;
  bool enable_offcpu = true;
  // Game runtime (USDT): coroutines, pauses, ticks and hitches. On by
  // default; targets without the described probes are simply not covered.
  bool enable_runtime = true;
  RuntimeOptions runtime;
  HitchOptions hitch;
  // Allocator tracing for leak-suspect gauges (costs a trap per malloc/free).
  bool enable_leaks = false;
  AllocOptions alloc;
  LeakJudgeOptions leak_judge;
  double leak_report_interval_s = 10;  // how often suspects are re-judged
  SessionOptions session;
  double drain_interval_s = 1.0;
  size_t max_exited_targets = 64;  // exited targets kept in stats
  double max_capture_seconds = 300;
};

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> create(const AgentOptions& opts);
  ~Agent();

  // Runs until stop is set: process events, periodic drains and refreshes.
  void run(const std::atomic<bool>& stop);
  // Records a profile of the next `seconds` (blocking; concurrent captures
  // are fine). Fails early when the kind is not enabled.
  Result<Profile> capture(ProfileKind kind, double seconds, const std::atomic<bool>& stop);
  AgentStats stats() const;

 private:
  explicit Agent(const AgentOptions& o) : opts_(o), hitches_(o.hitch) {}
  void on_process_event(const ProcessEvent& ev);
  void drain_once();
  void attach_runtime(uint32_t pid);
  void detach_runtime(uint32_t pid);
  void refresh_leak_reports();
  RuntimeTargetStats runtime_stats(uint32_t pid, const RuntimeSnapshot* snap) const;

  struct Subscription {
    ProfileKind kind;
    StackAggregate agg;
  };

  AgentOptions opts_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<CpuProfileProbe> cpu_;
  std::unique_ptr<OffCpuProbe> offcpu_;
  std::unique_ptr<TargetWatcher> watcher_;
  std::unique_ptr<RuntimeProbe> runtime_;
  std::unique_ptr<AllocProbe> alloc_;
  std::set<std::string> runtime_binaries_;  // attached for every process running them
  std::map<uint32_t, std::unique_ptr<LeakTracker>> leak_trackers_;
  std::map<uint32_t, LeakReport> leak_reports_;
  std::chrono::steady_clock::time_point last_leak_report_;
  HitchAnalyzer hitches_;
  std::chrono::steady_clock::time_point started_;

  std::mutex drain_mu_;  // one drain at a time: the probes' slot flip is not reentrant
  mutable std::mutex mu_;
  std::map<uint32_t, TargetStats> per_target_;
  std::vector<uint32_t> exited_order_;
  std::vector<Subscription*> subs_;
  uint64_t drains_ = 0;
};

}  // namespace tickprobe
