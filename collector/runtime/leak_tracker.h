// Growth tracking of outstanding allocations per stack, shared by
// `tickprobe leaks` and the agent's --leaks: sample the alloc family's
// per-stack totals every interval, judge each stack's series, and build a
// symbolized LeakReport.
#pragma once

#include <cstdint>
#include <set>

#include "core/session.h"
#include "model/leak_detector.h"
#include "model/runtime_reports.h"
#include "probes/alloc.h"

namespace tickprobe {

struct LeakJudgeOptions {
  LeakCriteria criteria;
  // A leaking stack's oldest outstanding allocation must be at least this
  // share of the watch old (leaked memory is never freed).
  double min_oldest_fraction = 0.5;
  // A growing stack that frees more than this share of what it allocated
  // while watched is reported as growing, not leaking.
  double max_free_fraction = 0.5;
  // Growth smaller than this over the watch is listed as growing, not as a
  // leak: a few KiB of cells or buffers warming up is noise in a short hunt.
  double min_leak_bytes = 16384;
  size_t max_points = 256;  // per stack; older points are thinned out
};

class LeakTracker {
 public:
  LeakTracker(AllocProbe& probe, Session& session, uint32_t pid, LeakJudgeOptions o = {})
      : probe_(probe), session_(session), pid_(pid), opts_(o), series_(o.max_points) {}

  // Takes one sample at t seconds since the watch began; returns the
  // outstanding bytes (estimated when sampling).
  double sample(double t);
  double last_sample_s() const { return prev_t_; }
  size_t stacks() const { return series_.size(); }
  // Stacks whose series alone looks like a leak (cheap: no map walks).
  size_t suspects() const;
  // Full judgement (ages, replacement, recycling) and symbolized stacks.
  LeakReport report(double elapsed_s, size_t top);

 private:
  AllocProbe& probe_;
  Session& session_;
  uint32_t pid_;
  LeakJudgeOptions opts_;
  LeakSeries<AllocStackKey> series_;
  std::set<AllocStackKey> known_;
  size_t intervals_ = 0;
  double prev_t_ = 0;
};

// The first frame that is not the allocator itself (malloc, operator new, ...).
std::string allocation_site(const std::vector<std::string>& frames);
// Symbolized user stack of a process, leaf first.
StackView view_stack(Session& session, uint32_t pid, uint64_t hash);

}  // namespace tickprobe
