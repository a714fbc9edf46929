// The simulated world: players, NPCs, projectiles and hit effects on a square
// map, with a uniform grid for area-of-interest (AOI) queries.
//
// A tick is: apply_input() for each player's latest input, npc_think() for
// each NPC group (run by the "npc_ai" coroutines), then step(), which moves
// everything, resolves projectile hits into damage events (allocated in the
// tick arena), applies them, and retires what died or expired. Retired
// entities only leave the world; the EntityHeap's GC frees them later.
#pragma once

#include <cstdint>
#include <memory_resource>
#include <random>
#include <vector>

#include "tickgame/arena.h"
#include "tickgame/entity_heap.h"
#include "tickgame/protocol.h"

namespace tickgame {

struct WorldConfig {
  float size = 1000.0f;       // map is [0,size) x [0,size)
  float aoi_radius = 150.0f;  // what a player sees
  int npcs = 1000;            // NPC population kept constant by respawning
  std::uint64_t seed = 1;
};

struct DamageEvent {
  Entity* source;
  Entity* target;
  std::int16_t amount;
};

struct WorldCounts { std::size_t players = 0, npcs = 0, projectiles = 0, effects = 0; };

class World {
 public:
  World(EntityHeap& heap, WorldConfig cfg);

  Entity* spawn_player();
  void remove(Entity* e);  // leaves the world; memory is the GC's business
  void apply_input(Entity* player, const Input& in);
  // NPC AI for NPCs whose index % groups == group.
  void npc_think(std::size_t group, std::size_t groups);
  void step(TickArena& arena);

  // Entities in the world within `radius` of (x, y), at most `cap`.
  void query(float x, float y, float radius, std::pmr::vector<Entity*>& out, std::size_t cap) const;

  // GC roots: every entity in the world.
  template <class F> void visit_roots(F&& f) const { for (Entity* e : live_) f(e); }

  const WorldConfig& config() const { return cfg_; }
  WorldCounts counts() const;
  std::size_t live_count() const { return live_.size(); }
  std::uint64_t damage_events_total() const { return damage_events_total_; }
  std::uint64_t kills_total() const { return kills_total_; }

 private:
  Entity* spawn_npc();
  void spawn_projectile(Entity* owner, float dirx, float diry);
  void rebuild_grid();
  int cell_of(float v) const;

  EntityHeap& heap_;
  WorldConfig cfg_;
  std::mt19937_64 rng_;
  std::vector<Entity*> live_;
  std::vector<Entity*> npcs_;       // the NPC slots (index = AI group key)
  std::vector<Entity*> players_;
  int grid_dim_;
  float cell_size_;
  std::vector<std::vector<Entity*>> grid_;
  std::uint64_t damage_events_total_ = 0;
  std::uint64_t kills_total_ = 0;
};

}  // namespace tickgame
