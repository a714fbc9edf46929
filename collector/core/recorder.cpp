#include "core/recorder.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "core/watch.h"

namespace tickprobe {

Result<Profile> record_profile(const RecordOptions& opts) {
  if (opts.targets.empty())
    return Error("no target given", "pass --pid PID, --comm NAME or --exe PATH");
  auto pids = resolve_targets(opts.targets);
  if (pids.empty()) {
    // An --exe that names an existing file is not a typo: say what was compared.
    std::string hint = "is the process still running?";
    for (const auto& e : opts.targets.exes)
      if (e.find('/') != std::string::npos && access(e.c_str(), F_OK) == 0) {
        std::string real = resolve_exe_path(e);
        hint = "no process runs " + e + (real != e ? " (a link to " + real + ")" : "") +
               "; --exe compares /proc/PID/exe and the path each process was started by";
        break;
      }
    return Error("no running process matches " + opts.targets.describe(), hint);
  }

  auto session = Session::create(opts.session, pids);
  if (!session) return session.error();
  Session& s = **session;
  for (uint32_t pid : pids) {
    if (auto st = s.add_target(pid); !st) {
      if (pids.size() == 1) return st.error();
      TP_LOG_WARN("skipping process %u: %s", pid, st.error().message.c_str());
    }
  }

  std::unique_ptr<CpuProfileProbe> cpu;
  std::unique_ptr<OffCpuProbe> offcpu;
  ProfileShape shape;
  Family* family = nullptr;
  if (opts.kind == ProfileKind::kCpu) {
    auto p = CpuProfileProbe::create(s, opts.cpu);
    if (!p) return p.error();
    cpu = p.take();
    shape = cpu->shape();
    family = cpu.get();
  } else {
    auto p = OffCpuProbe::create(s, opts.offcpu);
    if (!p) return p.error();
    offcpu = p.take();
    shape = offcpu->shape();
    family = offcpu.get();
  }
  StackAggregate agg(shape.sample_types.size());
  if (cpu) cpu->subscribe(&agg);
  if (offcpu) {
    offcpu->subscribe(&agg);
    // Threads blocked before the window started, seeded as if they had
    // switched out now; at the end, those still blocked are folded in.
    for (uint32_t pid : s.targets()) {
      auto seeded = offcpu->seed_blocked_threads(pid);
      if (!seeded) TP_LOG_WARN("process %u: blocked threads not seeded: %s", pid, seeded.error().message.c_str());
    }
  }

  auto wall_start = std::chrono::system_clock::now();
  WatchLoop loop;
  loop.duration_s = opts.duration_s;
  loop.interval_s = opts.interval_s;
  loop.stop = opts.stop;
  loop.gone = [&] { return s.targets().empty(); };
  // The CPU profile needs no per-second work: the kernel aggregates, so it
  // is drained when its count map could be half full, its stacks pruned
  // when the stack map could be, and the maps re-read when a PC fell in no
  // known mapping (dlopen, exec) or every kMapsRefreshTicks ticks; bounds
  // from the samples taken (each adds <= 1 count key and <= 2 stacks).
  // Progress on a terminal still drains every tick. Off-CPU: every tick.
  constexpr int kMapsRefreshTicks = 10;
  if (cpu && !opts.on_progress) loop.max_sleep_s = opts.interval_s;
  // Samples one interval can add (cpu-clock may overshoot its frequency):
  // the maps must hold them on top of what is there at a tick.
  const uint64_t per_tick = static_cast<uint64_t>(2.0 * opts.cpu.frequency * std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)) *
                                                  std::max(opts.interval_s, 0.001)) + 1;
  uint64_t drained_at = 0, pruned_at = 0, no_mapping_seen = 0;
  size_t stacks_held = 0;
  int ticks = 0;
  loop.tick = [&](double elapsed) {
    ticks++;
    if (!cpu || opts.on_progress) {
      family->drain();
      s.refresh_targets();
      s.stacks().prune_if_needed();
    } else {
      const uint64_t taken = cpu->samples_taken();
      if ((taken - drained_at + per_tick) * 2 >= opts.cpu.max_counts) {
        family->drain();
        drained_at = taken;
      }
      if (stacks_held + 2 * (taken - pruned_at + per_tick) >= s.stacks().capacity() / 2) {
        stacks_held = s.stacks().prune_if_needed();
        pruned_at = taken;
      }
      uint64_t no_mapping = cpu->bpf_counter(TP_ERR_UNWIND_NO_MAPPING);
      s.refresh_targets(/*reread_maps=*/no_mapping != no_mapping_seen || ticks % kMapsRefreshTicks == 0);
      no_mapping_seen = no_mapping;
    }
    if (opts.on_progress) {
      RecordProgress p;
      p.elapsed_s = elapsed;
      p.duration_s = opts.duration_s;
      p.primary_total = agg.totals()[0];
      p.distinct_stacks = agg.entries().size();
      p.targets = s.targets().size();
      auto c = family->counters();
      p.dropped = c[TP_ERR_COUNTS_FULL] + c[TP_ERR_STACKS_FULL];
      opts.on_progress(p);
    }
  };
  double elapsed_s = run_watch_loop(loop);
  family->drain();
  if (offcpu) offcpu->account_still_blocked();

  Profile profile = build_profile(agg, s, shape);
  profile.time_nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall_start.time_since_epoch()).count();
  profile.duration_nanos = static_cast<int64_t>(elapsed_s * 1e9);
  for (const auto& [k, v] : family->counters().to_map(/*include_zeros=*/true)) profile.counters[k] = v;
  auto ss = s.stacks().stats();
  profile.counters["stacks_missing"] = ss.missing;
  auto us = s.unwind().stats();
  profile.counters["unwind_rows_used"] = us.rows_used;
  profile.counters["unwind_rows_dropped"] = us.rows_dropped;
  profile.counters["unwind_rows_unsupported"] = us.rows_unsupported;
  profile.counters["unwind_rows_deref"] = us.rows_deref;
  if (cpu) {
    profile.comments.push_back("event: " + cpu->event_name() + " at " + std::to_string(cpu->frequency()) + " Hz");
  } else {
    profile.comments.push_back("off-CPU via sched_switch, min block " + std::to_string(opts.offcpu.min_block_us) +
                               " us");
  }
  profile.comments.push_back("targets: " + opts.targets.describe());
  return profile;
}

}  // namespace tickprobe
