#include <bpf/libbpf.h>

#include "core/shared_maps.h"
#include "model/counters.h"

namespace tickprobe {

void Counters::add_bpf(const bpf_map* errors_map) {
  if (!errors_map) return;
  add_values(read_percpu_counters(bpf_map__fd(errors_map), TP_COUNTER_MAX));
}

}  // namespace tickprobe
