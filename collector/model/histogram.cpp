#include "model/histogram.h"

#include <algorithm>
#include <cmath>

namespace tickprobe {

LatencyHistogram LatencyHistogram::from_bpf(const tp_hist& h) {
  LatencyHistogram out;
  out.count_ = h.count;
  out.sum_ = h.sum;
  out.max_ = h.max;
  for (uint32_t i = 0; i < kSlots; i++) out.slots_[i] = h.slots[i];
  return out;
}

uint32_t LatencyHistogram::slot_of(uint64_t v) {
  if (v < 4) return static_cast<uint32_t>(v);
  uint32_t msb = 63 - static_cast<uint32_t>(__builtin_clzll(v));
  uint32_t idx = msb * 4 + static_cast<uint32_t>((v >> (msb - 2)) & 3) - 4;
  return std::min(idx, kSlots - 1);
}

uint64_t LatencyHistogram::slot_lower(uint32_t slot) {
  if (slot < 4) return slot;
  return static_cast<uint64_t>(4 + slot % 4) << (slot / 4 - 1);
}

uint64_t LatencyHistogram::slot_upper(uint32_t slot) {
  if (slot + 1 >= kSlots) return UINT64_MAX;
  return slot_lower(slot + 1);
}

void LatencyHistogram::add(uint64_t v) {
  count_++;
  sum_ += v;
  max_ = std::max(max_, v);
  slots_[slot_of(v)]++;
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  count_ += o.count_;
  sum_ += o.sum_;
  max_ = std::max(max_, o.max_);
  for (uint32_t i = 0; i < kSlots; i++) slots_[i] += o.slots_[i];
}

LatencyHistogram LatencyHistogram::minus(const LatencyHistogram& earlier) const {
  LatencyHistogram out;
  auto sub = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  out.count_ = sub(count_, earlier.count_);
  out.sum_ = sub(sum_, earlier.sum_);
  out.max_ = max_;
  for (uint32_t i = 0; i < kSlots; i++) out.slots_[i] = sub(slots_[i], earlier.slots_[i]);
  return out;
}

double LatencyHistogram::quantile(double q) const {
  uint64_t total = 0;
  for (uint64_t c : slots_) total += c;
  if (total == 0) return 0;
  double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double seen = 0;
  for (uint32_t i = 0; i < kSlots; i++) {
    if (slots_[i] == 0) continue;
    double next = seen + static_cast<double>(slots_[i]);
    if (next >= rank) {
      double lo = static_cast<double>(slot_lower(i));
      double hi = i + 1 < kSlots ? static_cast<double>(slot_upper(i)) : lo * 1.25;
      double frac = (rank - seen) / static_cast<double>(slots_[i]);
      double v = lo + (hi - lo) * frac;
      return max_ ? std::min(v, static_cast<double>(max_)) : v;
    }
    seen = next;
  }
  return static_cast<double>(max_);
}

double LatencyHistogram::count_below(double bound) const {
  double n = 0;
  for (uint32_t i = 0; i < kSlots; i++) {
    double lo = static_cast<double>(slot_lower(i));
    double hi = i + 1 < kSlots ? static_cast<double>(slot_upper(i)) : INFINITY;
    if (hi <= bound) {
      n += static_cast<double>(slots_[i]);
    } else if (lo < bound) {
      n += static_cast<double>(slots_[i]) * (bound - lo) / (hi - lo);
    } else {
      break;
    }
  }
  return n;
}

std::vector<double> latency_bucket_bounds_seconds() {
  std::vector<double> out;
  for (int e = 10; e <= 36; e++) out.push_back(std::ldexp(1.0, e) / 1e9);
  return out;
}

}  // namespace tickprobe
