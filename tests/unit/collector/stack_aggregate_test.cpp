#include <gtest/gtest.h>

#include "model/stack_aggregate.h"

namespace tickprobe {
namespace {

TEST(StackAggregate, SumsPerKeyAndBoundsKeys) {
  StackAggregate agg(2, /*max_keys=*/2);
  StackAggKey a{1, 1, 100, 0, "main", ""};
  StackAggKey b{1, 2, 100, 0, "worker", ""};
  StackAggKey c{1, 3, 200, 0, "other", ""};
  agg.add(a, {1, 10});
  agg.add(a, {2, 20});
  agg.add(b, {5, 50});
  agg.add(c, {7, 70});  // over the cap: dropped and counted
  EXPECT_EQ(agg.entries().size(), 2u);
  EXPECT_EQ(agg.entries().at(a), (std::vector<int64_t>{3, 30}));
  EXPECT_EQ(agg.dropped(), 1u);
  EXPECT_EQ(agg.totals(), (std::vector<int64_t>{8, 80}));
  EXPECT_EQ(agg.totals_by_tgid(0).at(1), 8);
}

}  // namespace
}  // namespace tickprobe
