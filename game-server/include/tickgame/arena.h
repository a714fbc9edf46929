// Per-tick bump arena: transient objects of one tick (damage events, packet
// build buffers, AOI scratch lists) are carved from chunks and released all
// at once by reset() at the end of the tick. reset() keeps every chunk, so
// after warm-up a tick performs no malloc for its transient data.
//
// It is a std::pmr::memory_resource, so std::pmr containers can live in it;
// deallocate() is a no-op. Not thread-safe (the tick thread owns it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <vector>

namespace tickgame {

class TickArena : public std::pmr::memory_resource {
 public:
  explicit TickArena(std::size_t chunk_bytes = 64 * 1024);
  ~TickArena() override;
  TickArena(const TickArena&) = delete;
  TickArena& operator=(const TickArena&) = delete;

  void* alloc(std::size_t bytes, std::size_t align = alignof(std::max_align_t));
  // Rewinds every chunk to empty; chunks stay allocated for the next tick.
  void reset();

  std::size_t bytes_used() const { return bytes_used_; }           // since last reset
  std::size_t bytes_reserved() const { return bytes_reserved_; }   // sum of chunk sizes
  std::size_t chunk_count() const { return chunks_.size(); }
  std::uint64_t chunk_mallocs() const { return chunk_mallocs_; }   // lifetime count
  std::uint64_t resets() const { return resets_; }

 private:
  struct Chunk { std::byte* data; std::size_t size; std::size_t used; };
  void* do_allocate(std::size_t bytes, std::size_t align) override { return alloc(bytes, align); }
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }

  std::size_t chunk_bytes_;
  std::vector<Chunk> chunks_;
  std::size_t current_ = 0;  // index of the chunk being filled
  std::size_t bytes_used_ = 0;
  std::size_t bytes_reserved_ = 0;
  std::uint64_t chunk_mallocs_ = 0;
  std::uint64_t resets_ = 0;
};

}  // namespace tickgame
