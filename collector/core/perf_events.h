// Sampling perf events (hardware cycles when the PMU exists, else
// cpu-clock) for BPF programs that sample on-CPU threads: one per online
// CPU (the tls family), or one per target thread, inherited (profile).
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

// One sampling event on thread `tid` (any CPU), inherited by the threads
// and processes it creates later: a program attached to it runs only while
// that thread (or a descendant) is on a CPU. *use_hw: try hardware cycles
// first; cleared when the PMU lacks them (then cpu-clock). ESRCH: the
// thread is gone.
Result<UniqueFd> open_thread_sampling_event(uint32_t tid, uint32_t frequency, bool* use_hw);

}  // namespace tickprobe
