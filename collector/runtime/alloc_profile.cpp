#include "runtime/alloc_profile.h"

#include <cmath>
#include <set>

#include "model/stack_aggregate.h"

namespace tickprobe {

bool is_allocator_frame(const std::string& f) {
  static const std::set<std::string> alloc_fns = {
      "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc", "memalign", "valloc",
      "pvalloc", "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_memalign", "__posix_memalign",
      "_int_malloc", "_int_realloc", "_int_memalign", "_mid_memalign", "tcache_init", "malloc_hook_ini", "mallocx",
      "rallocx", "mi_malloc", "mi_calloc", "mi_realloc", "mmap", "mmap64", "__mmap",
      // Go: the sampling path, as Go's own heap profile skips it (it starts
      // at mallocgc's caller: runtime.newobject, makeslice, ...).
      "runtime.mProf_Malloc", "runtime.profilealloc", "runtime.mallocgc"};
  if (alloc_fns.count(f)) return true;
  if (f.rfind("operator new", 0) == 0) return true;
  if (f.rfind("je_", 0) == 0 || f.rfind("tc_", 0) == 0 || f.rfind("mi_", 0) == 0) return true;
  if (f.find("allocator<") != std::string::npos && f.find("::allocate") != std::string::npos) return true;
  if (f.find("new_allocator<") != std::string::npos) return true;
  return false;
}

Profile build_alloc_profile(const AllocProbe& probe, Session& session,
                            const std::map<AllocStackKey, AllocStackTotals>& totals, const AllocProfileOptions& opts) {
  ProfileShape shape;
  shape.sample_types = {
      {"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}};
  shape.period_type = {"space", "bytes"};
  shape.period = static_cast<int64_t>(probe.options().sample_bytes);
  shape.label_key = "kind";
  shape.include_kernel = false;
  StackAggregate agg(4);
  for (const auto& [k, v] : totals) {
    if (opts.pid && k.tgid != opts.pid) continue;
    double allocs = static_cast<double>(v.allocs), alloc_bytes = static_cast<double>(v.alloc_bytes);
    double inuse = static_cast<double>(v.outstanding_count), inuse_bytes = static_cast<double>(v.outstanding_bytes);
    if (opts.baseline) {
      if (auto it = opts.baseline->find(k); it != opts.baseline->end()) {
        allocs -= static_cast<double>(it->second.allocs);
        alloc_bytes -= static_cast<double>(it->second.alloc_bytes);
        inuse -= static_cast<double>(it->second.outstanding_count);
        inuse_bytes -= static_cast<double>(it->second.outstanding_bytes);
      }
    }
    // The mean size of the stack's allocations drives the correction; a
    // signed in-use delta is scaled by the same factor as its magnitude.
    auto scaled = [&](double bytes, double count, bool want_bytes) {
      double sign = count < 0 ? -1.0 : 1.0;
      double b = std::fabs(bytes), c = std::fabs(count);
      double r = want_bytes ? probe.estimate_bytes(b, c) : probe.estimate_count(b, c);
      return static_cast<int64_t>(std::llround(sign * r));
    };
    std::vector<int64_t> vals = {scaled(alloc_bytes, allocs, false), scaled(alloc_bytes, allocs, true),
                                 scaled(inuse_bytes, inuse, false), scaled(inuse_bytes, inuse, true)};
    if (vals[0] == 0 && vals[1] == 0 && vals[2] == 0 && vals[3] == 0) continue;
    StackAggKey key;
    key.tgid = k.tgid;
    key.user_stack = k.user_stack;
    key.label = k.kind == 1 /* ALLOC_KIND_MMAP */ ? "mmap" : "";
    agg.add(key, vals);
  }
  Profile p = build_profile(agg, session, shape);
  uint64_t dropped_frames = 0;
  for (Sample& s : p.samples) {
    size_t n = 0;
    // Keep at least one frame: a stack of allocator frames only stays whole.
    while (n + 1 < s.frames.size() && is_allocator_frame(s.frames[n].function)) n++;
    dropped_frames += n;
    s.frames.erase(s.frames.begin(), s.frames.begin() + static_cast<long>(n));
  }
  p.default_value_index = opts.default_type == AllocProfileDefault::kInuseSpace ? kInuseSpace : kAllocSpace;
  uint64_t sb = probe.options().sample_bytes;
  p.comments.push_back(sb ? "allocations sampled about once per " + std::to_string(sb) +
                                " bytes; values are estimates scaled up per stack"
                          : "every allocation traced (exact)");
  p.comments.push_back("allocator frames (malloc, operator new, ...) dropped from the leaf of each stack");
  if (opts.baseline) p.comments.push_back("delta profile: every value is the change over the requested seconds");
  p.counters["allocator_frames_dropped"] = dropped_frames;
  for (const auto& [name, value] : probe.counters().to_map(true)) p.counters[name] = value;
  return p;
}

}  // namespace tickprobe
