// User-space half of the alternating count maps (bpf/lib/count_slots.bpf.h):
// flip the active slot, then wait until no BPF program is still writing the
// old one, so reading and deleting it loses nothing.
#pragma once

#include <sched.h>

#include <chrono>
#include <cstdint>

namespace tickprobe {

struct SlotFlip {
  uint32_t drained_slot = 0;  // the slot that is now safe to read and delete
  bool waited_out = true;     // false: writers still present at the deadline
};

// `active` and `writers` point into the skeleton's mmapped .bss
// (skel->bss->active_slot, skel->bss->slot_writers).
template <typename Word, typename Counter>
SlotFlip flip_count_slot(Word* active, Counter* writers,
                         std::chrono::milliseconds deadline = std::chrono::milliseconds(200)) {
  SlotFlip f;
  f.drained_slot = __atomic_load_n(active, __ATOMIC_SEQ_CST) & 1;
  __atomic_store_n(active, f.drained_slot ^ 1, __ATOMIC_SEQ_CST);
  auto until = std::chrono::steady_clock::now() + deadline;
  // Writers hold a slot for the length of one map update (microseconds).
  while (__atomic_load_n(&writers[f.drained_slot], __ATOMIC_SEQ_CST) != 0) {
    if (std::chrono::steady_clock::now() >= until) {
      f.waited_out = false;
      break;
    }
    sched_yield();
  }
  return f;
}

}  // namespace tickprobe
