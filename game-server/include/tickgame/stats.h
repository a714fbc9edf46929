// Counters of the reference server and their JSON form (GET /stats).
//
// The tick thread owns a ServerCounters and, once per tick (between ticks,
// in the "stats" task), copies it into the StatsBoard under a mutex. The
// admin thread only ever reads the published copy, so one /stats answer is
// always a consistent cut taken at a tick boundary.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "tickgame/protocol.h"

namespace tickgame {

enum class CloseReason : std::uint8_t {
  kEof = 0, kReadError, kWriteError, kFrameError, kSlowReader, kTlsHandshakeFailed, kLoginTimeout, kShutdown, kCount
};
const char* close_reason_name(CloseReason r);

inline constexpr std::size_t kTickWindow = 2048;  // ticks kept for p50/p99

struct ServerCounters {
  // config echoed in /stats
  std::uint32_t tick_hz = 0;
  std::uint64_t budget_ns = 0;
  std::uint64_t start_mono_ns = 0;
  std::uint64_t published_mono_ns = 0;
  // ticks
  std::uint64_t ticks = 0;
  std::uint64_t ticks_over_budget = 0;
  std::uint64_t ticks_skipped = 0;  // tick slots dropped after an overrun longer than one period
  std::uint64_t tick_last_ns = 0;
  std::uint64_t tick_max_ns = 0;
  std::uint64_t tick_total_ns = 0;
  std::array<std::uint64_t, kTickWindow> tick_window{};  // ring of recent durations
  // coroutines
  std::uint64_t coro_live = 0, coro_created = 0, coro_destroyed = 0, coro_failed = 0, coro_leaked = 0;
  // gc
  std::uint64_t gc_cycles = 0, gc_total_pause_ns = 0, gc_max_pause_ns = 0, gc_last_pause_ns = 0;
  std::uint64_t gc_last_marked = 0, gc_last_freed = 0, gc_freed_total = 0, gc_heap_entities = 0;
  // arena
  std::uint64_t arena_resets = 0, arena_total_reset_ns = 0, arena_max_reset_ns = 0;
  std::uint64_t arena_bytes_last = 0, arena_bytes_max = 0, arena_bytes_reserved = 0, arena_chunks = 0, arena_chunk_mallocs = 0;
  // injected leaks
  std::uint64_t leak_bytes = 0, leak_allocations = 0;
  // sessions
  std::uint64_t sessions_live = 0, sessions_total = 0, sessions_rejected = 0, slow_readers = 0, accept_backoffs = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(CloseReason::kCount)> close_reasons{};
  // tls
  std::uint64_t tls_completed = 0, tls_failed = 0;
  // network
  std::uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0, frames_dropped = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(FrameError::kCount)> frame_errors{};
  std::uint64_t blocking_writes = 0, blocking_write_ns = 0;
  // world
  std::uint64_t world_players = 0, world_npcs = 0, world_projectiles = 0, world_effects = 0;
  std::uint64_t damage_events = 0, kills = 0;
};

struct FaultSettings;

// Builds the /stats document from a published snapshot plus live fault settings.
nlohmann::json stats_to_json(const ServerCounters& c, const FaultSettings& faults);
nlohmann::json faults_to_json(const FaultSettings& faults);

// Exact percentile (nearest rank) of the last min(ticks, kTickWindow) ticks.
std::uint64_t tick_percentile(const ServerCounters& c, double q);

class StatsBoard {
 public:
  void publish(const ServerCounters& c) { std::lock_guard lk(mu_); snap_ = c; }
  ServerCounters read() const { std::lock_guard lk(mu_); return snap_; }
 private:
  mutable std::mutex mu_;
  ServerCounters snap_;
};

}  // namespace tickgame
