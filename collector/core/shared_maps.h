// The maps every probe family shares: the target set, the unwind tables, the
// per-process mapping tables, and the content-addressed stack store. They are
// created once here (sized from SessionOptions) and handed to each family's
// BPF object with bpf_map__reuse_fd before it loads, so a target added or a
// binary's table loaded once serves every family.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/bpf_link.h"
#include "core/result.h"

namespace tickprobe {

struct SharedMapSizes {
  uint32_t max_targets = 1024;
  // 0: sized by Session::create from the first targets' binaries
  // (auto_unwind_rows, unwind/unwind_tables.h). An array of 16-byte
  // elements: 1 Mi rows are 16 MiB of kernel memory.
  uint32_t unwind_rows = 0;
  uint32_t max_stacks = 16384;
};

class SharedMaps {
 public:
  static Result<SharedMaps> create(const SharedMapSizes& sizes);

  // Points obj's maps named targets/unwind_rows/proc_maps/stacks at ours.
  // Call between open and load.
  Status reuse_in(bpf_object* obj) const;

  int targets_fd() const { return targets_.get(); }
  int unwind_rows_fd() const { return unwind_rows_.get(); }
  int proc_maps_fd() const { return proc_maps_.get(); }
  int stacks_fd() const { return stacks_.get(); }
  const SharedMapSizes& sizes() const { return sizes_; }
  // Rewrites the one-line copy of the target set (struct tp_target_filter)
  // that the programs test first. Call after adding to the targets hash and
  // before deleting from it; the caller serializes calls.
  void publish_target_filter(const std::vector<uint32_t>& tgids) const;

 private:
  struct Unmap {
    size_t len;  // no default member initializer: it would not be default constructible here
    void operator()(void* p) const;
  };
  SharedMapSizes sizes_;
  UniqueFd targets_, unwind_rows_, proc_maps_, stacks_, target_filter_;
  std::unique_ptr<void, Unmap> target_filter_mem_;  // the mmapped value
};

// BPF_F_NO_PREALLOC for hash maps that perf_event programs use: kernels
// before 6.1 (the bpf_mem_alloc series) reject a perf_event program that
// references a hash map that is not preallocated. Probed once, by loading a
// two-instruction perf_event program that references such a map.
bool lazy_hash_maps_supported();
// BPF_F_NO_PREALLOC when lazy_hash_maps_supported(), else 0.
uint32_t lazy_hash_map_flags();

// Memory charged for every BPF map this process holds open (the "memlock"
// lines of /proc/self/fdinfo), in bytes.
uint64_t bpf_map_memory_bytes();

// Sums a per-CPU array of u64 counters (e.g. a family's `errors` map).
std::vector<uint64_t> read_percpu_counters(int map_fd, uint32_t entries);

}  // namespace tickprobe
