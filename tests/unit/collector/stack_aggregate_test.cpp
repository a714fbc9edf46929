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

TEST(StackAggregate, DrainFormAddsAndBoundsLikeTheVectorForm) {
  StackAggregate agg(2, /*max_keys=*/2);
  agg.add(StackAggKey{1, 1, 100, 0, "main", "S"}, {1, 10});
  agg.add(StackAggKey{1, 1, 100, 0, "main", "S"}, {2, 20});
  agg.add(StackAggKey{1, 1, 100, 0, "main", "D"}, {4, 40});  // another label: another key
  agg.add(StackAggKey{1, 2, 100, 0, "w", "S"}, {8, 80});     // over the cap
  EXPECT_EQ(agg.entries().size(), 2u);
  EXPECT_EQ(agg.entries().at(StackAggKey{1, 1, 100, 0, "main", "S"}), (std::vector<int64_t>{3, 30}));
  EXPECT_EQ(agg.dropped(), 1u);
}

TEST(StackAggregate, SortedEntriesAreInKeyOrder) {
  StackAggregate agg(1);
  for (uint32_t tid : {9u, 3u, 7u, 1u, 5u})
    for (uint64_t stack : {30u, 10u, 20u}) agg.add(StackAggKey{1, tid, stack, 0, "t", ""}, {1});
  auto sorted = agg.sorted_entries();
  ASSERT_EQ(sorted.size(), 15u);
  for (size_t i = 1; i < sorted.size(); ++i) EXPECT_TRUE(sorted[i - 1]->first < sorted[i]->first) << i;
  EXPECT_EQ(sorted.front()->first.tid, 1u);
  EXPECT_EQ(sorted.front()->first.user_stack, 10u);
}

}  // namespace
}  // namespace tickprobe
