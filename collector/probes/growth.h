// Growth family (bpf/growth.bpf.c): memory growth per thread and user
// stack, from first-touch page faults (writes to not-present pages) and brk/mmap
// growth, filtered to targets in the kernel. Costs nothing per malloc: a
// program runs per page fault, brk and mmap of a target (measured in
// docs/overhead.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/family.h"
#include "core/result.h"
#include "core/stack_family.h"
#include "model/stack_aggregate.h"

struct growth_bpf;

namespace tickprobe {

class Session;

struct GrowthOptions {
  uint32_t fault_sample_every = 1;  // record one page fault in N (weighted by N); 1 = all
  bool faults = true;               // exceptions:page_fault_user
  bool syscalls = true;             // brk and anonymous mmap
  uint32_t max_counts = 16384;
};

// Values of the growth profile, in this order.
enum GrowthValue : size_t { kGrowthFaultSpace = 0, kGrowthFaults = 1, kGrowthBrkSpace = 2, kGrowthMmapSpace = 3 };

struct GrowthTotals {
  double fault_bytes = 0, faults = 0, brk_bytes = 0, mmap_bytes = 0;
};
// For TargetTotals (core/stack_family.h): forgotten processes fold into the
// all-process totals, which never decrease.
inline void accumulate_into(GrowthTotals& total, const GrowthTotals& v) {
  total.fault_bytes += v.fault_bytes;
  total.faults += v.faults;
  total.brk_bytes += v.brk_bytes;
  total.mmap_bytes += v.mmap_bytes;
}
inline void max_into(GrowthTotals& a, const GrowthTotals& b) {
  auto mx = [](double& x, double y) { x = x < y ? y : x; };
  mx(a.fault_bytes, b.fault_bytes);
  mx(a.faults, b.faults);
  mx(a.brk_bytes, b.brk_bytes);
  mx(a.mmap_bytes, b.mmap_bytes);
}

class GrowthProbe : public Family {
 public:
  static Result<std::unique_ptr<GrowthProbe>> create(Session& session, const GrowthOptions& opts);
  ~GrowthProbe();
  GrowthProbe(const GrowthProbe&) = delete;
  GrowthProbe& operator=(const GrowthProbe&) = delete;

  const char* name() const override { return "growth"; }

  void release_links() override;
  // Moves what the kernel counted since the last drain to every subscriber
  // (values: GrowthValue) and into the per-process totals.
  void drain() override;
  void subscribe(StackAggregate* agg) { subs_.subscribe(agg); }
  void unsubscribe(StackAggregate* agg) { subs_.unsubscribe(agg); }
  void detach(uint32_t pid) override;
  void metrics(MetricsSnapshot& out) const override;
  Counters counters() const override;
  // sample types page_fault_space/bytes (default), page_faults/count,
  // brk_space/bytes, mmap_space/bytes; user stacks only.
  ProfileShape shape() const;
  const GrowthOptions& options() const { return opts_; }

 private:
  GrowthProbe(Session& s, const GrowthOptions& o);
  Session& session_;
  GrowthOptions opts_;
  SkeletonPtr<growth_bpf> skel_;
  uint64_t drain_wait_timeouts_ = 0;
  StackSubscribers subs_;
  mutable std::mutex totals_mu_;
  TargetTotals<GrowthTotals> totals_;
};

// Registry entry (settings: fault_sample_every, faults, syscalls, max_counts).
FamilySpec growth_family_spec();

}  // namespace tickprobe
