// Allocation hotspots as a profile: the alloc family's per-stack totals
// (bytes and objects allocated, and still in use) as a Profile in the shape
// of Go's heap profiles, so pprof tooling reads it like a Go heap profile:
// sample types alloc_objects/count, alloc_space/bytes, inuse_objects/count,
// inuse_space/bytes; period_type space/bytes, period = the sampling mean.
//
// Sampled counts are scaled up to estimates of the real ones (the Poisson
// correction of AllocProbe::estimate_*, per stack, as Go's runtime does).
// Leading allocator frames (malloc, operator new, je_*, ...) are dropped, so
// a stack's leaf is the allocation site; comments say so.
#pragma once

#include <cstdint>
#include <map>

#include "core/session.h"
#include "model/profile.h"
#include "probes/alloc.h"

namespace tickprobe {

enum class AllocProfileDefault { kInuseSpace, kAllocSpace };

struct AllocProfileOptions {
  uint32_t pid = 0;  // 0: every traced process
  AllocProfileDefault default_type = AllocProfileDefault::kAllocSpace;
  // Totals to subtract (a delta profile, `/debug/pprof/allocs?seconds=N`):
  // every value becomes the change since `baseline`, as Go's delta profiles.
  const std::map<AllocStackKey, AllocStackTotals>* baseline = nullptr;
};

// Index of each value in the profile's samples.
enum AllocValue : size_t { kAllocObjects = 0, kAllocSpace = 1, kInuseObjects = 2, kInuseSpace = 3 };

Profile build_alloc_profile(const AllocProbe& probe, Session& session,
                            const std::map<AllocStackKey, AllocStackTotals>& totals, const AllocProfileOptions& opts);

// True for allocator entry points and their C++ wrappers ("malloc",
// "operator new(unsigned long)", "je_malloc", std::allocator<T>::allocate):
// frames that are not the allocation site.
bool is_allocator_frame(const std::string& function);

}  // namespace tickprobe
