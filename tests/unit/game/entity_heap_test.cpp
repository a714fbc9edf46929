// Mark-and-sweep GC over entities.
#include <gtest/gtest.h>

#include <set>

#include "tickgame/entity_heap.h"

using namespace tickgame;

namespace {
EntityHeap::CollectResult collect_with_roots(EntityHeap& heap, const std::vector<Entity*>& roots) {
  return heap.collect([&](const std::function<void(Entity*)>& push) {
    for (Entity* e : roots) push(e);
  });
}
}  // namespace

TEST(EntityHeap, ReachableSurviveUnreachableFreed) {
  EntityHeap heap;
  Entity* root = heap.create(EntityKind::kPlayer);
  Entity* child = heap.create(EntityKind::kProjectile);
  Entity* grandchild = heap.create(EntityKind::kEffect);
  root->add_ref(child);
  child->add_ref(grandchild);
  heap.create(EntityKind::kNpc);
  heap.create(EntityKind::kDebris);
  auto r = collect_with_roots(heap, {root});
  EXPECT_EQ(r.marked, 3u);
  EXPECT_EQ(r.freed, 2u);
  EXPECT_EQ(heap.size(), 3u);
  // marks are cleared so the next cycle sees the same graph
  EXPECT_FALSE(root->marked);
  r = collect_with_roots(heap, {root});
  EXPECT_EQ(r.freed, 0u);
  EXPECT_EQ(r.marked, 3u);
}

TEST(EntityHeap, UnreachableCyclesAreCollected) {
  EntityHeap heap;
  Entity* a = heap.create(EntityKind::kProjectile);
  Entity* b = heap.create(EntityKind::kEffect);
  a->add_ref(b);
  b->add_ref(a);
  Entity* self = heap.create(EntityKind::kDebris);
  self->add_ref(self);
  auto r = collect_with_roots(heap, {});
  EXPECT_EQ(r.freed, 3u);
  EXPECT_EQ(heap.size(), 0u);
}

TEST(EntityHeap, CycleReachableFromRootSurvives) {
  EntityHeap heap;
  Entity* root = heap.create(EntityKind::kNpc);
  Entity* a = heap.create(EntityKind::kProjectile);
  Entity* b = heap.create(EntityKind::kEffect);
  root->add_ref(a);
  a->add_ref(b);
  b->add_ref(a);
  auto r = collect_with_roots(heap, {root});
  EXPECT_EQ(r.freed, 0u);
  EXPECT_EQ(r.marked, 3u);
  root->refs.clear();  // drop the edge: the cycle becomes garbage
  r = collect_with_roots(heap, {root});
  EXPECT_EQ(r.freed, 2u);
}

TEST(EntityHeap, LongChainsDoNotOverflowTheStack) {
  EntityHeap heap;
  Entity* head = heap.create(EntityKind::kDebris);
  Entity* prev = head;
  for (int i = 0; i < 500000; ++i) {
    Entity* e = heap.create(EntityKind::kDebris);
    prev->add_ref(e);
    prev = e;
  }
  auto r = collect_with_roots(heap, {head});
  EXPECT_EQ(r.marked, 500001u);
  EXPECT_EQ(r.freed, 0u);
  r = collect_with_roots(heap, {});
  EXPECT_EQ(r.freed, 500001u);
}

TEST(EntityHeap, IdsAreUniqueAndCountersTrack) {
  EntityHeap heap;
  std::set<std::uint32_t> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(heap.create(EntityKind::kNpc)->id);
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(ids.count(0), 0u);
  EXPECT_EQ(heap.allocated_since_collect(), 1000u);
  collect_with_roots(heap, {});
  EXPECT_EQ(heap.allocated_since_collect(), 0u);
  EXPECT_EQ(heap.total_freed(), 1000u);
}
