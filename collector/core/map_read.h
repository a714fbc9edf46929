// Reading BPF hash maps from user space: walk them, or drain them (read and
// delete) for the families' alternating count maps (core/count_slots.h).
#pragma once

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
template <typename K, typename V, typename Fn>
size_t drain_hash_map(int fd, Fn&& fn, size_t max_entries) {
  std::vector<K> keys;
  K key{}, next{};
  void* prev = nullptr;
  while (keys.size() <= max_entries && bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  size_t n = 0;
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
