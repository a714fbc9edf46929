// Entities and their mark-and-sweep collector.
//
// Entities reference each other with raw pointers (a projectile its owner and
// its hit effect, an effect its source projectile and target, an NPC its
// target), so cycles are normal. Nothing is freed when it leaves the world:
// it becomes garbage and the collector reclaims it when no root reaches it.
// Roots are given by the caller at collect() time (the world's live set and
// every session's player). Not thread-safe: the tick thread owns the heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace tickgame {

enum class EntityKind : std::uint8_t { kPlayer = 1, kNpc = 2, kProjectile = 3, kEffect = 4, kDebris = 5 };

struct Entity {
  std::uint32_t id = 0;
  EntityKind kind = EntityKind::kNpc;
  bool in_world = false;   // part of the simulated world (a GC root while true)
  bool marked = false;     // GC mark bit, always false outside collect()
  bool changed = false;    // moved or hp changed this tick (delta encoding)
  float x = 0, y = 0, vx = 0, vy = 0;
  std::int16_t hp = 0;
  std::uint32_t ttl_ticks = 0;  // projectiles/effects: ticks left in the world
  std::vector<Entity*> refs;    // outgoing references traced by the GC (bounded by kMaxRefs)
  static constexpr std::size_t kMaxRefs = 8;
  void add_ref(Entity* e) { if (e && refs.size() < kMaxRefs) refs.push_back(e); }
};

class EntityHeap {
 public:
  struct CollectResult { std::size_t marked = 0; std::size_t freed = 0; };
  using RootVisitor = std::function<void(const std::function<void(Entity*)>&)>;

  EntityHeap() = default;
  ~EntityHeap();
  EntityHeap(const EntityHeap&) = delete;
  EntityHeap& operator=(const EntityHeap&) = delete;

  Entity* create(EntityKind kind);
  // Marks everything reachable from the roots the visitor reports, then frees
  // every unmarked entity. Pointers to freed entities must not be held by
  // anything reachable — which the mark phase guarantees.
  CollectResult collect(const RootVisitor& roots);

  std::size_t size() const { return all_.size(); }
  std::uint64_t allocated_since_collect() const { return allocated_since_collect_; }
  std::uint64_t total_allocated() const { return total_allocated_; }
  std::uint64_t total_freed() const { return total_freed_; }

 private:
  std::vector<Entity*> all_;
  std::vector<Entity*> mark_stack_;
  std::uint32_t next_id_ = 1;
  std::uint64_t allocated_since_collect_ = 0;
  std::uint64_t total_allocated_ = 0;
  std::uint64_t total_freed_ = 0;
};

}  // namespace tickgame
