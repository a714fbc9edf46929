// User-space view of the BPF `stacks` map (hash -> frames), with a bounded
// cache so a stack stays resolvable after the map entry is pruned.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace tickprobe {

struct StackStoreStats {
  uint64_t lookups = 0;
  uint64_t missing = 0;       // hash found in neither cache nor map
  uint64_t pruned = 0;        // map entries deleted to make room
  uint64_t cache_evictions = 0;
  uint64_t truncated = 0;     // stacks deeper than TP_MAX_FRAMES
};

struct StackFrames {
  std::vector<uint64_t> ips;  // leaf first
  uint32_t flags = 0;         // TP_STACK_*
};

class StackStore {
 public:
  StackStore(int stacks_fd, uint32_t map_capacity, size_t cache_capacity = 1u << 17);

  // nullptr for hash 0 (no stack) or a stack that is gone (counted).
  const StackFrames* get(uint64_t hash);
  // When the BPF map is more than half full, caches and deletes its entries.
  // Returns the entries the map holds afterwards.
  size_t prune_if_needed();
  uint32_t capacity() const { return map_capacity_; }
  StackStoreStats stats() const;

 private:
  int fd_;
  uint32_t map_capacity_;
  size_t cache_capacity_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, StackFrames> cache_;
  StackStoreStats stats_;
};

}  // namespace tickprobe
