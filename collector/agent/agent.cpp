#include "agent/agent.h"

#include <bpf/bpf.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/log.h"
#include "core/watch.h"
#include "runtime/alloc_profile.h"

namespace tickprobe {

// A short, bounded label for why a family did not attach to a process: the
// families' errors are sentences, the metric needs a handful of values.
std::string attach_failure_reason(const Error& err) {
  const std::string& m = err.message;
  auto has = [&](const char* s) { return m.find(s) != std::string::npos; };
  if (has("no USDT probe") || has("no probe of runtime")) return "no_runtime_probes";
  if (has("no OpenSSL")) return "no_openssl";
  if (has("defines") || has("allocator")) return "no_allocator";
  if (has("is gone") || has("No such process")) return "process_gone";
  if (has("Operation not permitted") || has("Permission denied")) return "permission";
  if (has("No such file")) return "not_found";
  if (has("Invalid argument")) return "invalid_argument";
  if (has("Cannot allocate memory") || has("Argument list too long")) return "resource_limit";
  return "attach_error";
}

Result<std::vector<const FamilySpec*>> agent_families(const AgentOptions& opts) {
  for (const auto& n : opts.enable)
    if (!find_family(n)) return Error("usage: unknown probe family \"" + n + "\"", "run `tickprobe doctor` for the list");
  for (const auto& n : opts.disable)
    if (!find_family(n)) return Error("usage: unknown probe family \"" + n + "\"", "run `tickprobe doctor` for the list");
  for (const auto& [fam, kv] : opts.settings) {
    const FamilySpec* spec = find_family(fam);
    if (!spec) return Error("usage: unknown probe family \"" + fam + "\" in --family-opt");
    for (const auto& [k, v] : kv) {
      bool known = false;
      for (const char* key : spec->setting_keys) known = known || k == key;
      if (!known) {
        std::string keys;
        for (const char* key : spec->setting_keys) keys += std::string(keys.empty() ? "" : ", ") + key;
        return Error("usage: family " + fam + " has no setting \"" + k + "\"",
                     keys.empty() ? "it takes no settings" : "its settings: " + keys);
      }
    }
  }
  std::vector<const FamilySpec*> out;
  for (const auto& spec : family_registry()) {
    bool on = (spec.agent_default_on || opts.enable.count(spec.name)) && !opts.disable.count(spec.name);
    if (on) out.push_back(&spec);
  }
  return out;
}

Result<std::unique_ptr<Agent>> Agent::create(const AgentOptions& opts) {
  if (opts.targets.empty()) return Error("no target given", "pass --pid PID, --comm NAME or --exe PATH");
  auto specs = agent_families(opts);
  if (!specs) return specs.error();
  if (!(opts.drain_interval_s > 0) || opts.drain_interval_s > 3600)
    return Error("usage: --interval must be in (0, 3600] seconds", "e.g. --interval 1");
  if (!(opts.session.retention.forget_exited_after_s >= 0))
    return Error("usage: --forget-exited-after must be a duration >= 0", "e.g. --forget-exited-after 300s");
  // Memory (issue 12): big transient buffers (unwind tables being built,
  // a capture's symbolized profile, pprof encoding) get their own mappings,
  // returned on free, instead of glibc raising its mmap threshold after the
  // first one and keeping them in the heap; two arenas, not eight per core,
  // for a process whose threads mostly wait.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 2);
  std::unique_ptr<Agent> a(new Agent(opts));
  // What runs now (attached below; the watcher catches what starts later)
  // also sizes the maps that are sized to need.
  auto running = resolve_targets(opts.targets);
  auto session = Session::create(opts.session, running);
  if (!session) return session.error();
  a->session_ = session.take();
  for (const FamilySpec* spec : *specs) {
    auto it = opts.settings.find(spec->name);
    FamilySettings settings(it == opts.settings.end() ? std::map<std::string, std::string>{} : it->second);
    auto fam = spec->create(*a->session_, settings);
    if (!fam) return fam.error();
    a->families_.push_back(fam.take());
  }
  for (auto& f : a->families_) {
    if (!a->cpu_) a->cpu_ = dynamic_cast<CpuProfileProbe*>(f.get());
    if (!a->offcpu_) a->offcpu_ = dynamic_cast<OffCpuProbe*>(f.get());
    if (!a->runtime_) a->runtime_ = dynamic_cast<RuntimeProbe*>(f.get());
    if (!a->alloc_) a->alloc_ = dynamic_cast<AllocProbe*>(f.get());
    if (!a->growth_) a->growth_ = dynamic_cast<GrowthProbe*>(f.get());
  }
  Agent* self = a.get();
  if (a->runtime_) {
    a->runtime_->on_frame([self](const FrameRecord& f) {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->hitches_.add(f);
    });
    // An executable given by path is covered from its first instruction, in
    // every process that runs it (startup coroutines included).
    for (const auto& exe : opts.targets.exes) {
      if (exe.empty() || exe[0] != '/') continue;
      if (auto rep = a->runtime_->attach_binary(exe); rep)
        TP_LOG_INFO("runtime probes attached to %s (%zu probes)", exe.c_str(), rep->attached.size());
      else
        TP_LOG_WARN("no runtime probes in %s: %s", exe.c_str(), rep.error().message.c_str());
    }
  }
  auto watcher = TargetWatcher::create(*a->session_, [self](const ProcessEvent& ev) { self->on_process_event(ev); });
  if (!watcher) return watcher.error();
  a->watcher_ = watcher.take();
  // Attach to what runs now; the watcher catches what starts later.
  size_t attached_somewhere = 0;
  std::string first_error;
  for (uint32_t pid : running) {
    if (auto st = a->session_->add_target(pid); !st) {
      TP_LOG_WARN("cannot trace process %u: %s", pid, st.error().message.c_str());
      if (first_error.empty()) first_error = st.error().message;
    } else if (a->attach_target(pid) > 0) {
      attached_somewhere++;
    }
  }
  // Processes match but nothing works on any of them: an agent that would
  // only serve empty metrics is a failure, not a degraded state.
  if (!running.empty() && attached_somewhere == 0)
    return Error("nothing could be attached to any of the " + std::to_string(running.size()) + " matching process(es)" +
                     (first_error.empty() ? std::string() : ": " + first_error),
                 "run `tickprobe doctor`; the warnings above name each family's reason");
  if (a->session_->targets().empty())
    TP_LOG_WARN("no running process matches %s yet; waiting for one to start", opts.targets.describe().c_str());
  a->started_ = std::chrono::steady_clock::now();
  return a;
}

Agent::~Agent() {
  // Shutdown time is the kernel's detach time: every family detaches at
  // once, each from its own thread (docs/agent.md "Shutdown").
  std::vector<std::thread> threads;
  for (auto& f : families_) threads.emplace_back([fam = f.get()] { fam->release_links(); });
  if (watcher_) threads.emplace_back([w = watcher_.get()] { w->release_links(); });
  for (auto& t : threads) t.join();
}

std::vector<std::string> Agent::family_names() const {
  std::vector<std::string> out;
  for (const auto& f : families_) out.push_back(f->name());
  return out;
}

bool Agent::attach_family(uint32_t pid, Family& f, Error* error) {
  if (auto st = f.attach(pid); !st) {
    *error = st.error();
    return false;
  }
  if (&f == alloc_) {
    std::lock_guard<std::mutex> lock(mu_);
    leak_trackers_[pid] = std::make_unique<LeakTracker>(*alloc_, *session_, pid, opts_.leak_judge);
  }
  return true;
}

size_t Agent::attach_target(uint32_t pid) {
  size_t attached = 0;
  heap_churn_++;  // its unwind tables were just built and freed
  for (auto& f : families_) {
    Error err;
    if (attach_family(pid, *f, &err)) {
      attached++;
      continue;
    }
    // Not an agent failure (the other families go on), but never silent:
    // logged, counted by reason, and /healthz says "degraded".
    record_attach_failure(pid, f->name(), err);
    // A process caught at exec has not mapped its libraries yet (the
    // dynamic linker runs after the exec event), so the family is retried
    // for a while; a later success clears the degraded state.
    pending_attach_[pid].push_back({f.get(), std::chrono::steady_clock::now()});
  }
  return attached;
}

void Agent::retry_pending_attaches() {
  auto now = std::chrono::steady_clock::now();
  for (auto it = pending_attach_.begin(); it != pending_attach_.end();) {
    auto& list = it->second;
    for (auto p = list.begin(); p != list.end();) {
      Error err;
      if (attach_family(it->first, *p->family, &err)) {
        TP_LOG_INFO("process %u: %s family attached on retry", it->first, p->family->name());
        std::lock_guard<std::mutex> lock(mu_);
        attach_failed_.erase({it->first, p->family->name()});
        p = list.erase(p);
      } else if (now - p->first >= std::chrono::duration<double>(opts_.attach_retry_s)) {
        p = list.erase(p);
      } else {
        ++p;
      }
    }
    it = list.empty() ? pending_attach_.erase(it) : std::next(it);
  }
}

void Agent::record_attach_failure(uint32_t pid, const std::string& family, const Error& err) {
  std::string reason = attach_failure_reason(err);
  // TLS applies only to processes that load OpenSSL: its absence is
  // counted and logged at info level, not a degraded agent.
  const bool not_applicable = reason == "no_openssl";
  {
    std::lock_guard<std::mutex> lock(mu_);
    attach_failures_[{family, reason}]++;
    if (!not_applicable) attach_failed_.insert({pid, family});
  }
  if (not_applicable) {
    TP_LOG_INFO("process %u (%s): %s family not attached (%s): %s", pid, session_->process_name(pid).c_str(),
                family.c_str(), reason.c_str(), err.message.c_str());
    return;
  }
  // One line per target, family and reason (attach runs once per process
  // image); an exec storm of failures is summarized by the logger.
  TP_LOG_WARN("process %u (%s): %s family not attached (%s): %s", pid, session_->process_name(pid).c_str(),
              family.c_str(), reason.c_str(), err.message.c_str());
}

void Agent::detach_target(uint32_t pid) {
  // Keep the last view of an exited target for its final scrape.
  RuntimeSnapshot snap;
  if (runtime_) snap = runtime_->snapshot();
  RuntimeTargetStats rs = runtime_stats(pid, runtime_ ? &snap : nullptr);
  for (auto& f : families_) f->detach(pid);
  pending_attach_.erase(pid);
  std::lock_guard<std::mutex> lock(mu_);
  leak_trackers_.erase(pid);
  leak_reports_.erase(pid);
  auto it = per_target_.find(pid);
  if (it != per_target_.end() && (rs.has_coroutines || !rs.histograms.empty())) it->second.runtime = rs;
}

void Agent::on_process_event(const ProcessEvent& ev) {
  auto targets = session_->targets();
  bool traced = targets.count(ev.tgid) > 0;
  if (ev.kind == ProcessEvent::Kind::kExit) {
    if (traced || known_alive(ev.tgid)) handle_exit(ev.tgid);
    return;
  }
  // exec: a new image. Trace it if it matches, and re-read a traced one.
  bool match = opts_.targets.matches(ev.tgid, ev.comm, process_exe(ev.tgid));
  if (traced) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      attach_failed_.erase(attach_failed_.lower_bound({ev.tgid, std::string()}),
                           attach_failed_.lower_bound({ev.tgid + 1, std::string()}));
    }
    detach_target(ev.tgid);
    session_->remove_target(ev.tgid);
    session_->symbolizer().forget_process(ev.tgid);
  }
  if (match) {
    if (auto st = session_->add_target(ev.tgid); !st) {
      TP_LOG_WARN("cannot trace new process %u: %s", ev.tgid, st.error().message.c_str());
    } else {
      TP_LOG_INFO("tracing new process %u (%s)", ev.tgid, ev.comm.c_str());
      attach_target(ev.tgid);
    }
  }
}

void Agent::drain_once() {
  // Called from the run loop, from exit events and from capture() on HTTP
  // threads; the families' drains flip their active slot, so serialize them.
  std::lock_guard<std::mutex> drain_lock(drain_mu_);
  for (auto& f : families_) f->drain();
  std::lock_guard<std::mutex> lock(mu_);
  drains_++;
  for (uint32_t pid : session_->targets()) {
    auto& t = per_target_[pid];
    t.pid = pid;
    if (t.comm.empty()) t.comm = session_->process_name(pid);
  }
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  for (auto& [pid, tracker] : leak_trackers_) tracker->sample(t);
}

bool Agent::known_alive(uint32_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_target_.find(pid);
  return it != per_target_.end() && it->second.alive;
}

void Agent::handle_exit(uint32_t pid) {
  drain_once();  // keep what it did before it went away
  detach_target(pid);
  session_->remove_target(pid);
  std::lock_guard<std::mutex> lock(mu_);
  attach_failed_.erase(attach_failed_.lower_bound({pid, std::string()}),
                       attach_failed_.lower_bound({pid + 1, std::string()}));
  auto it = per_target_.find(pid);
  if (it != per_target_.end() && it->second.alive) {
    it->second.alive = false;
    exited_order_.emplace_back(pid, std::chrono::steady_clock::now());
  }
}

void Agent::reap_untraced() {
  // Session::refresh_targets() drops targets that died; when it does so
  // before their exit event is read, the event finds no target. Without
  // this, such a process would keep its links and series forever.
  auto targets = session_->targets();
  std::vector<uint32_t> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [pid, t] : per_target_)
      if (t.alive && !targets.count(pid)) gone.push_back(pid);
  }
  for (uint32_t pid : gone) handle_exit(pid);
}

void Agent::forget_exited(std::chrono::steady_clock::time_point now) {
  // Drop exited targets' series after the retention time (or when too many
  // exited ones are kept); their ticks and hitches are folded into the
  // all-process totals, so those stay monotonic.
  const auto& ret = opts_.session.retention;
  auto keep = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(ret.forget_exited_after_s));
  std::lock_guard<std::mutex> lock(mu_);
  while (!exited_order_.empty() &&
         (exited_order_.size() > ret.max_exited || now - exited_order_.front().second >= keep)) {
    uint32_t pid = exited_order_.front().first;
    exited_order_.pop_front();
    auto it = per_target_.find(pid);
    if (it == per_target_.end() || it->second.alive) continue;  // pid reused by a new target
    per_target_.erase(it);
    auto summary = hitches_.forget(pid);
    forgotten_hitches_.frames += summary.frames;
    forgotten_hitches_.hitches += summary.hitches;
    for (const auto& [cause, n] : summary.hitches_by_cause) forgotten_hitches_.hitches_by_cause[cause] += n;
    forgotten_targets_++;
  }
}

void Agent::refresh_leak_reports() {
  // Judging walks every tracked allocation and symbolizes: not every drain.
  std::lock_guard<std::mutex> drain_lock(drain_mu_);
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  // drain_mu_ keeps the trackers from sampling meanwhile, and the map only
  // changes on this (the run loop's) thread: mu_ is not held while judging,
  // so scrapes and frame events are not blocked by it.
  std::map<uint32_t, LeakReport> reports;
  for (auto& [pid, tracker] : leak_trackers_) reports[pid] = tracker->report(t, 10);
  std::lock_guard<std::mutex> lock(mu_);
  leak_reports_ = std::move(reports);
}

RuntimeTargetStats Agent::runtime_stats(uint32_t pid, const RuntimeSnapshot* snap) const {
  RuntimeTargetStats rs;
  if (snap) {
    if (auto it = snap->coroutines.find(pid); it != snap->coroutines.end()) {
      rs.coroutines = it->second;
      rs.has_coroutines = true;
    }
    for (const auto& [key, h] : snap->histograms)
      if (key.first == pid) rs.histograms[key.second] = h;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = hitches_.processes().find(pid); it != hitches_.processes().end()) {
    rs.budget_ns = it->second.budget_ns;
    rs.frames = it->second.frames;
    rs.hitches = it->second.hitches;
    rs.hitches_by_cause = it->second.hitches_by_cause;
  }
  if (leak_trackers_.count(pid)) {
    rs.leaks_enabled = true;
    if (auto it = leak_reports_.find(pid); it != leak_reports_.end()) {
      rs.heap_outstanding_bytes = it->second.outstanding_bytes;
      rs.leak_suspects = it->second.leaks;
    }
  }
  return rs;
}

void Agent::run(const std::atomic<bool>& stop) {
  last_leak_report_ = std::chrono::steady_clock::now();
  WatchLoop loop;
  loop.interval_s = opts_.drain_interval_s;
  loop.stop = &stop;
  loop.poll = [&](int ms) { session_->ringbufs().poll(ms); };
  loop.tick = [&](double) {
    drain_once();
    session_->refresh_targets();
    retry_pending_attaches();
    reap_untraced();
    session_->stacks().prune_if_needed();
    auto now = std::chrono::steady_clock::now();
    forget_exited(now);
    flush_log_summaries();
    // After a capture or a target change (and at least once a minute),
    // give the freed heap back; a trim costs about a millisecond.
    if (uint64_t churn = heap_churn_.load(); churn != heap_churn_trimmed_ || now - last_trim_ > std::chrono::minutes(1)) {
      malloc_trim(0);
      heap_churn_trimmed_ = churn;
      last_trim_ = now;
    }
    if (alloc_ && now - last_leak_report_ >= std::chrono::duration<double>(opts_.leak_report_interval_s)) {
      refresh_leak_reports();
      last_leak_report_ = now;
    }
  };
  run_watch_loop(loop);
  drain_once();
}

Result<Profile> Agent::capture(ProfileKind kind, double seconds, const std::atomic<bool>& stop) {
  if (kind == ProfileKind::kCpu && !cpu_)
    return Error("CPU profiling is disabled in this agent", "start the agent without --disable profile");
  if (kind == ProfileKind::kOffCpu && !offcpu_)
    return Error("off-CPU profiling is disabled in this agent", "start the agent without --no-offcpu");
  if (!(seconds > 0) || seconds > opts_.max_capture_seconds)
    return Error("seconds must be in (0, " + std::to_string(static_cast<int>(opts_.max_capture_seconds)) + "]");
  ProfileShape shape = kind == ProfileKind::kCpu ? cpu_->shape() : offcpu_->shape();
  StackAggregate agg(shape.sample_types.size());
  auto wall_start = std::chrono::system_clock::now();
  if (kind == ProfileKind::kCpu) cpu_->subscribe(&agg);
  else offcpu_->subscribe(&agg);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline && !stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // One more drain so the last partial interval counts.
  drain_once();
  if (kind == ProfileKind::kCpu) cpu_->unsubscribe(&agg);
  else offcpu_->unsubscribe(&agg);
  Profile p = build_profile(agg, *session_, shape);
  p.time_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(wall_start.time_since_epoch()).count();
  p.duration_nanos = static_cast<int64_t>(seconds * 1e9);
  Family* fam = kind == ProfileKind::kCpu ? static_cast<Family*>(cpu_) : static_cast<Family*>(offcpu_);
  for (const auto& [k, v] : fam->counters().to_map(true)) p.counters[k] = v;
  heap_churn_++;
  return p;
}

Result<Profile> Agent::alloc_profile(bool inuse_default, double seconds, const std::atomic<bool>& stop) {
  if (!alloc_)
    return Error("allocation tracing is off in this agent", "start the agent with --leaks (or --enable alloc)");
  if (seconds < 0 || seconds > opts_.max_capture_seconds)
    return Error("seconds must be in [0, " + std::to_string(static_cast<int>(opts_.max_capture_seconds)) + "]");
  AllocProfileOptions po;
  po.default_type = inuse_default ? AllocProfileDefault::kInuseSpace : AllocProfileDefault::kAllocSpace;
  std::map<AllocStackKey, AllocStackTotals> baseline;
  auto wall_start = std::chrono::system_clock::now();
  if (seconds > 0) {
    baseline = alloc_->stack_totals();
    po.baseline = &baseline;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline && !stop.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Profile p = build_alloc_profile(*alloc_, *session_, alloc_->stack_totals(), po);
  p.time_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(wall_start.time_since_epoch()).count();
  if (seconds > 0) p.duration_nanos = static_cast<int64_t>(seconds * 1e9);
  heap_churn_++;
  return p;
}

Result<Profile> Agent::growth_profile(double seconds, const std::atomic<bool>& stop) {
  if (!growth_) return Error("memory-growth tracing is off in this agent", "start the agent without --disable growth");
  if (!(seconds > 0) || seconds > opts_.max_capture_seconds)
    return Error("seconds must be in (0, " + std::to_string(static_cast<int>(opts_.max_capture_seconds)) + "]");
  ProfileShape shape = growth_->shape();
  StackAggregate agg(shape.sample_types.size());
  auto wall_start = std::chrono::system_clock::now();
  growth_->subscribe(&agg);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline && !stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  drain_once();
  growth_->unsubscribe(&agg);
  Profile p = build_profile(agg, *session_, shape);
  p.time_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(wall_start.time_since_epoch()).count();
  p.duration_nanos = static_cast<int64_t>(seconds * 1e9);
  for (const auto& [k, v] : growth_->counters().to_map(true)) p.counters[k] = v;
  heap_churn_++;
  return p;
}

AgentStats Agent::stats() const {
  AgentStats s;
  s.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  auto ss = session_->stats();
  s.targets_attached = ss.targets;
  s.targets_added = ss.targets_added;
  s.targets_removed = ss.targets_removed;
  s.target_errors = ss.target_errors;
  for (const auto& f : families_) {
    s.family_counters[f->name()] = f->counters();
    f->metrics(s.family_metrics);
  }
  s.family_counters[watcher_->name()] = watcher_->counters();
  RuntimeSnapshot snap;
  if (runtime_) snap = runtime_->snapshot();
  std::map<uint32_t, RuntimeTargetStats> rts;
  if (runtime_ || alloc_) {
    for (uint32_t pid : session_->targets()) {
      RuntimeTargetStats r = runtime_stats(pid, runtime_ ? &snap : nullptr);
      if (r.has_coroutines || !r.histograms.empty() || r.leaks_enabled) rts[pid] = std::move(r);
    }
  }
  auto sym = session_->symbolizer().stats();
  s.symbolizer = {{"binaries_cached", sym.binaries_cached},     {"binary_cache_hits", sym.binary_cache_hits},
                  {"binary_cache_misses", sym.binary_cache_misses}, {"binary_evictions", sym.binary_evictions},
                  {"processes_cached", sym.processes_cached},   {"unknown_frames", sym.unknown_frames},
                  {"resolved_frames", sym.resolved_frames},     {"fde_named_frames", sym.fde_named_frames}};
  auto uw = session_->unwind().stats();
  s.unwind = {{"binaries", uw.binaries},         {"rows_used", uw.rows_used},
              {"rows_capacity", uw.rows_capacity}, {"rows_dropped", uw.rows_dropped},
              {"build_errors", uw.build_errors},    {"rows_unsupported", uw.rows_unsupported}};
  auto st = session_->stacks().stats();
  s.stacks = {{"lookups", st.lookups}, {"missing", st.missing}, {"pruned", st.pruned}, {"truncated", st.truncated}};
  s.bpf_map_bytes = bpf_map_memory_bytes();
  if (FILE* f = std::fopen("/proc/self/stat", "r")) {
    // Fields 14/15 are utime/stime in clock ticks, 24 is rss in pages.
    unsigned long utime = 0, stime = 0;
    long rss = 0;
    if (std::fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %*u %*u %ld",
                    &utime, &stime, &rss) == 3) {
      s.self_cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
      s.self_rss_bytes = static_cast<uint64_t>(rss) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    }
    std::fclose(f);
  }
  std::lock_guard<std::mutex> lock(mu_);
  s.drains = drains_;
  const auto& ret = opts_.session.retention;
  s.forget_exited_after_s = ret.forget_exited_after_s;
  s.max_targets = opts_.session.map_sizes.max_targets;
  s.max_exited_targets = ret.max_exited;
  s.exited_targets = exited_order_.size();
  s.forgotten_targets = forgotten_targets_;
  s.all_ticks = forgotten_hitches_.frames;
  s.all_hitches_by_cause = forgotten_hitches_.hitches_by_cause;
  for (const auto& [pid, p] : hitches_.processes()) {
    s.all_ticks += p.frames;
    for (const auto& [cause, n] : p.hitches_by_cause) s.all_hitches_by_cause[cause] += n;
  }
  s.attach_failures = attach_failures_;
  auto ls = log_stats();
  s.log_lines_printed = ls.printed;
  s.log_messages_suppressed = ls.suppressed;
  // Degraded: a family that failed on a target that is still traced.
  std::set<std::string> failing;
  for (const auto& [pid, fam] : attach_failed_) failing.insert(fam);
  s.degraded.assign(failing.begin(), failing.end());
  for (const auto& [pid, t] : per_target_) {
    TargetStats copy = t;
    copy.alive = copy.alive && ss.targets > 0;
    if (auto it = rts.find(pid); it != rts.end()) copy.runtime = std::move(it->second);
    rts.erase(pid);
    s.targets.push_back(copy);
  }
  // Targets with runtime data but no CPU sample yet.
  for (auto& [pid, r] : rts) {
    TargetStats t;
    t.pid = pid;
    t.comm = session_->process_name(pid);
    t.runtime = std::move(r);
    s.targets.push_back(std::move(t));
  }
  return s;
}

}  // namespace tickprobe
