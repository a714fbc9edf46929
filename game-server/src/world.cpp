#include "tickgame/world.h"

#include <algorithm>
#include <cmath>

namespace tickgame {

namespace {
constexpr std::int16_t kPlayerHp = 100;
constexpr std::int16_t kNpcHp = 60;
constexpr std::uint32_t kProjectileTtl = 20;
constexpr std::uint32_t kEffectTtl = 10;
constexpr float kProjectileSpeed = 12.0f;
constexpr float kHitRadius = 8.0f;
constexpr float kPlayerSpeed = 3.0f;
}  // namespace

World::World(EntityHeap& heap, WorldConfig cfg) : heap_(heap), cfg_(cfg), rng_(cfg.seed) {
  cell_size_ = std::max(cfg_.aoi_radius, 50.0f);
  grid_dim_ = std::max(1, static_cast<int>(std::ceil(cfg_.size / cell_size_)));
  grid_.resize(static_cast<std::size_t>(grid_dim_) * grid_dim_);
  npcs_.resize(static_cast<std::size_t>(std::max(0, cfg_.npcs)), nullptr);
  for (auto& slot : npcs_) slot = spawn_npc();
  rebuild_grid();
}

int World::cell_of(float v) const {
  int c = static_cast<int>(v / cell_size_);
  return std::clamp(c, 0, grid_dim_ - 1);
}

Entity* World::spawn_npc() {
  std::uniform_real_distribution<float> pos(0.0f, cfg_.size);
  Entity* e = heap_.create(EntityKind::kNpc);
  e->x = pos(rng_);
  e->y = pos(rng_);
  e->hp = kNpcHp;
  e->in_world = true;
  e->changed = true;
  live_.push_back(e);
  return e;
}

Entity* World::spawn_player() {
  std::uniform_real_distribution<float> pos(0.0f, cfg_.size);
  Entity* e = heap_.create(EntityKind::kPlayer);
  e->x = pos(rng_);
  e->y = pos(rng_);
  e->hp = kPlayerHp;
  e->in_world = true;
  e->changed = true;
  live_.push_back(e);
  players_.push_back(e);
  return e;
}

void World::remove(Entity* e) {
  if (!e) return;
  e->in_world = false;  // compacted out of live_ by the next step()
}

void World::apply_input(Entity* p, const Input& in) {
  if (!p || !p->in_world) return;
  p->vx = std::clamp<float>(in.dx, -1, 1) * kPlayerSpeed;
  p->vy = std::clamp<float>(in.dy, -1, 1) * kPlayerSpeed;
  if (in.skill != 0) {
    float dx = p->vx, dy = p->vy;
    if (dx == 0 && dy == 0) dx = 1;
    spawn_projectile(p, dx, dy);
  }
}

void World::spawn_projectile(Entity* owner, float dirx, float diry) {
  float len = std::sqrt(dirx * dirx + diry * diry);
  if (len <= 0) return;
  Entity* pr = heap_.create(EntityKind::kProjectile);
  pr->x = owner->x;
  pr->y = owner->y;
  pr->vx = dirx / len * kProjectileSpeed;
  pr->vy = diry / len * kProjectileSpeed;
  pr->ttl_ticks = kProjectileTtl;
  pr->hp = 1;
  pr->in_world = true;
  pr->changed = true;
  pr->add_ref(owner);
  live_.push_back(pr);
}

void World::npc_think(std::size_t group, std::size_t groups) {
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> pct(0, 99);
  for (std::size_t i = group; i < npcs_.size(); i += groups) {
    Entity* n = npcs_[i];
    if (!n || !n->in_world) continue;
    Entity* target = n->refs.empty() ? nullptr : n->refs.front();
    if (target && (!target->in_world || std::abs(target->x - n->x) + std::abs(target->y - n->y) > 300)) {
      n->refs.clear();  // lost interest: the old target may now become garbage
      target = nullptr;
    }
    if (!target && !players_.empty() && pct(rng_) < 2) {
      Entity* p = players_[static_cast<std::size_t>(rng_() % players_.size())];
      if (p->in_world && std::abs(p->x - n->x) + std::abs(p->y - n->y) < 200) {
        n->add_ref(p);
        target = p;
      }
    }
    if (target) {
      float dx = target->x - n->x, dy = target->y - n->y;
      float d = std::sqrt(dx * dx + dy * dy) + 1e-3f;
      n->vx = dx / d * 1.5f;
      n->vy = dy / d * 1.5f;
      if (d < 120 && pct(rng_) < 3) spawn_projectile(n, dx, dy);
    } else if (pct(rng_) < 10) {
      n->vx = unit(rng_);
      n->vy = unit(rng_);
    }
  }
}

void World::rebuild_grid() {
  for (auto& c : grid_) c.clear();
  for (Entity* e : live_) {
    if (!e->in_world) continue;
    grid_[static_cast<std::size_t>(cell_of(e->y)) * grid_dim_ + cell_of(e->x)].push_back(e);
  }
}

void World::query(float x, float y, float radius, std::pmr::vector<Entity*>& out, std::size_t cap) const {
  int cx0 = cell_of(x - radius), cx1 = cell_of(x + radius);
  int cy0 = cell_of(y - radius), cy1 = cell_of(y + radius);
  float r2 = radius * radius;
  for (int cy = cy0; cy <= cy1; ++cy) {
    for (int cx = cx0; cx <= cx1; ++cx) {
      for (Entity* e : grid_[static_cast<std::size_t>(cy) * grid_dim_ + cx]) {
        if (!e->in_world) continue;
        float dx = e->x - x, dy = e->y - y;
        if (dx * dx + dy * dy > r2) continue;
        out.push_back(e);
        if (out.size() >= cap) return;
      }
    }
  }
}

void World::step(TickArena& arena) {
  for (Entity* e : live_) e->changed = false;
  // 1. movement
  for (Entity* e : live_) {
    if (!e->in_world || (e->vx == 0 && e->vy == 0)) continue;
    float nx = std::clamp(e->x + e->vx, 0.0f, cfg_.size - 0.01f);
    float ny = std::clamp(e->y + e->vy, 0.0f, cfg_.size - 0.01f);
    if (nx != e->x || ny != e->y) e->changed = true;
    e->x = nx;
    e->y = ny;
    if (e->kind == EntityKind::kProjectile && (nx <= 0 || ny <= 0 || nx >= cfg_.size - 0.01f || ny >= cfg_.size - 0.01f)) {
      e->ttl_ticks = 0;  // hit the map edge
    }
  }
  rebuild_grid();
  // 2. projectile hits -> damage events (transient: they live in the tick arena)
  std::pmr::vector<DamageEvent> damage(&arena);
  std::pmr::vector<Entity*> near(&arena);
  for (Entity* pr : live_) {
    if (!pr->in_world || pr->kind != EntityKind::kProjectile || pr->ttl_ticks == 0) continue;
    Entity* owner = pr->refs.empty() ? nullptr : pr->refs.front();
    near.clear();
    query(pr->x, pr->y, kHitRadius, near, 16);
    for (Entity* t : near) {
      if (t == owner || (t->kind != EntityKind::kPlayer && t->kind != EntityKind::kNpc)) continue;
      damage.push_back(DamageEvent{pr, t, 10});
      // The hit effect and the projectile reference each other: a cycle the
      // GC must collect once both have left the world.
      Entity* fx = heap_.create(EntityKind::kEffect);
      fx->x = t->x;
      fx->y = t->y;
      fx->ttl_ticks = kEffectTtl;
      fx->in_world = true;
      fx->changed = true;
      fx->add_ref(pr);
      fx->add_ref(t);
      pr->add_ref(fx);
      live_.push_back(fx);
      pr->ttl_ticks = 0;
      break;
    }
  }
  // 3. apply damage
  for (const DamageEvent& d : damage) {
    if (!d.target->in_world) continue;
    d.target->hp = static_cast<std::int16_t>(d.target->hp - d.amount);
    d.target->changed = true;
  }
  damage_events_total_ += damage.size();
  // 4. deaths, expiry, respawn
  for (std::size_t i = 0; i < npcs_.size(); ++i) {
    Entity* n = npcs_[i];
    if (n->in_world && n->hp <= 0) {
      n->in_world = false;
      ++kills_total_;
      npcs_[i] = spawn_npc();
    }
  }
  std::uniform_real_distribution<float> pos(0.0f, cfg_.size);
  for (Entity* p : players_) {
    if (p->in_world && p->hp <= 0) {
      p->hp = kPlayerHp;
      p->x = pos(rng_);
      p->y = pos(rng_);
      p->changed = true;
      ++kills_total_;
    }
  }
  for (Entity* e : live_) {
    if (!e->in_world) continue;
    if (e->kind == EntityKind::kProjectile || e->kind == EntityKind::kEffect) {
      if (e->ttl_ticks == 0 || --e->ttl_ticks == 0) e->in_world = false;
    }
  }
  std::erase_if(live_, [](Entity* e) { return !e->in_world; });
  std::erase_if(players_, [](Entity* e) { return !e->in_world; });
}

WorldCounts World::counts() const {
  WorldCounts c;
  for (Entity* e : live_) {
    switch (e->kind) {
      case EntityKind::kPlayer: ++c.players; break;
      case EntityKind::kNpc: ++c.npcs; break;
      case EntityKind::kProjectile: ++c.projectiles; break;
      case EntityKind::kEffect: ++c.effects; break;
      default: break;
    }
  }
  return c;
}

}  // namespace tickgame
