#pragma once
#include <cstdint>
#include <ctime>

namespace tickgame {
// CLOCK_MONOTONIC in nanoseconds: the clock of every duration in /stats.
inline std::uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}
}  // namespace tickgame
