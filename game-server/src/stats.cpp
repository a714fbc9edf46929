#include "tickgame/stats.h"

#include <algorithm>
#include <vector>

#include "tickgame/clock.h"
#include "tickgame/faults.h"

namespace tickgame {

const char* close_reason_name(CloseReason r) {
  switch (r) {
    case CloseReason::kEof: return "eof";
    case CloseReason::kReadError: return "read_error";
    case CloseReason::kWriteError: return "write_error";
    case CloseReason::kFrameError: return "frame_error";
    case CloseReason::kSlowReader: return "slow_reader";
    case CloseReason::kTlsHandshakeFailed: return "tls_handshake_failed";
    case CloseReason::kLoginTimeout: return "login_timeout";
    case CloseReason::kShutdown: return "shutdown";
    case CloseReason::kCount: break;
  }
  return "unknown";
}

std::uint64_t tick_percentile(const ServerCounters& c, double q) {
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(c.ticks, kTickWindow));
  if (n == 0) return 0;
  std::vector<std::uint64_t> v(c.tick_window.begin(), c.tick_window.begin() + static_cast<std::ptrdiff_t>(n));
  std::size_t k = static_cast<std::size_t>(q * static_cast<double>(n));
  if (k >= n) k = n - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

nlohmann::json faults_to_json(const FaultSettings& f) {
  return {
      {"leak_bytes_per_tick", f.leak_bytes_per_tick.load()},
      {"coroutine_leak_per_sec", f.coroutine_leak_per_sec.load()},
      {"gc_garbage_per_tick", f.gc_garbage_per_tick.load()},
      {"blocking_writes", f.blocking_writes.load()},
      {"cpu_hog_us", f.cpu_hog_us.load()},
  };
}

nlohmann::json stats_to_json(const ServerCounters& c, const FaultSettings& faults) {
  using nlohmann::json;
  json frame_errors = json::object();
  std::uint64_t frame_errors_total = 0;
  for (std::size_t i = 1; i < c.frame_errors.size(); ++i) {
    frame_errors[frame_error_name(static_cast<FrameError>(i))] = c.frame_errors[i];
    frame_errors_total += c.frame_errors[i];
  }
  json closes = json::object();
  for (std::size_t i = 0; i < c.close_reasons.size(); ++i) closes[close_reason_name(static_cast<CloseReason>(i))] = c.close_reasons[i];
  std::uint64_t window = std::min<std::uint64_t>(c.ticks, kTickWindow);
  return {
      {"uptime_ns", c.published_mono_ns > c.start_mono_ns ? c.published_mono_ns - c.start_mono_ns : 0},
      {"tick",
       {{"count", c.ticks},
        {"hz", c.tick_hz},
        {"budget_ns", c.budget_ns},
        {"over_budget", c.ticks_over_budget},
        {"skipped", c.ticks_skipped},
        {"duration_ns",
         {{"p50", tick_percentile(c, 0.50)},
          {"p99", tick_percentile(c, 0.99)},
          {"max", c.tick_max_ns},
          {"last", c.tick_last_ns},
          {"mean", c.ticks ? c.tick_total_ns / c.ticks : 0},
          {"window_ticks", window}}}}},
      {"coroutines",
       {{"live", c.coro_live},
        {"created", c.coro_created},
        {"destroyed", c.coro_destroyed},
        {"failed", c.coro_failed},
        {"leaked_by_injection", c.coro_leaked}}},
      {"gc",
       {{"cycles", c.gc_cycles},
        {"total_pause_ns", c.gc_total_pause_ns},
        {"max_pause_ns", c.gc_max_pause_ns},
        {"last_pause_ns", c.gc_last_pause_ns},
        {"last_marked", c.gc_last_marked},
        {"last_freed", c.gc_last_freed},
        {"freed_total", c.gc_freed_total},
        {"heap_entities", c.gc_heap_entities}}},
      {"arena",
       {{"resets", c.arena_resets},
        {"total_reset_ns", c.arena_total_reset_ns},
        {"max_reset_ns", c.arena_max_reset_ns},
        {"bytes_used_last", c.arena_bytes_last},
        {"bytes_used_max", c.arena_bytes_max},
        {"bytes_reserved", c.arena_bytes_reserved},
        {"chunks", c.arena_chunks},
        {"chunk_mallocs", c.arena_chunk_mallocs}}},
      {"leak", {{"bytes", c.leak_bytes}, {"allocations", c.leak_allocations}}},
      {"sessions",
       {{"live", c.sessions_live},
        {"total", c.sessions_total},
        {"rejected", c.sessions_rejected},
        {"accept_backoffs", c.accept_backoffs},
        {"slow_readers", c.slow_readers},
        {"closed_by_reason", closes}}},
      {"tls", {{"handshakes_completed", c.tls_completed}, {"handshakes_failed", c.tls_failed}}},
      {"net",
       {{"frames_in", c.frames_in},
        {"frames_out", c.frames_out},
        {"bytes_in", c.bytes_in},
        {"bytes_out", c.bytes_out},
        {"frames_dropped", c.frames_dropped},
        {"frame_errors", frame_errors},
        {"frame_errors_total", frame_errors_total},
        {"blocking_writes", c.blocking_writes},
        {"blocking_write_ns", c.blocking_write_ns}}},
      {"world",
       {{"players", c.world_players},
        {"npcs", c.world_npcs},
        {"projectiles", c.world_projectiles},
        {"effects", c.world_effects},
        {"damage_events", c.damage_events},
        {"kills", c.kills}}},
      {"faults", faults_to_json(faults)},
  };
}

}  // namespace tickgame
