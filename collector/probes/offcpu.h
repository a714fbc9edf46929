// Off-CPU family (bpf/offcpu.bpf.c): time target threads spend switched out,
// per thread, stack (user + kernel) and thread state, from sched_switch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/result.h"
#include "model/stack_aggregate.h"

struct offcpu_bpf;

namespace tickprobe {

class Session;

struct OffCpuOptions {
  uint64_t min_block_us = 1;
  uint64_t max_block_us = 0;  // 0 = no limit
  bool include_runnable = true;       // preempted time ("R")
  bool include_sleeping = true;       // "S"
  bool include_uninterruptible = true;// "D"
  bool kernel_stacks = true;
  uint32_t max_counts = 16384;
  uint32_t max_threads = 16384;
};

// Single-letter state names used as the "state" label: R, S, D, other.
const char* offcpu_state_name(uint32_t state);

class OffCpuProbe {
 public:
  static Result<std::unique_ptr<OffCpuProbe>> create(Session& session, const OffCpuOptions& opts);
  ~OffCpuProbe();
  OffCpuProbe(const OffCpuProbe&) = delete;
  OffCpuProbe& operator=(const OffCpuProbe&) = delete;

  // Values: off-CPU nanoseconds, number of blocks. Label: state.
  void drain(StackAggregate& agg);
  ProfileShape shape() const;
  // "tp_btf" or "raw_tp": which sched_switch variant the feature probe chose.
  const std::string& variant() const { return variant_; }
  std::map<std::string, uint64_t> counters() const;

 private:
  OffCpuProbe(const OffCpuOptions& o) : opts_(o) {}
  OffCpuOptions opts_;
  offcpu_bpf* skel_ = nullptr;
  std::string variant_;
  uint64_t blocks_ = 0;
};

}  // namespace tickprobe
