// LatencyHistogram: the user-space view of the kernel's log-linear
// histograms (bpf/include/hist.h). Slot bounds must agree with slot_of for
// every value, quantiles must land within one bucket of the truth, and the
// Prometheus boundaries must give exact cumulative counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "model/histogram.h"

// The BPF side's slot function, compiled for user space: the two must agree
// (the kernel fills the slots, user space names their bounds).
#include <linux/types.h>
#include <sys/cdefs.h>  // __always_inline
#include "bpf/lib/hist.bpf.h"

namespace tickprobe {
namespace {

using H = LatencyHistogram;

// Values worth checking: everything small, every power of two and its
// neighbours, and a deterministic spread of random values of every magnitude.
std::vector<uint64_t> interesting_values() {
  std::vector<uint64_t> v;
  for (uint64_t i = 0; i < 4096; i++) v.push_back(i);
  for (int e = 0; e < 64; e++) {
    uint64_t p = uint64_t{1} << e;
    for (uint64_t x : {p - 1, p, p + 1, p + p / 4, p + p / 2, p + 3 * (p / 4)}) v.push_back(x);
  }
  v.push_back(UINT64_MAX);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; i++) {
    int bits = static_cast<int>(rng() % 64) + 1;
    v.push_back(rng() >> (64 - bits));
  }
  return v;
}

TEST(LatencyHistogram, SlotOfAgreesWithSlotBounds) {
  for (uint64_t v : interesting_values()) {
    uint32_t s = H::slot_of(v);
    ASSERT_LT(s, H::kSlots) << v;
    EXPECT_LE(H::slot_lower(s), v) << "value " << v << " slot " << s;
    if (s + 1 < H::kSlots) {
      EXPECT_LT(v, H::slot_upper(s)) << "value " << v << " slot " << s;
    } else {
      EXPECT_EQ(H::slot_upper(s), UINT64_MAX);  // the last slot is open-ended
    }
  }
}

TEST(LatencyHistogram, SlotOfIsTheBpfSlotFunction) {
  tp_hist raw{};
  H h;
  for (uint64_t v : interesting_values()) {
    ASSERT_EQ(tp_hist_slot(v), H::slot_of(v)) << v;
    tp_hist_add(&raw, v);
    h.add(v);
  }
  H from_kernel = H::from_bpf(raw);
  EXPECT_EQ(from_kernel.count(), h.count());
  EXPECT_EQ(from_kernel.sum(), h.sum());  // wraps identically on both sides
  EXPECT_EQ(from_kernel.max(), h.max());
  EXPECT_EQ(from_kernel.slots(), h.slots());
}

TEST(LatencyHistogram, SlotBoundsAreContiguousAndNarrow) {
  for (uint32_t s = 0; s < H::kSlots; s++) {
    EXPECT_EQ(H::slot_of(H::slot_lower(s)), s) << s;  // the lower bound is in its own slot
    if (s + 1 < H::kSlots) {
      EXPECT_EQ(H::slot_upper(s), H::slot_lower(s + 1)) << s;
      EXPECT_LT(H::slot_lower(s), H::slot_upper(s)) << s;
      EXPECT_EQ(H::slot_of(H::slot_upper(s) - 1), s) << s;  // the last value below upper too
      // four buckets per octave: at most 25% wide (hist.h)
      if (s >= 4) {
        EXPECT_LE((H::slot_upper(s) - H::slot_lower(s)) * 4, H::slot_lower(s)) << s;
      }
    }
  }
  // Powers of two start a bucket: they are the Prometheus boundaries.
  for (int e = 2; e < 44; e++) EXPECT_EQ(H::slot_lower(H::slot_of(uint64_t{1} << e)), uint64_t{1} << e) << e;
  // Monotonic.
  uint32_t prev = 0;
  std::vector<uint64_t> vals = interesting_values();
  std::sort(vals.begin(), vals.end());
  for (uint64_t v : vals) {
    EXPECT_GE(H::slot_of(v), prev) << v;
    prev = H::slot_of(v);
  }
}

TEST(LatencyHistogram, CountSumMaxAndMean) {
  H h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.5), 0.0);
  EXPECT_EQ(h.mean(), 0.0);
  for (uint64_t v : {10u, 20u, 30u, 1000u}) h.add(v);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.sum(), 1060u);
  EXPECT_EQ(h.max(), 1000u);
  EXPECT_DOUBLE_EQ(h.mean(), 265.0);
  EXPECT_LE(h.quantile(1.0), 1000.0);  // capped at max()
}

// Quantiles of a known distribution: within the width of the bucket holding
// the true value.
void expect_quantiles_near(std::vector<uint64_t> values) {
  H h;
  for (uint64_t v : values) h.add(v);
  std::sort(values.begin(), values.end());
  for (double q : {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999}) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    uint64_t truth = values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
    uint32_t s = H::slot_of(truth);
    double width = static_cast<double>(H::slot_upper(s) - H::slot_lower(s));
    EXPECT_NEAR(h.quantile(q), static_cast<double>(truth), width) << "q=" << q << " truth=" << truth;
  }
}

TEST(LatencyHistogram, QuantilesOfAUniformDistributionWithinOneBucket) {
  std::vector<uint64_t> v;
  for (uint64_t i = 1; i <= 10000; i++) v.push_back(i * 1000);  // 1 us .. 10 ms
  expect_quantiles_near(v);
}

TEST(LatencyHistogram, QuantilesOfALogNormalDistributionWithinOneBucket) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(std::log(2e6), 1.0);  // median 2 ms, long tail
  std::vector<uint64_t> v;
  for (int i = 0; i < 50000; i++) v.push_back(static_cast<uint64_t>(d(rng)));
  expect_quantiles_near(v);
}

TEST(LatencyHistogram, CountBelowIsExactAtPrometheusBounds) {
  std::vector<double> bounds = latency_bucket_bounds_seconds();
  ASSERT_EQ(bounds.size(), 27u);  // 2^10 .. 2^36 ns
  EXPECT_DOUBLE_EQ(bounds.front(), 1024e-9);
  EXPECT_DOUBLE_EQ(bounds.back(), std::ldexp(1.0, 36) / 1e9);
  // Values at, just below and just above every boundary, plus random ones.
  std::vector<uint64_t> values;
  for (int e = 9; e <= 37; e++) {
    uint64_t p = uint64_t{1} << e;
    values.insert(values.end(), {p - 1, p, p + 1, p + p / 3});
  }
  std::mt19937_64 rng(3);
  for (int i = 0; i < 5000; i++) values.push_back(rng() >> (64 - 38));
  H h;
  for (uint64_t v : values) h.add(v);
  for (double b : bounds) {
    // exactly what the Prometheus exporter asks (exporters/agent_metrics.cpp)
    double bound_ns = b * 1e9;
    double truth = static_cast<double>(
        std::count_if(values.begin(), values.end(), [&](uint64_t v) { return static_cast<double>(v) < bound_ns; }));
    EXPECT_EQ(h.count_below(bound_ns), truth) << "le=" << b;
  }
  // Between boundaries it interpolates: monotonic and between the neighbours.
  double below_lo = h.count_below(4096), below_hi = h.count_below(8192), mid = h.count_below(6000);
  EXPECT_LE(below_lo, mid);
  EXPECT_LE(mid, below_hi);
  EXPECT_EQ(h.count_below(0), 0.0);
  EXPECT_EQ(h.count_below(INFINITY), static_cast<double>(values.size()));
}

TEST(LatencyHistogram, MinusGivesTheInterval) {
  H early, late;
  for (uint64_t v : {100u, 2000u, 30000u}) {
    early.add(v);
    late.add(v);
  }
  for (uint64_t v : {2000u, 5000000u}) late.add(v);
  H d = late.minus(early);
  EXPECT_EQ(d.count(), 2u);
  EXPECT_EQ(d.sum(), 5002000u);
  EXPECT_EQ(d.max(), 5000000u);  // max stays the later one's
  EXPECT_EQ(d.slots()[H::slot_of(2000)], 1u);
  EXPECT_EQ(d.slots()[H::slot_of(5000000)], 1u);
  EXPECT_EQ(d.slots()[H::slot_of(100)], 0u);
  uint64_t total = 0;
  for (uint64_t c : d.slots()) total += c;
  EXPECT_EQ(total, 2u);
  // A reset counter (earlier > later) never goes negative.
  H z = early.minus(late);
  EXPECT_EQ(z.count(), 0u);
  for (uint64_t c : z.slots()) EXPECT_EQ(c, 0u);
}

TEST(LatencyHistogram, FromBpfAndMerge) {
  tp_hist raw{};
  raw.count = 3;
  raw.sum = 3000;
  raw.max = 1500;
  raw.slots[H::slot_of(500)] = 1;
  raw.slots[H::slot_of(1000)] = 1;
  raw.slots[H::slot_of(1500)] = 1;
  H a = H::from_bpf(raw);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.sum(), 3000u);
  EXPECT_EQ(a.max(), 1500u);
  H b;
  b.add(7000);
  a.merge(b);
  EXPECT_EQ(a.count(), 4u);
  EXPECT_EQ(a.max(), 7000u);
  EXPECT_EQ(a.slots()[H::slot_of(7000)], 1u);
}

}  // namespace
}  // namespace tickprobe
