// One-shot recording of a stack profile (CPU or off-CPU) for the CLI:
// resolve targets, attach, drain on an interval with progress reports,
// stop at the deadline or when asked, and build the symbolized Profile.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/result.h"
#include "core/session.h"
#include "model/profile.h"
#include "probes/offcpu.h"
#include "probes/profile.h"
#include "targets/target_spec.h"

namespace tickprobe {

enum class ProfileKind { kCpu, kOffCpu };

struct RecordProgress {
  double elapsed_s = 0;
  double duration_s = 0;  // 0 = until stopped
  int64_t primary_total = 0;  // samples (CPU) or off-CPU ns
  size_t distinct_stacks = 0;
  size_t targets = 0;
  uint64_t dropped = 0;    // counts_full + stacks_full
};

struct RecordOptions {
  ProfileKind kind = ProfileKind::kCpu;
  TargetSpec targets;
  double duration_s = 10;
  double interval_s = 1;
  CpuProfileOptions cpu;
  OffCpuOptions offcpu;
  SessionOptions session;
  std::function<void(const RecordProgress&)> on_progress;
  const std::atomic<bool>* stop = nullptr;  // set from a signal handler to finish early
};

// Records and returns the profile. Profile::counters carries the families'
// self-accounting (lost samples, map-full drops, missing stacks ...).
Result<Profile> record_profile(const RecordOptions& opts);

}  // namespace tickprobe
