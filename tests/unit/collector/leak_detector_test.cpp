// judge_growth: a steady climb is a leak; a flat pool with noise, a
// saw-tooth (buffers filled and released) and a cache that warmed up and then
// stopped are not.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/leak_detector.h"

namespace tickprobe {
namespace {

std::vector<LeakPoint> series(const std::vector<double>& bytes, double interval_s = 1.0) {
  std::vector<LeakPoint> pts;
  for (size_t i = 0; i < bytes.size(); i++)
    pts.push_back({static_cast<double>(i) * interval_s, bytes[i], bytes[i] / 100.0});
  return pts;
}

TEST(JudgeGrowth, LinearGrowthIsALeakWithItsSlope) {
  std::vector<double> b;
  for (int i = 0; i <= 10; i++) b.push_back(50000 + 65536.0 * i);
  LeakVerdict v = judge_growth(series(b));
  EXPECT_TRUE(v.leaking) << v.why;
  EXPECT_NEAR(v.growth_bytes_per_s, 65536.0, 1e-6);
  EXPECT_NEAR(v.r2, 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(v.up_fraction, 1.0);
  EXPECT_DOUBLE_EQ(v.down_fraction, 0.0);
  EXPECT_DOUBLE_EQ(v.net_growth_bytes, 655360.0);
  // Same growth sampled every 0.5 s: the slope is per second.
  std::vector<double> half;
  for (int i = 0; i <= 20; i++) half.push_back(32768.0 * i);
  v = judge_growth(series(half, 0.5));
  EXPECT_TRUE(v.leaking) << v.why;
  EXPECT_NEAR(v.growth_bytes_per_s, 65536.0, 1e-6);
}

TEST(JudgeGrowth, NoisyLinearGrowthIsStillALeak) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> noise(-2000, 2000);
  std::vector<double> b;
  for (int i = 0; i <= 12; i++) b.push_back(1e6 + 20000.0 * i + noise(rng));
  LeakVerdict v = judge_growth(series(b));
  EXPECT_TRUE(v.leaking) << v.why;
  EXPECT_NEAR(v.growth_bytes_per_s, 20000.0, 1000.0);
  EXPECT_GT(v.r2, 0.95);
}

TEST(JudgeGrowth, FlatWithNoiseIsNotALeak) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> noise(-5000, 5000);
  for (int trial = 0; trial < 50; trial++) {
    std::vector<double> b;
    for (int i = 0; i <= 12; i++) b.push_back(2e6 + noise(rng));
    LeakVerdict v = judge_growth(series(b));
    EXPECT_FALSE(v.leaking) << "trial " << trial << ": " << v.why;
  }
}

TEST(JudgeGrowth, SawToothIsNotALeak) {
  // A buffer filled for 4 intervals, released, filled again: grows most of
  // the time but always comes back down.
  std::vector<double> b;
  for (int i = 0; i <= 15; i++) b.push_back(100000 + 25000.0 * (i % 4));
  LeakVerdict v = judge_growth(series(b));
  EXPECT_FALSE(v.leaking) << v.why;
  // A saw-tooth on a slow upward drift is still not steady growth.
  b.clear();
  for (int i = 0; i <= 15; i++) b.push_back(100000 + 1000.0 * i + 50000.0 * (i % 4));
  v = judge_growth(series(b));
  EXPECT_FALSE(v.leaking) << v.why;
}

TEST(JudgeGrowth, CacheThatStoppedGrowingIsNotALeak) {
  // Fills 1 MB in five intervals, then only its bookkeeping creeps up by a
  // few bytes: linear enough (r2 > 0.8) and growing in every interval, but
  // the second half has almost none of the growth the slope predicts.
  std::vector<double> b = {0, 2e5, 4e5, 6e5, 8e5, 1e6, 1e6 + 10, 1e6 + 20, 1e6 + 30, 1e6 + 40};
  LeakVerdict v = judge_growth(series(b));
  EXPECT_FALSE(v.leaking) << v.why;
  EXPECT_GE(v.r2, LeakCriteria{}.min_r2);  // it got past the steadiness checks
  EXPECT_DOUBLE_EQ(v.up_fraction, 1.0);
  EXPECT_NE(v.why.find("stopped"), std::string::npos) << v.why;
}

TEST(JudgeGrowth, TooFewPointsOrShrinkingIsNotALeak) {
  LeakVerdict v = judge_growth(series({0, 1000, 2000}));
  EXPECT_FALSE(v.leaking);
  EXPECT_NE(v.why.find("too few"), std::string::npos) << v.why;
  v = judge_growth(series({9000, 8000, 7000, 6000, 5000, 4000}));
  EXPECT_FALSE(v.leaking);
  EXPECT_LT(v.growth_bytes_per_s, 0);
  EXPECT_EQ(v.why, "not growing");
  v = judge_growth({});
  EXPECT_FALSE(v.leaking);
}

TEST(JudgeGrowth, CriteriaAreHonoured) {
  // Grows in 3 of 6 intervals (steps): a 0.6 minimum up-fraction rejects it,
  // a 0.4 one accepts it.
  std::vector<double> b = {0, 0, 1000, 1000, 2000, 2000, 3000};
  LeakCriteria strict;
  EXPECT_FALSE(judge_growth(series(b), strict).leaking);
  LeakCriteria lax;
  lax.min_up_fraction = 0.4;
  lax.min_r2 = 0.5;
  EXPECT_TRUE(judge_growth(series(b), lax).leaking) << judge_growth(series(b), lax).why;
  LeakCriteria big;
  big.min_growth_bytes = 1e6;  // 3000 bytes of growth is below the floor
  std::vector<double> lin = {0, 500, 1000, 1500, 2000, 2500, 3000};
  EXPECT_TRUE(judge_growth(series(lin)).leaking);
  EXPECT_FALSE(judge_growth(series(lin), big).leaking);
}

TEST(LeakSeries, ThinsOutButKeepsTheWholeSpan) {
  LeakSeries<int> s(8);
  for (int i = 0; i <= 100; i++) s.add(1, {static_cast<double>(i), static_cast<double>(i), 0});
  const auto& pts = s.all().at(1);
  EXPECT_LE(pts.size(), 9u);  // bounded (max_points + the kept last point)
  EXPECT_EQ(pts.front().t_s, 0.0);
  EXPECT_EQ(pts.back().t_s, 100.0);
  for (size_t i = 1; i < pts.size(); i++) EXPECT_LT(pts[i - 1].t_s, pts[i].t_s);
  // Thinning a linear series keeps it linear.
  LeakVerdict v = judge_growth(pts);
  EXPECT_NEAR(v.growth_bytes_per_s, 1.0, 1e-9);
  s.erase(1);
  EXPECT_EQ(s.size(), 0u);
}

}  // namespace
}  // namespace tickprobe
