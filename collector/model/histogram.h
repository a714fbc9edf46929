// User-space view of the kernel's log-linear histograms (bpf/include/hist.h):
// bucket bounds, quantiles, deltas, and cumulative counts at arbitrary
// boundaries for Prometheus.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <linux/types.h>

#include "bpf/include/hist.h"

namespace tickprobe {

class LatencyHistogram {
 public:
  static constexpr uint32_t kSlots = TP_HIST_SLOTS;

  LatencyHistogram() { slots_.fill(0); }
  static LatencyHistogram from_bpf(const tp_hist& h);

  // The slot of a value (same function as the BPF side).
  static uint32_t slot_of(uint64_t v);
  // [lower, upper) of a slot.
  static uint64_t slot_lower(uint32_t slot);
  static uint64_t slot_upper(uint32_t slot);

  void add(uint64_t v);  // for tests and user-space-built histograms
  void merge(const LatencyHistogram& o);
  // this - earlier, for interval rates (max stays this one's).
  LatencyHistogram minus(const LatencyHistogram& earlier) const;

  uint64_t count() const { return count_; }
  uint64_t sum() const { return sum_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
  // Value at quantile q in [0,1], interpolated inside its bucket and capped
  // at max(); 0 when empty.
  double quantile(double q) const;
  // Observations with value < bound: exact when bound is a slot boundary,
  // otherwise the slot containing bound is counted in proportion.
  double count_below(double bound) const;
  const std::array<uint64_t, kSlots>& slots() const { return slots_; }

 private:
  uint64_t count_ = 0, sum_ = 0, max_ = 0;
  std::array<uint64_t, kSlots> slots_;
};

// Prometheus `le` boundaries (seconds) that are exact slot boundaries of the
// kernel histogram: powers of two of nanoseconds from 2^10 (~1 us) to 2^36
// (~69 s). Every one is an exact slot edge, so bucket counts are exact.
std::vector<double> latency_bucket_bounds_seconds();

}  // namespace tickprobe
