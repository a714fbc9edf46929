#include "model/leak_detector.h"

#include <cmath>
#include <cstdio>

namespace tickprobe {

LeakVerdict judge_growth(const std::vector<LeakPoint>& pts, const LeakCriteria& c) {
  LeakVerdict v;
  size_t n = pts.size();
  if (n < c.min_points) {
    v.why = "too few intervals (" + std::to_string(n) + " < " + std::to_string(c.min_points) + ")";
    return v;
  }
  double mt = 0, mb = 0;
  for (const auto& p : pts) {
    mt += p.t_s;
    mb += p.bytes;
  }
  mt /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double stt = 0, stb = 0, sbb = 0;
  for (const auto& p : pts) {
    stt += (p.t_s - mt) * (p.t_s - mt);
    stb += (p.t_s - mt) * (p.bytes - mb);
    sbb += (p.bytes - mb) * (p.bytes - mb);
  }
  v.growth_bytes_per_s = stt > 0 ? stb / stt : 0;
  v.r2 = (stt > 0 && sbb > 0) ? (stb * stb) / (stt * sbb) : 0;
  size_t up = 0, down = 0;
  for (size_t i = 1; i < n; i++) {
    if (pts[i].bytes > pts[i - 1].bytes) up++;
    if (pts[i].bytes < pts[i - 1].bytes) down++;
  }
  v.up_fraction = static_cast<double>(up) / static_cast<double>(n - 1);
  v.down_fraction = static_cast<double>(down) / static_cast<double>(n - 1);
  v.net_growth_bytes = pts.back().bytes - pts.front().bytes;
  char buf[160];
  if (v.growth_bytes_per_s <= 0 || v.net_growth_bytes < c.min_growth_bytes) {
    v.why = "not growing";
    return v;
  }
  if (v.r2 < c.min_r2) {
    std::snprintf(buf, sizeof(buf), "growth is not steady (r2 %.2f < %.2f)", v.r2, c.min_r2);
    v.why = buf;
    return v;
  }
  if (v.up_fraction < c.min_up_fraction) {
    std::snprintf(buf, sizeof(buf), "grew in only %.0f%% of intervals", v.up_fraction * 100);
    v.why = buf;
    return v;
  }
  if (v.down_fraction > c.max_down_fraction) {
    std::snprintf(buf, sizeof(buf), "shrank in %.0f%% of intervals", v.down_fraction * 100);
    v.why = buf;
    return v;
  }
  // Still growing in the second half: a cache that filled and stopped is not a leak.
  size_t mid = n / 2;
  double tail_growth = pts.back().bytes - pts[mid].bytes;
  double tail_expected = v.growth_bytes_per_s * (pts.back().t_s - pts[mid].t_s);
  if (tail_expected <= 0 || tail_growth < c.min_tail_share * tail_expected) {
    v.why = "growth stopped (a cache or pool warming up)";
    return v;
  }
  v.leaking = true;
  std::snprintf(buf, sizeof(buf), "grew in %.0f%% of intervals, r2 %.2f", v.up_fraction * 100, v.r2);
  v.why = buf;
  return v;
}

}  // namespace tickprobe
