// Injected faults. Each lives in its own never-inlined function so that a
// stack sampled while it runs names it (these names are part of what the
// tickprobe tests look for — keep them stable).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>

namespace tickgame {

class Scheduler;
class EntityHeap;

// Run-time fault settings: written by the flags and the admin thread
// (POST /faults), read by the tick thread once per tick.
struct FaultSettings {
  std::atomic<std::uint64_t> leak_bytes_per_tick{0};
  std::atomic<double> coroutine_leak_per_sec{0};
  std::atomic<std::uint64_t> gc_garbage_per_tick{0};
  std::atomic<bool> blocking_writes{false};
  std::atomic<std::uint64_t> cpu_hog_us{0};
};

// mallocs `bytes` (touching every page) and drops the pointer. Returns 1 if
// an allocation was made (the caller counts bytes and allocations).
__attribute__((noinline)) int inject_leak_bytes(std::size_t bytes);
// Spawns one coroutine named "leaked_task" that suspends forever.
__attribute__((noinline)) void inject_coroutine_leak(Scheduler& sched);
// Allocates `n` unreachable entities wired into reference cycles: garbage the
// next GC must mark around and sweep, lengthening its pause.
__attribute__((noinline)) void inject_gc_garbage(EntityHeap& heap, std::size_t n, std::mt19937_64& rng);
// Burns `us` microseconds of CPU on the calling thread.
__attribute__((noinline)) void inject_cpu_hog(std::uint64_t us);
// Writes `len` bytes of a slow reader's queue with the socket switched to
// blocking mode and SO_SNDTIMEO = timeout_ms, so the tick thread blocks in
// the kernel inside write()/send(). Returns bytes written (>= 0) or -1 on a
// hard error. Restores non-blocking mode before returning.
__attribute__((noinline)) long blocking_write_to_slow_client(int fd, SSL* ssl, const std::uint8_t* data, std::size_t len,
                                                             int timeout_ms);

}  // namespace tickgame
