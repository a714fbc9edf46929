// The per-tick arena: bump allocation, reset keeps chunks, no mallocs after warm-up.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory_resource>
#include <new>
#include <vector>

#include "tickgame/arena.h"

// Counts global operator new calls so a test can prove a warmed-up tick
// allocates nothing outside the arena.
static std::atomic<long> g_global_news{0};
void* operator new(std::size_t n) {
  ++g_global_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using tickgame::TickArena;

namespace {
// One simulated tick's transient work: event lists and packet buffers.
void simulated_tick(TickArena& arena, int events) {
  std::pmr::vector<int> ev(&arena);
  for (int i = 0; i < events; ++i) ev.push_back(i);
  std::pmr::vector<std::uint8_t> packet(&arena);
  packet.resize(3000);
  void* big = arena.alloc(100 * 1024);  // bigger than a chunk
  ASSERT_NE(big, nullptr);
}
}  // namespace

TEST(TickArena, AllocationsAreAlignedAndDisjoint) {
  TickArena arena(4096);
  auto* a = static_cast<char*>(arena.alloc(10, 1));
  auto* b = static_cast<char*>(arena.alloc(16, 16));
  auto* c = static_cast<char*>(arena.alloc(8, 8));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 16, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c) % 8, 0u);
  EXPECT_GE(b, a + 10);
  EXPECT_GE(c, b + 16);
  EXPECT_GE(arena.bytes_used(), 34u);
}

TEST(TickArena, ResetKeepsChunksAndReusesMemory) {
  TickArena arena(4096);
  void* first = arena.alloc(100);
  for (int i = 0; i < 100; ++i) arena.alloc(100);
  std::size_t chunks = arena.chunk_count();
  std::size_t reserved = arena.bytes_reserved();
  EXPECT_GT(chunks, 1u);
  arena.reset();
  EXPECT_EQ(arena.bytes_used(), 0u);
  EXPECT_EQ(arena.chunk_count(), chunks);
  EXPECT_EQ(arena.bytes_reserved(), reserved);
  EXPECT_EQ(arena.alloc(100), first);  // the same memory again
}

TEST(TickArena, NoNewMallocsAfterWarmUp) {
  TickArena arena(64 * 1024);
  for (int t = 0; t < 3; ++t) {  // warm-up
    simulated_tick(arena, 5000);
    arena.reset();
  }
  const std::uint64_t chunk_mallocs = arena.chunk_mallocs();
  const long news = g_global_news.load();
  for (int t = 0; t < 100; ++t) {
    simulated_tick(arena, 5000);
    arena.reset();
  }
  EXPECT_EQ(arena.chunk_mallocs(), chunk_mallocs);
  EXPECT_EQ(g_global_news.load(), news) << "a warmed-up tick called operator new";
  EXPECT_EQ(arena.resets(), 103u);
}

TEST(TickArena, OversizedRequestGetsItsOwnReusedChunk) {
  TickArena arena(1024);
  void* p = arena.alloc(10000);
  ASSERT_NE(p, nullptr);
  arena.reset();
  std::uint64_t m = arena.chunk_mallocs();
  arena.alloc(10000);
  EXPECT_EQ(arena.chunk_mallocs(), m);
}
