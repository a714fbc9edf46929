#include "core/perf_events.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/log.h"

namespace tickprobe {

std::vector<int> online_cpu_list() {
  std::vector<int> cpus;
  if (FILE* f = std::fopen("/sys/devices/system/cpu/online", "r")) {
    int a, b;
    char sep;
    while (std::fscanf(f, "%d", &a) == 1) {
      b = a;
      if (std::fscanf(f, "%c", &sep) == 1 && sep == '-') {
        if (std::fscanf(f, "%d", &b) != 1) b = a;
        if (std::fscanf(f, "%c", &sep) != 1) sep = '\n';
      }
      for (int c = a; c <= b; c++) cpus.push_back(c);
      if (sep != ',') break;
    }
    std::fclose(f);
  }
  if (cpus.empty())
    for (int c = 0; c < libbpf_num_possible_cpus(); c++) cpus.push_back(c);
  return cpus;
}

Result<CpuSamplingEvents> open_cpu_sampling_events(uint32_t frequency, bool force_cpu_clock) {
  if (frequency == 0 || frequency > 10000)
    return Error("invalid sampling frequency " + std::to_string(frequency), "use a frequency between 1 and 10000 Hz");
  CpuSamplingEvents out;
  bool use_hw = !force_cpu_clock;
  for (int cpu : online_cpu_list()) {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.freq = 1;
    attr.sample_freq = frequency;
    attr.sample_type = PERF_SAMPLE_RAW;
    int fd = -1;
    if (use_hw) {
      attr.type = PERF_TYPE_HARDWARE;
      attr.config = PERF_COUNT_HW_CPU_CYCLES;
      fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
      if (fd < 0 && out.fds.empty()) {
        TP_LOG_DEBUG("no hardware cycles event (%s); using cpu-clock", std::strerror(errno));
        use_hw = false;
      }
    }
    if (!use_hw) {
      attr.type = PERF_TYPE_SOFTWARE;
      attr.config = PERF_COUNT_SW_CPU_CLOCK;
      fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    }
    if (fd < 0) {
      if (errno == ENODEV) continue;  // CPU went offline
      int err = errno;
      return Error::from_errno("failed to open a perf event on CPU " + std::to_string(cpu), err,
                               err == EACCES || err == EPERM
                                   ? "not permitted: perf events need CAP_PERFMON (deploy/capabilities.txt)"
                                   : "check /proc/sys/kernel/perf_event_paranoid; run `tickprobe doctor`");
    }
    out.fds.emplace_back(fd);
  }
  out.event_name = use_hw ? "cycles" : "cpu-clock";
  return out;
}

Result<UniqueFd> open_thread_sampling_event(uint32_t tid, uint32_t frequency, bool* use_hw) {
  if (frequency == 0 || frequency > 10000)
    return Error("invalid sampling frequency " + std::to_string(frequency), "use a frequency between 1 and 10000 Hz");
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.freq = 1;
  attr.sample_freq = frequency;
  attr.sample_type = PERF_SAMPLE_RAW;
  attr.inherit = 1;  // threads and children created later get their own copy, with the program
  int fd = -1;
  if (*use_hw) {
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_CPU_CYCLES;
    fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, static_cast<pid_t>(tid), -1, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0 && errno != ESRCH) {
      TP_LOG_DEBUG("no hardware cycles event (%s); using cpu-clock", std::strerror(errno));
      *use_hw = false;
    }
  }
  if (fd < 0 && !*use_hw) {
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, static_cast<pid_t>(tid), -1, -1, PERF_FLAG_FD_CLOEXEC));
  }
  if (fd < 0) {
    int err = errno;
    return Error::from_errno("failed to open a perf event on thread " + std::to_string(tid), err,
                             err == EACCES || err == EPERM
                                 ? "not permitted: perf events need CAP_PERFMON (deploy/capabilities.txt)"
                                 : "check /proc/sys/kernel/perf_event_paranoid; run `tickprobe doctor`");
  }
  return UniqueFd(fd);
}

}  // namespace tickprobe
