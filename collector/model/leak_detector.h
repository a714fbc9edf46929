// Leak detection by growth. Outstanding bytes per allocation stack are
// sampled every interval; a stack is a leak suspect when they grow steadily:
// a good linear fit with a positive slope, growth in most intervals and few
// drops, and growth that continues into the second half of the window. A
// pool or arena that stays flat, and a cache that grew once and then
// stopped, are not leaks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tickprobe {

struct LeakPoint {
  double t_s = 0;      // seconds since the hunt began
  double bytes = 0;    // outstanding bytes (estimated, when sampling)
  double count = 0;    // outstanding allocations
};

struct LeakCriteria {
  size_t min_points = 4;            // intervals needed before judging
  double min_r2 = 0.8;              // linear fit quality of bytes over time
  double min_up_fraction = 0.6;     // intervals in which bytes grew
  double max_down_fraction = 0.25;  // intervals in which bytes shrank
  double min_tail_share = 0.3;      // second-half growth / (slope * second-half time)
  double min_growth_bytes = 1;      // net growth over the window
};

struct LeakVerdict {
  bool leaking = false;
  double growth_bytes_per_s = 0;  // least-squares slope
  double r2 = 0;
  double up_fraction = 0;
  double down_fraction = 0;
  double net_growth_bytes = 0;
  std::string why;  // why it is (or is not) a leak
};

LeakVerdict judge_growth(const std::vector<LeakPoint>& points, const LeakCriteria& c = {});

// Bounded time series per key: when full, every other point is dropped so
// the series keeps covering the whole hunt at half the resolution.
template <typename Key>
class LeakSeries {
 public:
  explicit LeakSeries(size_t max_points = 256) : max_points_(max_points) {}
  void add(const Key& k, const LeakPoint& p) {
    auto& v = series_[k];
    v.push_back(p);
    if (v.size() > max_points_) {
      std::vector<LeakPoint> half;
      for (size_t i = 0; i < v.size(); i += 2) half.push_back(v[i]);
      if (half.back().t_s != v.back().t_s) half.push_back(v.back());
      v.swap(half);
    }
  }
  const std::map<Key, std::vector<LeakPoint>>& all() const { return series_; }
  void erase(const Key& k) { series_.erase(k); }
  size_t size() const { return series_.size(); }

 private:
  size_t max_points_;
  std::map<Key, std::vector<LeakPoint>> series_;
};

}  // namespace tickprobe
