// One-shot runtime investigations behind `tickprobe coro`, `pauses` and
// `leaks`: attach to one process, watch it for a while (with progress),
// and return a plain report for the exporters to render.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/session.h"
#include "model/hitch.h"
#include "model/histogram.h"
#include "model/leak_detector.h"
#include "model/runtime_reports.h"
#include "probes/alloc.h"
#include "probes/growth.h"
#include "probes/runtime.h"
#include "runtime/leak_tracker.h"
#include "model/profile.h"

namespace tickprobe {

struct HuntProgress {
  double elapsed_s = 0, duration_s = 0;
  std::string line;  // what to show, e.g. "live 212  created 40/s  suspects 1"
};

struct HuntCommon {
  uint32_t pid = 0;
  double duration_s = 10;  // 0: until stopped
  double interval_s = 1;
  SessionOptions session;
  std::function<void(const HuntProgress&)> on_progress;
  const std::atomic<bool>* stop = nullptr;
};

// ---------------------------------------------------------------- coroutines

struct CoroHuntOptions {
  HuntCommon common;
  RuntimeDescription runtime;
  bool trace_resume = false;
  double min_age_s = 10;  // live coroutines at least this old are leak suspects
  size_t top = 10;
};

// Builds a coroutine report from a running probe (shared by the hunt and leaks --coroutines).
CoroReport build_coro_report(RuntimeProbe& probe, Session& session, uint32_t pid, double elapsed_s,
                             double min_age_s, size_t top);
Result<CoroReport> run_coro_hunt(const CoroHuntOptions& o);

// ---------------------------------------------------------------- pauses

struct PauseHuntOptions {
  HuntCommon common;
  RuntimeDescription runtime;
  HitchOptions hitch;
  size_t top = 10;
};

Result<PauseReport> run_pause_hunt(const PauseHuntOptions& o);

// ---------------------------------------------------------------- leaks

struct LeakHuntOptions {
  HuntCommon common;
  AllocOptions alloc;
  LeakJudgeOptions judge;
  size_t top = 10;
  bool coroutines = false;  // also hunt coroutine leaks (needs a runtime description)
  RuntimeDescription runtime;
  double coro_min_age_s = 10;
  // Warn (once, while running) when no allocator call was seen this long.
  double no_calls_warn_s = 5;
};

// "saw 0 allocator calls in 5 s from pid P; attached malloc,free,... in /lib/.../libc.so.6"
std::string no_allocator_calls_warning(uint32_t pid, double seconds, const std::vector<LeakAttachedObject>& objects);
extern const char* const kNoAllocatorCallsHint;

Result<LeakReport> run_leak_hunt(const LeakHuntOptions& o);

// ---------------------------------------------------------------- allocs

// 512 KiB, Go's MemProfileRate: one sampled allocation per 512 KiB
// allocated on average; a few stack walks a second on a busy server.
constexpr uint64_t kDefaultAllocSampleBytes = 512 * 1024;

struct AllocsHuntOptions {
  HuntCommon common;
  AllocOptions alloc;  // sample_bytes: kDefaultAllocSampleBytes unless set
  // Called once the uprobes are in place (before the watch starts).
  std::function<void(const AllocAttachReport&)> on_attached;
};

struct AllocsResult {
  Profile profile;  // Go heap-profile shape (runtime/alloc_profile.h), alloc_space by default
  std::string allocator_object;
  std::string warning;  // no allocator call seen: the profile is empty for a reason
};

Result<AllocsResult> run_allocs_hunt(const AllocsHuntOptions& o);

// ---------------------------------------------------------------- growth

struct GrowthHuntOptions {
  HuntCommon common;
  GrowthOptions growth;
  std::function<void()> on_started;  // the programs are attached; the watch starts
};

// The growth family's profile of one process over the watch (page-fault
// bytes by default; brk and mmap bytes as further sample types).
Result<Profile> run_growth_hunt(const GrowthHuntOptions& o);

// The first frame that is not the allocator itself (malloc, operator new, ...).
std::string allocation_site(const std::vector<std::string>& frames);

}  // namespace tickprobe
