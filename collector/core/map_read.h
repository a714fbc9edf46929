// Reading BPF hash maps from user space: walk them, or drain them (read and
// delete) for the families' alternating count maps (core/count_slots.h).
#pragma once

#include <cerrno>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <bpf/libbpf.h>
#include <bpf/bpf.h>

namespace tickprobe {

// Calls fn(key, value) for every entry of a BPF hash map, without deleting
// (entries added or removed meanwhile may or may not be seen).
template <typename K, typename V, typename Fn>
void for_each_map_entry(int fd, Fn&& fn) {
  K key{}, next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) fn(next, v);
    key = next;
    prev = &key;
  }
}

// Reads and deletes every entry of a BPF hash map, calling fn(key, value).
// Entries updated after being read are picked up by the next drain, so with
// the families' alternating count maps nothing is lost or counted twice.
//
// In batches (BPF_MAP_LOOKUP_AND_DELETE_BATCH, one system call per 4096
// entries instead of two per entry: 16k entries drain in a few ms instead
// of ~40 ms, tests/bench/aggregate_bench.cpp); per key when the kernel
// refuses the batch (or for what is left after a batch error).
template <typename K, typename V, typename Fn>
size_t drain_hash_map(int fd, Fn&& fn, size_t max_entries) {
  constexpr uint32_t kBatch = 4096;
  std::vector<K> bkeys(kBatch);
  std::vector<V> bvals(kBatch);
  uint64_t in_token = 0, out_token = 0;  // opaque batch positions (a bucket index for hashes)
  bool first = true, done = false;
  size_t n = 0;
  while (n <= max_entries) {
    uint32_t count = kBatch;
    int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &in_token, &out_token, bkeys.data(),
                                              bvals.data(), &count, nullptr);
    if (err && errno != ENOENT) break;  // unsupported, or a bucket larger than a batch: per key below
    for (uint32_t i = 0; i < count; i++) fn(bkeys[i], bvals[i]);
    n += count;
    if (err) {  // ENOENT: the walk reached the end
      done = true;
      break;
    }
    in_token = out_token;
    first = false;
  }
  if (done || n > max_entries) return n;
  std::vector<K> keys;
  K key{}, next{};
  void* prev = nullptr;
  while (n + keys.size() <= max_entries && bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  for (auto& k : keys) {
    V v{};
    if (bpf_map_lookup_and_delete_elem(fd, &k, &v) != 0) {
      if (bpf_map_lookup_elem(fd, &k, &v) != 0) continue;
      bpf_map_delete_elem(fd, &k);
    }
    fn(k, v);
    n++;
  }
  return n;
}

}  // namespace tickprobe
