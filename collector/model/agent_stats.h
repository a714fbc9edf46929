// What the agent knows at a moment: cumulative per-target CPU and off-CPU
// time, and tickprobe's own counters. Plain data, handed to exporters
// (exporters/agent_metrics.h turns it into Prometheus families).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <optional>
#include <vector>

#include "model/counters.h"
#include "model/metrics.h"
#include "model/runtime_reports.h"

namespace tickprobe {

// Game-runtime view of one target (runtime and alloc families).
struct RuntimeTargetStats {
  CoroCounts coroutines;
  bool has_coroutines = false;
  // Series: tick, frame, coro_lifetime, coro_run, coro_suspended, pause:<kind>.
  std::map<std::string, LatencyHistogram> histograms;
  uint64_t budget_ns = 0;
  uint64_t frames = 0;
  uint64_t hitches = 0;
  std::map<std::string, uint64_t> hitches_by_cause;
  bool leaks_enabled = false;
  double heap_outstanding_bytes = 0;  // tracked since attach (estimated when sampling)
  std::vector<LeakStack> leak_suspects;
};

struct TargetStats {
  uint32_t pid = 0;
  std::string comm;
  bool alive = true;
  std::optional<RuntimeTargetStats> runtime;     // when the runtime or alloc families traced it
};

struct AgentStats {
  double uptime_seconds = 0;
  std::vector<TargetStats> targets;  // alive ones, plus recently exited
  uint64_t targets_attached = 0;
  uint64_t targets_added = 0;
  uint64_t targets_removed = 0;
  uint64_t target_errors = 0;
  uint64_t drains = 0;
  // Self-accounting per family (counters.def rows), e.g. "profile".
  std::map<std::string, Counters> family_counters;
  // What the families contribute to /metrics themselves.
  MetricsSnapshot family_metrics;
  std::map<std::string, uint64_t> symbolizer;  // cache hits, misses, evictions ...
  std::map<std::string, uint64_t> unwind;      // rows used/capacity/dropped ...
  std::map<std::string, uint64_t> stacks;      // lookups, missing, pruned ...
  uint64_t bpf_map_bytes = 0;                  // memory of tickprobe's BPF maps
  uint64_t self_rss_bytes = 0;                 // the agent's own resident memory
  double self_cpu_seconds = 0;                 // the agent's own CPU time (user + system)
  // Retention of exited processes (the cardinality bound, docs/metrics.md).
  double forget_exited_after_s = 0;
  uint64_t max_targets = 0;          // live processes traced at most
  uint64_t max_exited_targets = 0;   // exited processes kept at most
  uint64_t exited_targets = 0;       // exited processes still shown
  uint64_t forgotten_targets = 0;    // exited processes whose series were dropped
  // All processes ever traced, forgotten ones included (monotonic).
  uint64_t all_ticks = 0;
  std::map<std::string, uint64_t> all_hitches_by_cause;
  // Attach failures: (family, reason) -> count; reasons are short slugs.
  std::map<std::pair<std::string, std::string>, uint64_t> attach_failures;
  // Families that failed to attach to a process that is still traced.
  std::vector<std::string> degraded;
  // The logger's rate limit (core/log.h).
  uint64_t log_lines_printed = 0;
  uint64_t log_messages_suppressed = 0;
};

}  // namespace tickprobe
