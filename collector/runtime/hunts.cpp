#include "runtime/hunts.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/log.h"
#include "core/watch.h"
#include "runtime/alloc_profile.h"
#include "targets/target_spec.h"
#include "unwind/go_layout.h"

namespace tickprobe {

namespace {


Result<std::unique_ptr<Session>> open_session(const HuntCommon& c) {
  if (c.pid == 0) return Error("no target given", "pass --pid PID");
  if (process_comm(c.pid).empty()) return Error("process " + std::to_string(c.pid) + " does not exist");
  auto s = Session::create(c.session, {c.pid});
  if (!s) return s.error();
  if (auto st = s.value()->add_target(c.pid); !st) return st.error();
  return s;
}

// The shared watch loop (core/watch.h) for one process: ends at the
// duration, on stop, or when the process exits.
// The seconds it watched (the report's duration) and the window itself.
struct Watched {
  double elapsed_s = 0;
  uint64_t start_ns = 0, end_ns = 0;
};
Watched watch(const HuntCommon& c, Session& session, const std::function<void(int)>& poll,
             const std::function<std::string(double)>& tick) {
  WatchLoop loop;
  loop.duration_s = c.duration_s;
  loop.interval_s = c.interval_s;
  loop.stop = c.stop;
  loop.gone = [&] {
    bool gone = process_comm(c.pid).empty();
    if (gone) TP_LOG_WARN("process %u exited; reporting what was recorded", c.pid);
    return gone;
  };
  loop.poll = poll;
  loop.tick = [&](double elapsed) {
    std::string line = tick(elapsed);
    session.refresh_targets();
    session.stacks().prune_if_needed();
    if (c.on_progress) c.on_progress({elapsed, c.duration_s, line});
  };
  Watched w;
  w.start_ns = monotonic_ns();
  w.elapsed_s = run_watch_loop(loop);
  w.end_ns = monotonic_ns();
  return w;
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
  r.counters = probe.counters().to_map(true);
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
  Watched watched = watch(o.common, s, [&](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
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
  elapsed = watched.elapsed_s;
  CoroReport r = build_coro_report(**probe, s, o.common.pid, std::max(elapsed, 1e-9), o.min_age_s, o.top);
  r.window_start_ns = watched.start_ns;
  r.window_end_ns = watched.end_ns;
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
  // A tick function the user named and the binary lacks is an error, not a note.
  if (o.runtime.has_goroutine_ticks())
    for (const auto& m : rep->missing)
      if (m == o.runtime.tick_begin.describe() || m == o.runtime.tick_end.describe())
        return Error("tick function " + o.runtime.tick_begin.symbol + " not found in " + rep->binary,
                     "Go names look like main.(*Server).tick; list them with `go tool nm " + rep->binary +
                         " | grep -i tick`");
  double elapsed = 0;
  Watched watched = watch(o.common, s, [&](int ms) { p.poll(ms); },
        [&](double t) {
          elapsed = t;
          const auto& procs = hitches.processes();
          auto it = procs.find(o.common.pid);
          char buf[160];
          std::snprintf(buf, sizeof(buf), "ticks %llu  hitches %llu  pauses seen %llu",
                        it == procs.end() ? 0ull : static_cast<unsigned long long>(it->second.frames),
                        it == procs.end() ? 0ull : static_cast<unsigned long long>(it->second.hitches),
                        static_cast<unsigned long long>(p.counters()[TP_CTR_PAUSE_EVENTS]));
          return std::string(buf);
        });
  elapsed = watched.elapsed_s;
  while (p.poll(0) > 0) {
  }
  hitches.flush();

  PauseReport r;
  r.pid = o.common.pid;
  r.comm = s.process_name(o.common.pid);
  r.runtime = o.runtime.name;
  r.duration_s = elapsed;
  r.window_start_ns = watched.start_ns;
  r.window_end_ns = watched.end_ns;
  RuntimeSnapshot snap = p.snapshot();
  for (const auto& [key, h] : snap.histograms) {
    if (key.first != o.common.pid) continue;
    if (key.second == "tick") r.tick = summarize(h);
    else if (key.second == "frame") r.frame = summarize(h);
    else if (key.second.rfind("pause:", 0) == 0) r.pauses[key.second.substr(6)] = summarize(h);
    else if (key.second == "gc_cycle")
      r.pauses["gc_cycle"] = summarize(h);
  }
  for (const auto& pd : o.runtime.pauses)
    if (!r.pauses.count(pd.kind)) r.pauses[pd.kind] = summarize(LatencyHistogram());
  if (o.runtime.has_gc_cycles() && !r.pauses.count("gc_cycle")) r.pauses["gc_cycle"] = summarize(LatencyHistogram());
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
  r.counters = p.counters().to_map(true);
  for (const auto& m : rep->missing) r.notes.push_back("probe not found: " + m);
  if (o.runtime.has_ticks() && r.frames == 0)
    r.notes.push_back("no tick frames seen: is the tick probe firing (" + o.runtime.tick_begin.describe() + ")?");
  return r;
}

// ---------------------------------------------------------------- leaks

const char* const kNoAllocatorCallsHint =
    "is the process allocating at all? If it uses an allocator tickprobe does not see (statically linked and "
    "stripped, a custom arena, or a prefixed build: --allocator-prefix), the leak hunt is blind; rerun with -v to "
    "see where each entry point resolved";

std::string no_allocator_calls_warning(uint32_t pid, double seconds, const std::vector<LeakAttachedObject>& objects) {
  char head[96];
  std::snprintf(head, sizeof head, "saw 0 allocator calls in %.0f s from pid %u; attached ", seconds, pid);
  std::string s = head;
  bool first_obj = true;
  for (const auto& obj : objects) {
    if (!first_obj) s += "; ";
    first_obj = false;
    constexpr size_t kShown = 8;
    for (size_t i = 0; i < obj.functions.size() && i < kShown; i++) s += (i ? "," : "") + obj.functions[i];
    if (obj.functions.size() > kShown) s += ",+" + std::to_string(obj.functions.size() - kShown) + " more";
    s += " in " + obj.object;
  }
  if (objects.empty()) s += "nothing";
  return s;
}

namespace {

std::vector<LeakAttachedObject> group_by_object(const AllocAttachReport& rep) {
  std::vector<LeakAttachedObject> out;
  for (const auto& a : rep.attachments) {
    auto it = std::find_if(out.begin(), out.end(), [&](const LeakAttachedObject& o) { return o.object == a.object; });
    if (it == out.end()) it = out.insert(out.end(), LeakAttachedObject{a.object, a.reason, {}});
    it->functions.push_back(a.function);
  }
  return out;
}

}  // namespace

// A Go program's heap comes from its runtime's sampled profile: its mmaps
// (the runtime's arenas, never unmapped) are not allocation sites.
static AllocOptions alloc_options_for(const AllocOptions& base, uint32_t pid) {
  AllocOptions a = base;
  if (is_go_executable("/proc/" + std::to_string(pid) + "/exe")) {
    a.track_mmap = false;
    a.sample_bytes = kGoMemProfileRate;
  }
  return a;
}

Result<LeakReport> run_leak_hunt(const LeakHuntOptions& o) {
  auto session = open_session(o.common);
  if (!session) return session.error();
  Session& s = **session;
  auto probe = AllocProbe::create(s, alloc_options_for(o.alloc, o.common.pid));
  if (!probe) return probe.error();
  AllocProbe& ap = **probe;
  auto rep = ap.attach_process(o.common.pid);
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

  std::vector<LeakAttachedObject> objects = group_by_object(*rep);
  LeakTracker tracker(ap, s, o.common.pid, o.judge);
  double elapsed = 0;
  bool warned = false;
  tracker.sample(0);
  Watched watched = watch(o.common, s, [&](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
        [&](double t) {
          elapsed = t;
          double total = tracker.sample(t);
          auto c = ap.counters();
          // Silence from an allocator is not "no leak": say loudly what was probed.
          if (!warned && t >= o.no_calls_warn_s && c[TP_CTR_ALLOC_CALLS] + c[TP_CTR_FREE_CALLS] == 0) {
            warned = true;
            TP_LOG_WARN("%s", no_allocator_calls_warning(o.common.pid, t, objects).c_str());
            TP_LOG_WARN("hint: %s", kNoAllocatorCallsHint);
          }
          char buf[200];
          std::snprintf(buf, sizeof(buf), "outstanding %.1f MiB  stacks %zu  leak suspects %zu  allocs %llu  dropped %llu",
                        total / 1048576.0, tracker.stacks(), tracker.suspects(),
                        static_cast<unsigned long long>(c[TP_CTR_ALLOC_CALLS]),
                        static_cast<unsigned long long>(c[TP_ERR_TRACK_FULL] + c[TP_ERR_COUNTS_FULL]));
          return std::string(buf);
        });
  elapsed = watched.elapsed_s;
  if (elapsed > tracker.last_sample_s() + 0.2) tracker.sample(elapsed);

  LeakReport r = tracker.report(elapsed, o.top);
  r.window_start_ns = watched.start_ns;
  r.window_end_ns = watched.end_ns;
  r.interval_s = o.common.interval_s;
  r.attached = rep->attached;
  r.attached_objects = objects;
  r.allocator_object = rep->allocator_object;
  r.counters = ap.counters().to_map(true);
  if (r.counters["alloc_calls"] + r.counters["free_calls"] == 0)
    r.warning = no_allocator_calls_warning(o.common.pid, elapsed, objects);
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

Result<AllocsResult> run_allocs_hunt(const AllocsHuntOptions& o) {
  auto session = open_session(o.common);
  if (!session) return session.error();
  Session& s = **session;
  auto probe = AllocProbe::create(s, alloc_options_for(o.alloc, o.common.pid));
  if (!probe) return probe.error();
  AllocProbe& ap = **probe;
  auto rep = ap.attach_process(o.common.pid);
  if (!rep) return rep.error();
  if (o.on_attached) o.on_attached(*rep);
  std::vector<LeakAttachedObject> objects = group_by_object(*rep);
  auto wall_start = std::chrono::system_clock::now();
  bool warned = false;
  double elapsed = watch(o.common, s, [&](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                         [&](double t) {
                           auto c = ap.counters();
                           if (!warned && t >= 5 && c[TP_CTR_ALLOC_CALLS] + c[TP_CTR_FREE_CALLS] == 0) {
                             warned = true;
                             TP_LOG_WARN("%s", no_allocator_calls_warning(o.common.pid, t, objects).c_str());
                             TP_LOG_WARN("hint: %s", kNoAllocatorCallsHint);
                           }
                           char buf[160];
                           std::snprintf(buf, sizeof(buf), "allocator calls %llu  sampled %llu  stacks %zu",
                                         static_cast<unsigned long long>(c[TP_CTR_ALLOC_CALLS]),
                                         static_cast<unsigned long long>(c[TP_CTR_ALLOCS_TRACKED]),
                                         ap.stack_totals().size());
                           return std::string(buf);
                         }).elapsed_s;
  AllocsResult r;
  AllocProfileOptions po;
  po.pid = o.common.pid;
  po.default_type = AllocProfileDefault::kAllocSpace;
  r.profile = build_alloc_profile(ap, s, ap.stack_totals(), po);
  r.profile.time_nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall_start.time_since_epoch()).count();
  r.profile.duration_nanos = static_cast<int64_t>(elapsed * 1e9);
  r.allocator_object = rep->allocator_object;
  auto c = ap.counters();
  if (c[TP_CTR_ALLOC_CALLS] + c[TP_CTR_FREE_CALLS] == 0)
    r.warning = no_allocator_calls_warning(o.common.pid, elapsed, objects);
  return r;
}

Result<Profile> run_growth_hunt(const GrowthHuntOptions& o) {
  auto session = open_session(o.common);
  if (!session) return session.error();
  Session& s = **session;
  auto probe = GrowthProbe::create(s, o.growth);
  if (!probe) return probe.error();
  GrowthProbe& gp = **probe;
  StackAggregate agg(4);
  gp.subscribe(&agg);
  if (o.on_started) o.on_started();
  auto wall_start = std::chrono::system_clock::now();
  double elapsed = watch(o.common, s, [&](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
                         [&](double) {
                           gp.drain();
                           auto t = agg.totals();
                           char buf[160];
                           std::snprintf(buf, sizeof(buf), "page faults %.1f MiB  brk %.1f MiB  mmap %.1f MiB",
                                         static_cast<double>(t[kGrowthFaultSpace]) / 1048576.0,
                                         static_cast<double>(t[kGrowthBrkSpace]) / 1048576.0,
                                         static_cast<double>(t[kGrowthMmapSpace]) / 1048576.0);
                           return std::string(buf);
                         }).elapsed_s;
  gp.drain();
  gp.unsubscribe(&agg);
  Profile p = build_profile(agg, s, gp.shape());
  p.time_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(wall_start.time_since_epoch()).count();
  p.duration_nanos = static_cast<int64_t>(elapsed * 1e9);
  if (o.growth.fault_sample_every > 1)
    p.comments.push_back("page faults sampled one in " + std::to_string(o.growth.fault_sample_every) +
                         "; values scaled up");
  p.comments.push_back("page_fault_space: first touches of anonymous pages (resident growth, 4 KiB each); "
                       "brk_space, mmap_space: address space requested");
  for (const auto& [name, value] : gp.counters().to_map(true)) p.counters[name] = value;
  return p;
}

}  // namespace tickprobe
