#include "core/family_errors.h"

#include <linux/types.h>

#include "core/shared_maps.h"
#include "bpf/include/unwind.h"

namespace tickprobe {

const char* error_counter_name(uint32_t which) {
  switch (which) {
    case TP_ERR_STACKS_FULL: return "stacks_full";
    case TP_ERR_COUNTS_FULL: return "counts_full";
    case TP_ERR_USER_STACK_EMPTY: return "user_stack_empty";
    case TP_ERR_KERNEL_STACK_FAIL: return "kernel_stack_failed";
    case TP_ERR_UNWIND_TRUNCATED: return "unwind_truncated";
    case TP_ERR_UNWIND_NO_MAPPING: return "unwind_no_mapping";
    case TP_ERR_UNWIND_READ_FAULT: return "unwind_read_fault";
    case TP_ERR_START_FULL: return "start_map_full";
    case TP_ERR_RINGBUF_FULL: return "ringbuf_full";
    case TP_ERR_EVENTS_SAMPLED_OUT: return "events_sampled_out";
    case TP_ERR_STACK_COLLISION: return "stack_hash_collisions";
    case TP_ERR_TRACK_FULL: return "tracking_map_full";
    case TP_ERR_UNMATCHED_END: return "unmatched_end";
    case TP_ERR_NESTING_LOST: return "nesting_lost";
    default: return "unknown";
  }
}

std::map<std::string, uint64_t> read_family_errors(const bpf_map* errors_map) {
  std::map<std::string, uint64_t> out;
  if (!errors_map) return out;
  auto vals = read_percpu_counters(bpf_map__fd(errors_map), TP_ERR_MAX);
  for (uint32_t i = 0; i < TP_ERR_MAX; i++) out[error_counter_name(i)] = vals[i];
  return out;
}

}  // namespace tickprobe
