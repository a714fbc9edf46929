#include "runtime/leak_tracker.h"

#include <time.h>

#include <algorithm>
#include <cstdio>

#include "bpf/include/unwind.h"
#include "core/clock.h"

namespace tickprobe {

StackView view_stack(Session& session, uint32_t pid, uint64_t hash) {
  StackView v;
  v.hash = hash;
  if (const StackFrames* st = session.stacks().get(hash)) {
    for (const auto& f : session.symbolizer().symbolize_user(pid, st->ips, /*leaf_is_exact_ip=*/true))
      v.frames.push_back(f.display_name());
    if (st->flags & TP_STACK_TRUNCATED) v.frames.push_back("[truncated]");
  }
  if (v.frames.empty()) v.frames.push_back(hash ? "[stack lost]" : "[no stack]");
  return v;
}

std::string allocation_site(const std::vector<std::string>& frames) {
  static const std::set<std::string> alloc_fns = {
      "malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
      "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_memalign", "__posix_memalign", "mmap", "mmap64",
      "__mmap", "operator new(unsigned long)", "operator new[](unsigned long)",
      "operator new(unsigned long, std::align_val_t)", "operator new[](unsigned long, std::align_val_t)",
      "operator new(unsigned long, std::nothrow_t const&)"};
  for (const auto& f : frames) {
    if (alloc_fns.count(f)) continue;
    if (f.rfind("je_", 0) == 0 || f.rfind("tc_", 0) == 0) continue;
    // Go: mallocgc, newobject, makeslice, growslice, mProf_Malloc, ...
    if (f.rfind("runtime.", 0) == 0) continue;
    if (f.find("allocator<") != std::string::npos && f.find("::allocate") != std::string::npos) continue;
    if (f.find("new_allocator<") != std::string::npos) continue;
    return f;
  }
  return frames.empty() ? "[unknown]" : frames.back();
}

double LeakTracker::sample(double t) {
  double total = 0;
  for (const auto& [k, v] : probe_.stack_totals()) {
    if (k.tgid != pid_) continue;
    double b = static_cast<double>(std::max<int64_t>(0, v.outstanding_bytes));
    double c = static_cast<double>(std::max<int64_t>(0, v.outstanding_count));
    double bytes = probe_.estimate_bytes(b, c), count = probe_.estimate_count(b, c);
    // A stack first seen now had nothing outstanding at the previous sample.
    if (known_.insert(k).second && intervals_ > 0) series_.add(k, {prev_t_, 0, 0});
    series_.add(k, {t, bytes, count});
    total += bytes;
  }
  intervals_++;
  prev_t_ = t;
  return total;
}

size_t LeakTracker::suspects() const {
  size_t n = 0;
  for (const auto& [k, pts] : series_.all())
    if (judge_growth(pts, opts_.criteria).leaking) n++;
  return n;
}

LeakReport LeakTracker::report(double elapsed_s, size_t top) {
  LeakReport r;
  r.pid = pid_;
  r.comm = session_.process_name(pid_);
  r.duration_s = elapsed_s;
  r.sample_bytes = probe_.options().sample_bytes;
  r.intervals = intervals_;
  auto totals = probe_.stack_totals();
  auto ages = probe_.ages(pid_);
  auto replaced = probe_.untracked_frees(pid_);
  replaced.erase(0);
  uint64_t now = monotonic_ns();
  std::vector<LeakStack> all;
  for (const auto& [k, pts] : series_.all()) {
    LeakStack ls;
    ls.kind = k.kind;
    ls.stack.hash = k.user_stack;
    ls.bytes = pts.back().bytes;
    ls.count = pts.back().count;
    if (auto it = totals.find(k); it != totals.end()) {
      ls.allocs = it->second.allocs;
      ls.frees = it->second.frees;
    }
    if (auto it = ages.find(k); it != ages.end() && it->second.oldest_ns)
      ls.oldest_age_s = static_cast<double>(now - std::min(now, it->second.oldest_ns)) / 1e9;
    ls.verdict = judge_growth(pts, opts_.criteria);
    // Leaked memory is never freed, so its oldest allocation is about as old
    // as the hunt. Growth made of allocations that are freed again soon
    // (a queue or a heap between GC cycles filling up) is churn.
    // Retained objects, not buffers that grew: the number of outstanding
    // allocations must grow too.
    if (ls.verdict.leaking) {
      std::vector<LeakPoint> counts;
      for (const auto& p : pts) counts.push_back({p.t_s, p.count, p.count});
      LeakCriteria cc = opts_.criteria;
      cc.min_r2 = 0.5;
      if (!judge_growth(counts, cc).leaking) {
        ls.verdict.leaking = false;
        ls.verdict.why = "bytes grow but the number of allocations does not (buffers growing to a high-water mark)";
      }
    }
    // Memory allocated before attach is invisible; when as many chunks of
    // this stack's size, allocated before attach, were freed as it grew by,
    // it is replacing them (a population turning over), not leaking.
    if (ls.verdict.leaking && !replaced.empty() && ls.count > 0) {
      uint64_t chunk = AllocProbe::glibc_chunk_size(static_cast<uint64_t>(ls.bytes / ls.count));
      auto it = replaced.find(chunk);
      double growth_count = pts.back().count - pts.front().count;
      if (it != replaced.end() && static_cast<double>(it->second) >= 0.5 * growth_count) {
        ls.verdict.leaking = false;
        ls.verdict.why = std::to_string(it->second) + " same-size allocations from before attach were freed while it grew by " +
                         std::to_string(static_cast<uint64_t>(growth_count)) + ": it replaces them";
      }
    }
    // A stack that frees most of what it allocates while it grows is a pool
    // or buffer climbing to a high-water mark (or replacing allocations made
    // before attach); kept as "growing", not reported as a leak.
    if (ls.verdict.leaking && ls.allocs > 0 && static_cast<double>(ls.frees) > opts_.max_free_fraction * static_cast<double>(ls.allocs)) {
      ls.verdict.leaking = false;
      ls.growing = true;
      ls.verdict.why = "grows, but frees most of what it allocates (" + std::to_string(ls.frees) + " of " +
                       std::to_string(ls.allocs) + "): a pool or buffer reaching its high-water mark? watch longer";
    }
    if (ls.verdict.leaking && ls.verdict.net_growth_bytes < opts_.min_leak_bytes) {
      ls.verdict.leaking = false;
      ls.growing = true;
      ls.verdict.why = "grows steadily but only by " + std::to_string(static_cast<uint64_t>(ls.verdict.net_growth_bytes)) +
                       " bytes in the window (below --min-leak-bytes): watch longer";
    }
    if (ls.verdict.leaking && elapsed_s > 0 && ls.oldest_age_s < opts_.min_oldest_fraction * elapsed_s) {
      ls.verdict.leaking = false;
      char buf[160];
      std::snprintf(buf, sizeof(buf), "grows, but its allocations are freed again (oldest is %.1f s old)",
                    ls.oldest_age_s);
      ls.verdict.why = buf;
    }
    r.outstanding_bytes += ls.bytes;
    r.outstanding_count += ls.count;
    all.push_back(std::move(ls));
  }
  for (auto& ls : all) {
    if (ls.verdict.leaking) r.leaks.push_back(ls);
    else if (ls.growing) r.growing.push_back(ls);
    else if (ls.bytes > 0) r.largest.push_back(ls);
  }
  std::sort(r.leaks.begin(), r.leaks.end(), [](const LeakStack& a, const LeakStack& b) {
    return a.verdict.growth_bytes_per_s > b.verdict.growth_bytes_per_s;
  });
  std::sort(r.largest.begin(), r.largest.end(), [](const LeakStack& a, const LeakStack& b) { return a.bytes > b.bytes; });
  std::sort(r.growing.begin(), r.growing.end(), [](const LeakStack& a, const LeakStack& b) {
    return a.verdict.growth_bytes_per_s > b.verdict.growth_bytes_per_s;
  });
  if (r.leaks.size() > top) r.leaks.resize(top);
  if (r.growing.size() > top) r.growing.resize(top);
  if (r.largest.size() > top) r.largest.resize(top);
  for (auto* list : {&r.leaks, &r.growing, &r.largest})
    for (auto& ls : *list) {
      ls.stack = view_stack(session_, pid_, ls.stack.hash);
      ls.site = allocation_site(ls.stack.frames);
    }
  r.counters = probe_.counters().to_map(true);
  return r;
}

}  // namespace tickprobe
