#include "core/stack_store.h"

#include <bpf/bpf.h>
#include <linux/types.h>

#include "bpf/include/unwind.h"

namespace tickprobe {

StackStore::StackStore(int stacks_fd, uint32_t map_capacity, size_t cache_capacity)
    : fd_(stacks_fd), map_capacity_(map_capacity), cache_capacity_(cache_capacity) {}

const StackFrames* StackStore::get(uint64_t hash) {
  if (hash == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  stats_.lookups++;
  auto it = cache_.find(hash);
  if (it != cache_.end()) return &it->second;
  tp_stack st{};
  if (bpf_map_lookup_elem(fd_, &hash, &st) != 0) {
    stats_.missing++;
    return nullptr;
  }
  if (cache_.size() >= cache_capacity_) {
    // Whole-cache reset keeps this O(1) and bounded; stacks still in the
    // BPF map are simply read again.
    stats_.cache_evictions += cache_.size();
    cache_.clear();
  }
  StackFrames f;
  uint32_t len = st.len > TP_MAX_FRAMES ? TP_MAX_FRAMES : st.len;
  f.ips.assign(st.ips, st.ips + len);
  f.flags = st.flags;
  if (f.flags & TP_STACK_TRUNCATED) stats_.truncated++;
  return &cache_.emplace(hash, std::move(f)).first->second;
}

size_t StackStore::prune_if_needed() {
  std::vector<uint64_t> keys;
  uint64_t key = 0, next = 0;
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
    if (keys.size() > map_capacity_) break;
  }
  if (keys.size() * 2 < map_capacity_) return keys.size();
  for (uint64_t k : keys) {
    get(k);  // keep a copy
    bpf_map_delete_elem(fd_, &k);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.pruned += keys.size();
  return 0;
}

StackStoreStats StackStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tickprobe
