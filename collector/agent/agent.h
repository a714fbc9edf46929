// The continuous collector behind `tickprobe agent`: follows targets (by
// pid, comm or exe, picking up new processes and restarts through exec/exit
// events), keeps every enabled probe family attached (the registry,
// core/family.h), drains them on an interval, and records profiles on
// demand.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/family.h"
#include "core/recorder.h"
#include "core/session.h"
#include "model/agent_stats.h"
#include "model/hitch.h"
#include "model/profile.h"
#include "probes/alloc.h"
#include "probes/growth.h"
#include "probes/offcpu.h"
#include "probes/profile.h"
#include "probes/runtime.h"
#include "probes/targets.h"
#include "runtime/leak_tracker.h"
#include "targets/target_spec.h"

namespace tickprobe {

struct AgentOptions {
  TargetSpec targets;
  // Families: the registry's defaults, plus `enable`, minus `disable`.
  std::set<std::string> enable;
  std::set<std::string> disable;
  // Per-family settings (`--family-opt NAME.KEY=VALUE`).
  std::map<std::string, std::map<std::string, std::string>> settings;
  HitchOptions hitch;
  LeakJudgeOptions leak_judge;
  double leak_report_interval_s = 10;  // how often leak suspects are re-judged (alloc family)
  SessionOptions session;
  double drain_interval_s = 1.0;
  // Exited targets: how long (and how many) their series stay on /metrics;
  // the families read the same setting from opts.session.retention.
  double max_capture_seconds = 300;
  double attach_retry_s = 10;  // how long a family's failed attach to a new process is retried
};

// The families an agent with these options runs, in registry order; a
// usage error names an unknown family or setting.
Result<std::vector<const FamilySpec*>> agent_families(const AgentOptions& opts);

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> create(const AgentOptions& opts);
  ~Agent();

  // Runs until stop is set: process events, periodic drains and refreshes.
  void run(const std::atomic<bool>& stop);
  // Records a profile of the next `seconds` (blocking; concurrent captures
  // are fine). Fails early when the kind is not enabled.
  Result<Profile> capture(ProfileKind kind, double seconds, const std::atomic<bool>& stop);
  // The allocation profile (runtime/alloc_profile.h) of every traced
  // process: cumulative since attach, or with seconds > 0 the change over
  // the next `seconds` (Go's delta profiles). `inuse_default` picks
  // inuse_space (/debug/pprof/heap) over alloc_space (/debug/pprof/allocs)
  // as the default sample type. Fails when the alloc family is off.
  Result<Profile> alloc_profile(bool inuse_default, double seconds, const std::atomic<bool>& stop);
  // The growth family's profile of the next `seconds` (page-fault, brk and
  // mmap bytes per stack). Fails when the growth family is off.
  Result<Profile> growth_profile(double seconds, const std::atomic<bool>& stop);
  AgentStats stats() const;
  // Names of the running families.
  std::vector<std::string> family_names() const;

 private:
  explicit Agent(const AgentOptions& o) : opts_(o), hitches_(o.hitch) {}
  void on_process_event(const ProcessEvent& ev);
  void drain_once();
  bool attach_family(uint32_t pid, Family& f, Error* error);
  void retry_pending_attaches();
  // Returns how many families attached; failures are logged (once per
  // target, family and reason) and counted.
  size_t attach_target(uint32_t pid);
  void record_attach_failure(uint32_t pid, const std::string& family, const Error& err);
  void forget_exited(std::chrono::steady_clock::time_point now);
  // A traced process went away (exit event, or found dead by a refresh).
  void handle_exit(uint32_t pid);
  bool known_alive(uint32_t pid) const;
  void reap_untraced();
  void detach_target(uint32_t pid);
  void refresh_leak_reports();
  RuntimeTargetStats runtime_stats(uint32_t pid, const RuntimeSnapshot* snap) const;

  AgentOptions opts_;
  std::unique_ptr<Session> session_;
  std::vector<std::unique_ptr<Family>> families_;
  std::unique_ptr<TargetWatcher> watcher_;
  // Features that span families use them by type (null when disabled).
  CpuProfileProbe* cpu_ = nullptr;
  OffCpuProbe* offcpu_ = nullptr;
  RuntimeProbe* runtime_ = nullptr;
  AllocProbe* alloc_ = nullptr;
  GrowthProbe* growth_ = nullptr;
  struct PendingAttach {
    Family* family;
    std::chrono::steady_clock::time_point first;
  };
  std::map<uint32_t, std::vector<PendingAttach>> pending_attach_;  // run-loop thread only
  std::map<uint32_t, std::unique_ptr<LeakTracker>> leak_trackers_;
  std::map<uint32_t, LeakReport> leak_reports_;
  std::chrono::steady_clock::time_point last_leak_report_;
  // Work that frees much heap (a capture's profile, a target's unwind
  // tables) bumps heap_churn_; the run loop then hands the freed pages back
  // to the kernel (malloc_trim), so RSS follows what is in use.
  std::atomic<uint64_t> heap_churn_{0};
  uint64_t heap_churn_trimmed_ = 0;
  std::chrono::steady_clock::time_point last_trim_;
  HitchAnalyzer hitches_;
  std::chrono::steady_clock::time_point started_;

  std::mutex drain_mu_;  // one drain at a time: the families' slot flips are not reentrant
  mutable std::mutex mu_;
  std::map<uint32_t, TargetStats> per_target_;
  std::deque<std::pair<uint32_t, std::chrono::steady_clock::time_point>> exited_order_;  // oldest first
  uint64_t forgotten_targets_ = 0;
  HitchAnalyzer::ProcessSummary forgotten_hitches_;  // folded summaries of forgotten processes
  std::map<std::pair<std::string, std::string>, uint64_t> attach_failures_;  // (family, reason)
  std::set<std::pair<uint32_t, std::string>> attach_failed_;  // (pid, family) with a failure, for /healthz
  uint64_t drains_ = 0;
};

}  // namespace tickprobe
