// CLOCK_MONOTONIC in nanoseconds: the clock bpf_ktime_get_ns() reads, so
// kernel timestamps (coroutine births, allocation times) compare with it.
#pragma once

#include <time.h>

#include <cstdint>

namespace tickprobe {

inline uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace tickprobe
