// CPU profile family (bpf/profile.bpf.c): perf_event sampling of target
// threads at a fixed frequency, counted in the kernel per thread and stack.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/bpf_link.h"
#include "core/result.h"
#include "model/stack_aggregate.h"

struct profile_bpf;

namespace tickprobe {

class Session;

struct CpuProfileOptions {
  uint32_t frequency = 99;       // samples per second per CPU
  bool kernel_stacks = true;
  bool force_cpu_clock = false;  // skip the hardware cycles event
  uint32_t max_counts = 16384;   // distinct (thread, stack) slots per interval
};

class CpuProfileProbe {
 public:
  static Result<std::unique_ptr<CpuProfileProbe>> create(Session& session, const CpuProfileOptions& opts);
  ~CpuProfileProbe();
  CpuProfileProbe(const CpuProfileProbe&) = delete;
  CpuProfileProbe& operator=(const CpuProfileProbe&) = delete;

  // Moves the counts gathered since the last drain into agg (value: samples).
  void drain(StackAggregate& agg);
  // "cycles" or "cpu-clock".
  const std::string& event_name() const { return event_name_; }
  uint32_t frequency() const { return opts_.frequency; }
  std::map<std::string, uint64_t> counters() const;
  // The profile's shape: samples and CPU nanoseconds (samples * period).
  ProfileShape shape() const;

 private:
  CpuProfileProbe(Session& s, const CpuProfileOptions& o) : session_(s), opts_(o) {}
  Session& session_;
  CpuProfileOptions opts_;
  profile_bpf* skel_ = nullptr;
  std::vector<UniqueFd> perf_fds_;
  std::vector<BpfLink> links_;
  std::string event_name_;
  uint64_t samples_ = 0;
};

}  // namespace tickprobe
