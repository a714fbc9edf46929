#include "tickgame/arena.h"

#include <cstdlib>
#include <new>

namespace tickgame {

TickArena::TickArena(std::size_t chunk_bytes) : chunk_bytes_(chunk_bytes) {}

TickArena::~TickArena() {
  for (auto& c : chunks_) std::free(c.data);
}

void* TickArena::alloc(std::size_t bytes, std::size_t align) {
  if (bytes == 0) bytes = 1;
  // First fit from the current chunk forward: chunks after `current_` are
  // empty (reset) chunks kept from earlier ticks.
  for (; current_ < chunks_.size(); ++current_) {
    Chunk& c = chunks_[current_];
    std::uintptr_t base = reinterpret_cast<std::uintptr_t>(c.data);
    std::uintptr_t p = (base + c.used + align - 1) & ~(std::uintptr_t(align) - 1);
    if (p + bytes <= base + c.size) {
      std::size_t new_used = p + bytes - base;
      bytes_used_ += new_used - c.used;
      c.used = new_used;
      return reinterpret_cast<void*>(p);
    }
    if (c.used == 0 && bytes + align > c.size) continue;  // too big for this empty chunk; try next
  }
  // Oversized requests get a dedicated chunk that is also kept for reuse.
  std::size_t size = bytes + align > chunk_bytes_ ? bytes + align : chunk_bytes_;
  auto* data = static_cast<std::byte*>(std::malloc(size));
  if (!data) throw std::bad_alloc();
  ++chunk_mallocs_;
  bytes_reserved_ += size;
  chunks_.push_back(Chunk{data, size, 0});
  current_ = chunks_.size() - 1;
  Chunk& c = chunks_.back();
  std::uintptr_t base = reinterpret_cast<std::uintptr_t>(c.data);
  std::uintptr_t p = (base + align - 1) & ~(std::uintptr_t(align) - 1);
  c.used = p + bytes - base;
  bytes_used_ += c.used;
  return reinterpret_cast<void*>(p);
}

void TickArena::reset() {
  for (auto& c : chunks_) c.used = 0;
  current_ = 0;
  bytes_used_ = 0;
  ++resets_;
}

}  // namespace tickgame
