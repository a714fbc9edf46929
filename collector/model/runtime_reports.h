// Plain-data reports of the runtime investigations (coroutines, pauses and
// hitches, leaks): filled by collector/runtime/hunts.cpp and the agent,
// rendered by exporters/runtime_report.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/hitch.h"
#include "model/histogram.h"
#include "model/leak_detector.h"

namespace tickprobe {

struct CoroCounts {
  uint64_t created = 0, destroyed = 0, destroyed_untracked = 0, adopted = 0, untracked = 0;
  uint64_t resumes = 0, suspends = 0;
  // Coroutines alive now among those tickprobe knows (created or adopted
  // since attach and not destroyed).
  int64_t live() const {
    return static_cast<int64_t>(created + adopted) - static_cast<int64_t>(destroyed + untracked);
  }
};

struct PauseRecord {
  uint32_t tgid = 0, tid = 0;
  std::string kind;
  uint64_t start_ns = 0, duration_ns = 0, tick = 0, user_stack = 0;
  std::vector<std::pair<std::string, uint64_t>> args;  // begin arg, then end args, by name
};

struct StackView {
  uint64_t hash = 0;
  std::vector<std::string> frames;  // leaf first
};

struct CoroGroup {
  std::string name;
  StackView stack;
  uint64_t count = 0;
  double oldest_age_s = 0;
  double youngest_age_s = 0;
  bool adopted = false;  // created before tracing began: age is a lower bound
};

struct CoroReport {
  uint32_t pid = 0;
  std::string comm;
  std::string runtime;
  double duration_s = 0;
  // The watch, CLOCK_MONOTONIC: events count iff they happened inside it.
  uint64_t window_start_ns = 0, window_end_ns = 0;
  CoroCounts counts;
  int64_t live = 0;
  double create_rate = 0, destroy_rate = 0;  // per second over the run
  LatencyHistogram lifetime, run, suspended;
  struct NameRow {
    std::string name;
    uint64_t created = 0, destroyed = 0;
    int64_t live = 0;
  };
  std::vector<NameRow> by_name;
  double min_age_s = 0;
  uint64_t suspects = 0;           // live coroutines at least min_age_s old
  std::vector<CoroGroup> groups;   // suspects grouped by (name, creation stack), most first
  std::map<std::string, uint64_t> counters;
  std::vector<std::string> notes;
};

struct LatencySummary {
  LatencyHistogram hist;
  double p50_ns = 0, p90_ns = 0, p99_ns = 0;
};

struct PauseReport {
  uint32_t pid = 0;
  std::string comm;
  std::string runtime;
  double duration_s = 0;
  // The watch, CLOCK_MONOTONIC: events count iff they happened inside it.
  uint64_t window_start_ns = 0, window_end_ns = 0;
  std::map<std::string, LatencySummary> pauses;  // kind -> summary
  std::optional<LatencySummary> tick, frame;
  uint64_t budget_ns = 0;
  bool budget_inferred = false;
  uint64_t frames = 0, hitches = 0;
  std::map<std::string, uint64_t> hitches_by_cause;
  std::vector<Hitch> worst_hitches;
  struct PauseRow {
    PauseRecord pause;
    StackView stack;
  };
  std::vector<PauseRow> worst_pauses;
  std::map<std::string, uint64_t> counters;
  std::vector<std::string> notes;
};

struct LeakStack {
  uint32_t kind = 0;  // 0 heap, 1 mmap
  StackView stack;
  std::string site;   // first frame outside the allocator
  double bytes = 0;   // outstanding now (estimated when sampling)
  double count = 0;
  uint64_t allocs = 0, frees = 0;  // tracked, since attach
  double oldest_age_s = 0;
  LeakVerdict verdict;
  bool growing = false;  // grows, but recycles most of its allocations
};

// One object the leak hunt's uprobes sit in, with the entry points probed there.
struct LeakAttachedObject {
  std::string object;                  // "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
  std::string reason;                  // its place in the lookup order ("DT_NEEDED of /srv/server")
  std::vector<std::string> functions;  // "malloc", "free", "sdallocx", ...
};

struct LeakReport {
  uint32_t pid = 0;
  std::string comm;
  double duration_s = 0, interval_s = 0;
  // The watch, CLOCK_MONOTONIC: events count iff they happened inside it.
  uint64_t window_start_ns = 0, window_end_ns = 0;
  uint64_t sample_bytes = 0;
  size_t intervals = 0;
  std::vector<std::string> attached;
  std::vector<LeakAttachedObject> attached_objects;
  std::string allocator_object;  // where malloc resolved
  // Non-empty: the hunt saw too little to judge (no allocator call at all);
  // the report then gives no verdict instead of "no leak".
  std::string warning;
  double outstanding_bytes = 0, outstanding_count = 0;
  std::vector<LeakStack> leaks;    // leaking stacks, fastest growth first
  std::vector<LeakStack> growing;  // growing, but freeing most of what they allocate
  std::vector<LeakStack> largest;  // largest outstanding stacks that are not leaking
  std::map<std::string, uint64_t> counters;
  std::optional<CoroReport> coroutines;
  std::vector<std::string> notes;
};

}  // namespace tickprobe
