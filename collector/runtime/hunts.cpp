#include "runtime/hunts.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "core/log.h"
#include "targets/target_spec.h"

namespace tickprobe {

namespace {

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

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

Result<std::unique_ptr<Session>> open_session(const HuntCommon& c) {
  if (c.pid == 0) return Error("no target given", "pass --pid PID");
  if (process_comm(c.pid).empty()) return Error("process " + std::to_string(c.pid) + " does not exist");
  auto s = Session::create(c.session);
  if (!s) return s.error();
  if (auto st = s.value()->add_target(c.pid); !st) return st.error();
  return s;
}

// Runs the watch loop: calls tick() every interval and poll() in between,
// until the duration is over, the stop flag is set or the target exits.
void watch(const HuntCommon& c, Session& session, const std::function<void(int)>& poll,
           const std::function<std::string(double)>& tick) {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto interval = std::chrono::duration<double>(c.interval_s);
  auto next = start + std::chrono::duration_cast<clock::duration>(interval);
  for (;;) {
    double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    bool done = (c.duration_s > 0 && elapsed >= c.duration_s) || (c.stop && c.stop->load());
    bool gone = process_comm(c.pid).empty();
    if (done || gone) {
      if (gone) TP_LOG_WARN("process %u exited; reporting what was recorded", c.pid);
      break;
    }
    poll(50);
    if (clock::now() >= next) {
      std::string line = tick(std::chrono::duration<double>(clock::now() - start).count());
      session.refresh_targets();
      session.stacks().prune_if_needed();
      if (c.on_progress) c.on_progress({elapsed, c.duration_s, line});
      next += std::chrono::duration_cast<clock::duration>(interval);
    }
  }
}

LatencySummary summarize(const LatencyHistogram& h) {
  LatencySummary s;
  s.hist = h;
  s.p50_ns = h.quantile(0.5);
  s.p90_ns = h.quantile(0.9);
  s.p99_ns = h.quantile(0.99);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- coroutines

CoroReport build_coro_report(RuntimeProbe& probe, Session& session, uint32_t pid, double elapsed_s, double min_age_s,
                             size_t top) {
  CoroReport r;
  r.pid = pid;
  r.comm = session.process_name(pid);
  r.runtime = probe.description().name;
  r.duration_s = elapsed_s;
  r.min_age_s = min_age_s;
  RuntimeSnapshot snap = probe.snapshot();
  if (auto it = snap.coroutines.find(pid); it != snap.coroutines.end()) r.counts = it->second;
  r.live = r.counts.live();
  if (elapsed_s > 0) {
    r.create_rate = static_cast<double>(r.counts.created) / elapsed_s;
    r.destroy_rate = static_cast<double>(r.counts.destroyed + r.counts.destroyed_untracked) / elapsed_s;
  }
  auto hist = [&](const char* series) {
    auto it = snap.histograms.find({pid, series});
    return it == snap.histograms.end() ? LatencyHistogram() : it->second;
  };
  r.lifetime = hist("coro_lifetime");
  r.run = hist("coro_run");
  r.suspended = hist("coro_suspended");
  for (const auto& [key, cd] : snap.coroutine_names) {
    if (key.first != pid) continue;
    r.by_name.push_back({key.second, cd.first, cd.second, static_cast<int64_t>(cd.first) - static_cast<int64_t>(cd.second)});
  }
  std::sort(r.by_name.begin(), r.by_name.end(), [](const auto& a, const auto& b) { return a.live > b.live; });

  uint64_t now = monotonic_ns();
  std::map<std::pair<std::string, uint64_t>, CoroGroup> groups;
  for (const auto& c : probe.live_coroutines(pid)) {
    double age = c.adopted ? elapsed_s : static_cast<double>(now - std::min(now, c.birth_ns)) / 1e9;
    if (age < min_age_s) continue;
    r.suspects++;
    auto& g = groups[{c.adopted ? "(created before attach)" : c.name, c.user_stack}];
    if (g.count == 0) {
      g.name = c.adopted ? "(created before attach)" : (c.name.empty() ? "(unnamed)" : c.name);
      g.stack.hash = c.user_stack;
      g.adopted = c.adopted;
      g.youngest_age_s = age;
    }
    g.count++;
    g.oldest_age_s = std::max(g.oldest_age_s, age);
    g.youngest_age_s = std::min(g.youngest_age_s, age);
  }
  for (auto& [_, g] : groups) r.groups.push_back(std::move(g));
  std::sort(r.groups.begin(), r.groups.end(), [](const CoroGroup& a, const CoroGroup& b) {
    return a.count != b.count ? a.count > b.count : a.oldest_age_s > b.oldest_age_s;
  });
  if (r.groups.size() > top) r.groups.resize(top);
  for (auto& g : r.groups)
    g.stack = g.adopted ? StackView{0, {"[created before tickprobe attached]"}} : view_stack(session, pid, g.stack.hash);
  r.counters = probe.counters();
  if (r.counts.destroyed_untracked)
    r.notes.push_back(std::to_string(r.counts.destroyed_untracked) +
                      " coroutines created before tickprobe attached were destroyed during the run; coroutines created "
                      "before attach are not in the live count" +
                      (probe.options().trace_resume ? "" : " (--trace-resume adopts those that resume)"));
  if (r.counts.untracked)
    r.notes.push_back(std::to_string(r.counts.untracked) + " coroutines were not tracked: the coroutine map was full");
  return r;
}

Result<CoroReport> run_coro_hunt(const CoroHuntOptions& o) {
  auto session = open_session(o.common);
  if (!session) return session.error();
  Session& s = **session;
  RuntimeOptions ro;
  ro.description = o.runtime;
  ro.trace_resume = o.trace_resume;
  ro.ticks = false;
  ro.pauses = false;
  if (!o.runtime.has_coroutines())
    return Error("runtime \"" + o.runtime.name + "\" describes no coroutine probes", "pass --runtime FILE.json");
  auto probe = RuntimeProbe::create(s, ro);
  if (!probe) return probe.error();
  auto rep = probe.value()->attach_process(o.common.pid);
  if (!rep) return rep.error();
  double last_t = 0;
  uint64_t last_created = 0;
  double elapsed = 0;
  watch(o.common, s, [&](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
        [&](double t) {
          elapsed = t;
          auto snap = probe.value()->snapshot();
          CoroCounts c = snap.coroutines.count(o.common.pid) ? snap.coroutines[o.common.pid] : CoroCounts{};
          char buf[160];
          std::snprintf(buf, sizeof(buf), "live %lld  created %llu (%.0f/s)  destroyed %llu",
                        static_cast<long long>(c.live()), static_cast<unsigned long long>(c.created),
                        t > last_t ? static_cast<double>(c.created - last_created) / (t - last_t) : 0.0,
                        static_cast<unsigned long long>(c.destroyed + c.destroyed_untracked));
          last_t = t;
          last_created = c.created;
          return std::string(buf);
        });
  auto start_guess = elapsed;
  (void)start_guess;
  CoroReport r = build_coro_report(**probe, s, o.common.pid, std::max(elapsed, 1e-9), o.min_age_s, o.top);
  for (const auto& m : rep->missing) r.notes.push_back("probe not found: " + m);
  return r;
}

// ---------------------------------------------------------------- pauses

Result<PauseReport> run_pause_hunt(const PauseHuntOptions& o) {
  auto session = open_session(o.common);
  if (!session) return session.error();
  Session& s = **session;
  RuntimeOptions ro;
  ro.description = o.runtime;
  ro.coroutines = false;
  if (!o.runtime.has_ticks() && o.runtime.pauses.empty())
    return Error("runtime \"" + o.runtime.name + "\" describes no tick or pause probes", "pass --runtime FILE.json");
  auto probe = RuntimeProbe::create(s, ro);
  if (!probe) return probe.error();
  RuntimeProbe& p = **probe;
  HitchAnalyzer hitches(o.hitch);
  std::vector<PauseRecord> worst;
  p.on_frame([&](const FrameRecord& f) {
    if (f.tgid == o.common.pid) hitches.add(f);
  });
  p.on_pause([&](const PauseRecord& pr) {
    if (pr.tgid != o.common.pid) return;
    worst.push_back(pr);
    std::sort(worst.begin(), worst.end(),
              [](const PauseRecord& a, const PauseRecord& b) { return a.duration_ns > b.duration_ns; });
    if (worst.size() > o.top) worst.resize(o.top);
  });
  auto rep = p.attach_process(o.common.pid);
  if (!rep) return rep.error();
  double elapsed = 0;
  watch(o.common, s, [&](int ms) { p.poll(ms); },
        [&](double t) {
          elapsed = t;
          const auto& procs = hitches.processes();
          auto it = procs.find(o.common.pid);
          char buf[160];
          std::snprintf(buf, sizeof(buf), "ticks %llu  hitches %llu  pauses seen %llu",
                        it == procs.end() ? 0ull : static_cast<unsigned long long>(it->second.frames),
                        it == procs.end() ? 0ull : static_cast<unsigned long long>(it->second.hitches),
                        static_cast<unsigned long long>(p.counters()["pause_events"]));
          return std::string(buf);
        });
  while (p.poll(0) > 0) {
  }
  hitches.flush();

  PauseReport r;
  r.pid = o.common.pid;
  r.comm = s.process_name(o.common.pid);
  r.runtime = o.runtime.name;
  r.duration_s = elapsed;
  RuntimeSnapshot snap = p.snapshot();
  for (const auto& [key, h] : snap.histograms) {
    if (key.first != o.common.pid) continue;
    if (key.second == "tick") r.tick = summarize(h);
    else if (key.second == "frame") r.frame = summarize(h);
    else if (key.second.rfind("pause:", 0) == 0) r.pauses[key.second.substr(6)] = summarize(h);
  }
  for (const auto& pd : o.runtime.pauses)
    if (!r.pauses.count(pd.kind)) r.pauses[pd.kind] = summarize(LatencyHistogram());
  if (auto it = hitches.processes().find(o.common.pid); it != hitches.processes().end()) {
    r.budget_ns = it->second.budget_ns;
    r.budget_inferred = it->second.budget_inferred;
    r.frames = it->second.frames;
    r.hitches = it->second.hitches;
    r.hitches_by_cause = it->second.hitches_by_cause;
    r.worst_hitches = it->second.worst;
    if (r.worst_hitches.size() > o.top) r.worst_hitches.resize(o.top);
  }
  for (const auto& pr : worst) r.worst_pauses.push_back({pr, view_stack(s, o.common.pid, pr.user_stack)});
  r.counters = p.counters();
  for (const auto& m : rep->missing) r.notes.push_back("probe not found: " + m);
  if (o.runtime.has_ticks() && r.frames == 0)
    r.notes.push_back("no tick frames seen: is the tick probe firing (" + o.runtime.tick_begin.describe() + ")?");
  return r;
}

// ---------------------------------------------------------------- leaks

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
    if (f.find("allocator<") != std::string::npos && f.find("::allocate") != std::string::npos) continue;
    if (f.find("new_allocator<") != std::string::npos) continue;
    return f;
  }
  return frames.empty() ? "[unknown]" : frames.back();
}

Result<LeakReport> run_leak_hunt(const LeakHuntOptions& o) {
  auto session = open_session(o.common);
  if (!session) return session.error();
  Session& s = **session;
  auto probe = AllocProbe::create(s, o.alloc);
  if (!probe) return probe.error();
  AllocProbe& ap = **probe;
  auto rep = ap.attach(o.common.pid);
  if (!rep) return rep.error();
  std::unique_ptr<RuntimeProbe> rt;
  std::optional<RuntimeAttachReport> rt_rep;
  if (o.coroutines) {
    RuntimeOptions ro;
    ro.description = o.runtime;
    ro.ticks = false;
    ro.pauses = false;
    auto r = RuntimeProbe::create(s, ro);
    if (!r) return r.error();
    rt = r.take();
    auto a = rt->attach_process(o.common.pid);
    if (!a) return Error("--coroutines: " + a.error().message, a.error().hint);
    rt_rep = a.take();
  }

  LeakSeries<AllocStackKey> series;
  size_t intervals = 0;
  double elapsed = 0, prev_t = 0;
  std::set<AllocStackKey> known;
  auto sample = [&](double t) {
    double total = 0;
    for (const auto& [k, v] : ap.stack_totals()) {
      if (k.tgid != o.common.pid) continue;
      double bytes = ap.estimate_bytes(static_cast<double>(std::max<int64_t>(0, v.outstanding_bytes)),
                                       static_cast<double>(std::max<int64_t>(0, v.outstanding_count)));
      double count = ap.estimate_count(static_cast<double>(std::max<int64_t>(0, v.outstanding_bytes)),
                                       static_cast<double>(std::max<int64_t>(0, v.outstanding_count)));
      // A stack first seen now had nothing outstanding at the previous sample.
      if (known.insert(k).second && intervals > 0) series.add(k, {prev_t, 0, 0});
      series.add(k, {t, bytes, count});
      total += bytes;
    }
    intervals++;
    prev_t = t;
    return total;
  };
  sample(0);
  watch(o.common, s, [&](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
        [&](double t) {
          elapsed = t;
          double total = sample(t);
          size_t suspects = 0;
          for (const auto& [k, pts] : series.all())
            if (judge_growth(pts, o.criteria).leaking) suspects++;
          auto c = ap.counters();
          char buf[200];
          std::snprintf(buf, sizeof(buf), "outstanding %.1f MiB  stacks %zu  leak suspects %zu  allocs %llu  dropped %llu",
                        total / 1048576.0, series.size(), suspects,
                        static_cast<unsigned long long>(c["alloc_calls"]),
                        static_cast<unsigned long long>(c["tracking_map_full"] + c["counts_full"]));
          return std::string(buf);
        });
  if (elapsed > prev_t + 0.2) sample(elapsed);

  LeakReport r;
  r.pid = o.common.pid;
  r.comm = s.process_name(o.common.pid);
  r.duration_s = elapsed;
  r.interval_s = o.common.interval_s;
  r.sample_bytes = o.alloc.sample_bytes;
  r.intervals = intervals;
  r.attached = rep->attached;
  auto totals = ap.stack_totals();
  auto ages = ap.ages(o.common.pid);
  auto replaced = ap.untracked_frees(o.common.pid);
  replaced.erase(0);
  uint64_t now = monotonic_ns();
  std::vector<LeakStack> all;
  for (const auto& [k, pts] : series.all()) {
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
    ls.verdict = judge_growth(pts, o.criteria);
    // Leaked memory is never freed, so its oldest allocation is about as old
    // as the hunt. Growth made of allocations that are freed again soon
    // (a queue or a heap between GC cycles filling up) is churn.
    // Retained objects, not buffers that grew: the number of outstanding
    // allocations must grow too.
    if (ls.verdict.leaking) {
      std::vector<LeakPoint> counts;
      for (const auto& p : pts) counts.push_back({p.t_s, p.count, p.count});
      LeakCriteria cc = o.criteria;
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
    if (ls.verdict.leaking && ls.allocs > 0 && static_cast<double>(ls.frees) > o.max_free_fraction * static_cast<double>(ls.allocs)) {
      ls.verdict.leaking = false;
      ls.growing = true;
      ls.verdict.why = "grows, but frees most of what it allocates (" + std::to_string(ls.frees) + " of " +
                       std::to_string(ls.allocs) + "): a pool or buffer reaching its high-water mark? watch longer";
    }
    if (ls.verdict.leaking && elapsed > 0 && ls.oldest_age_s < o.min_oldest_fraction * elapsed) {
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
  if (r.leaks.size() > o.top) r.leaks.resize(o.top);
  if (r.growing.size() > o.top) r.growing.resize(o.top);
  if (r.largest.size() > o.top) r.largest.resize(o.top);
  for (auto* list : {&r.leaks, &r.growing, &r.largest})
    for (auto& ls : *list) {
      ls.stack = view_stack(s, o.common.pid, ls.stack.hash);
      ls.site = allocation_site(ls.stack.frames);
    }
  r.counters = ap.counters();
  if (r.counters["tracking_map_full"])
    r.notes.push_back(std::to_string(r.counters["tracking_map_full"]) +
                      " allocations were not tracked because the allocation map was full (raise --max-tracked or "
                      "use --sample-bytes)");
  if (rt) {
    r.coroutines = build_coro_report(*rt, s, o.common.pid, std::max(elapsed, 1e-9), o.coro_min_age_s, o.top);
    for (const auto& m : rt_rep->missing) r.coroutines->notes.push_back("probe not found: " + m);
  }
  return r;
}

}  // namespace tickprobe
