#include "core/recorder.h"

#include <chrono>
#include <thread>

#include "core/log.h"

namespace tickprobe {

Result<Profile> record_profile(const RecordOptions& opts) {
  if (opts.targets.empty())
    return Error("no target given", "pass --pid PID, --comm NAME or --exe PATH");
  auto pids = resolve_targets(opts.targets);
  if (pids.empty())
    return Error("no running process matches " + opts.targets.describe(), "is the process still running?");

  auto session = Session::create(opts.session);
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
  if (opts.kind == ProfileKind::kCpu) {
    auto p = CpuProfileProbe::create(s, opts.cpu);
    if (!p) return p.error();
    cpu = p.take();
    shape = cpu->shape();
  } else {
    auto p = OffCpuProbe::create(s, opts.offcpu);
    if (!p) return p.error();
    offcpu = p.take();
    shape = offcpu->shape();
  }

  StackAggregate agg(shape.sample_types.size());
  auto drain = [&] {
    if (cpu) cpu->drain(agg);
    if (offcpu) offcpu->drain(agg);
  };
  auto counters = [&] { return cpu ? cpu->counters() : offcpu->counters(); };

  using clock = std::chrono::steady_clock;
  auto wall_start = std::chrono::system_clock::now();
  auto start = clock::now();
  auto next_tick = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.interval_s));
  for (;;) {
    double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    bool done = (opts.duration_s > 0 && elapsed >= opts.duration_s) || (opts.stop && opts.stop->load()) ||
                s.targets().empty();
    if (done) break;
    if (clock::now() >= next_tick) {
      drain();
      s.refresh_targets();
      s.stacks().prune_if_needed();
      if (opts.on_progress) {
        RecordProgress p;
        p.elapsed_s = elapsed;
        p.duration_s = opts.duration_s;
        p.primary_total = agg.totals()[0];
        p.distinct_stacks = agg.entries().size();
        p.targets = s.targets().size();
        auto c = counters();
        p.dropped = c["counts_full"] + c["stacks_full"];
        opts.on_progress(p);
      }
      next_tick += std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.interval_s));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  drain();
  auto elapsed = clock::now() - start;

  Profile profile = build_profile(agg, s, shape);
  profile.time_nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall_start.time_since_epoch()).count();
  profile.duration_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  for (const auto& [k, v] : counters()) profile.counters[k] = v;
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
    profile.comments.push_back("off-CPU via sched_switch (" + offcpu->variant() + "), min block " +
                               std::to_string(opts.offcpu.min_block_us) + " us");
  }
  profile.comments.push_back("targets: " + opts.targets.describe());
  return profile;
}

}  // namespace tickprobe
