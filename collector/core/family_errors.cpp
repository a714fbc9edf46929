#include "core/family_errors.h"

#include <linux/types.h>

#include "core/counters.h"
#include "core/shared_maps.h"
#include "bpf/include/unwind.h"

namespace tickprobe {

const char* error_counter_name(uint32_t which) { return counter_info(which).name; }

std::map<std::string, uint64_t> read_family_errors(const bpf_map* errors_map) {
  std::map<std::string, uint64_t> out;
  if (!errors_map) return out;
  auto vals = read_percpu_counters(bpf_map__fd(errors_map), TP_ERR_MAX);
  for (uint32_t i = 0; i < TP_ERR_MAX; i++) out[error_counter_name(i)] = vals[i];
  return out;
}

}  // namespace tickprobe
