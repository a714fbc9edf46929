// One sampling perf event per online CPU (hardware cycles when the PMU
// exists, else cpu-clock), for BPF programs that sample on-CPU threads.
// The tls family uses it; profile.cpp has the same logic inline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/bpf_link.h"
#include "core/result.h"

namespace tickprobe {

struct CpuSamplingEvents {
  std::vector<UniqueFd> fds;  // one per online CPU
  std::string event_name;     // "cycles" or "cpu-clock"
};

std::vector<int> online_cpu_list();
Result<CpuSamplingEvents> open_cpu_sampling_events(uint32_t frequency, bool force_cpu_clock = false);

}  // namespace tickprobe
