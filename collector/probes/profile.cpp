#include "probes/profile.h"

#include <dirent.h>
#include <unistd.h>

#include <linux/perf_event.h>
#include <linux/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/uprobe_multi.h"
#include "core/count_slots.h"
#include "core/perf_events.h"
#include "core/map_read.h"
#include "core/log.h"
#include "core/session.h"
#include "bpf/include/profile.h"
#include "profile.skel.h"

namespace tickprobe {
CpuProfileProbe::CpuProfileProbe(Session& s, const CpuProfileOptions& o)
    : session_(s), opts_(o), cpu_seconds_(s.options().retention) {}

Result<std::unique_ptr<CpuProfileProbe>> CpuProfileProbe::create(Session& session, const CpuProfileOptions& opts) {
  if (opts.frequency == 0 || opts.frequency > 10000)
    return Error("invalid sampling frequency " + std::to_string(opts.frequency),
                 "use --frequency between 1 and 10000 Hz");
  std::unique_ptr<CpuProfileProbe> p(new CpuProfileProbe(session, opts));
  // TICKPROBE_FRAME_CACHE=off|verify: for tests and A/B measurements.
  if (const char* env = std::getenv("TICKPROBE_FRAME_CACHE")) {
    if (std::strcmp(env, "off") == 0) p->opts_.frame_cache = FrameCacheMode::kOff;
    else if (std::strcmp(env, "verify") == 0) p->opts_.frame_cache = FrameCacheMode::kVerify;
    else if (std::strcmp(env, "on") != 0)
      return Error(std::string("invalid TICKPROBE_FRAME_CACHE=") + env, "use on, off or verify");
  }

  // open -> configure -> load; attached per CPU below.
  auto skel = load_skeleton(
      session, "profile", TP_SKELETON_OPS(profile),
      [&](profile_bpf* sk) -> Status {
        sk->rodata->collect_kernel = opts.kernel_stacks;
        sk->rodata->frame_cache_mode = static_cast<uint32_t>(p->opts_.frame_cache);
        bpf_map__set_max_entries(sk->maps.counts_0, opts.max_counts);
        bpf_map__set_max_entries(sk->maps.counts_1, opts.max_counts);
        return {};
      },
      /*attach=*/false);
  if (!skel) return skel.error();
  p->skel_ = skel.take();

  // Hardware cycles where the PMU exists; VMs often lack it: cpu-clock.
  // One event per CPU by default. TICKPROBE_PROFILE_EVENTS=thread opens one
  // per target thread instead (inherited by the threads it creates): the
  // program then never runs on other processes' ticks (96% of its runs with
  // tickgame under bots: 0.40% of the server's CPU instead of 0.50%,
  // docs/benchmarks.md), but a per-task software clock is biased towards
  // the start of each run slice: on the Go fixture 15% of samples landed in
  // the scheduler's system stack against 7.5% with per-CPU events and 8% in
  // runtime/pprof. With a hardware PMU (cycles) there is no such bias.
  if (const char* env = std::getenv("TICKPROBE_PROFILE_EVENTS")) {
    if (std::strcmp(env, "thread") == 0) p->per_thread_ = true;
    else if (std::strcmp(env, "cpu") != 0)
      return Error(std::string("invalid TICKPROBE_PROFILE_EVENTS=") + env, "use cpu or thread");
  }
  p->use_hw_ = !opts.force_cpu_clock;
  if (p->per_thread_) {
    for (uint32_t pid : session.targets())
      if (auto st = p->cover_threads(pid); !st) return st.error();
    p->event_name_ = p->use_hw_ ? "cycles" : "cpu-clock";
    return p;
  }
  auto events = open_cpu_sampling_events(opts.frequency, opts.force_cpu_clock);
  if (!events) return events.error();
  for (auto& fd : events->fds) {
    bpf_link* link = bpf_program__attach_perf_event(p->skel_->progs.handle_cpu_sample, fd.get());
    if (!link) return Error::from_errno("failed to attach the CPU sampler", errno);
    p->links_.emplace_back(link);
    p->perf_fds_.push_back(std::move(fd));
  }
  p->event_name_ = events->event_name;
  return p;
}

Status CpuProfileProbe::cover_threads(uint32_t pid) {
  std::lock_guard<std::mutex> lock(events_mu_);
  ThreadEvents& te = thread_events_[pid];
  for (int pass = 0; pass < 8; pass++) {
    std::vector<uint32_t> fresh;
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        char* end = nullptr;
        unsigned long tid = std::strtoul(e->d_name, &end, 10);
        if (end && *end == 0 && tid && !te.tids.count(static_cast<uint32_t>(tid)))
          fresh.push_back(static_cast<uint32_t>(tid));
      }
      closedir(d);
    } else if (pass == 0 && te.tids.empty()) {
      return Error::from_errno("cannot list the threads of process " + std::to_string(pid), errno,
                               "is the process still running?");
    }
    if (fresh.empty()) return {};
    for (uint32_t tid : fresh) {
      te.tids.insert(tid);
      auto fd = open_thread_sampling_event(tid, opts_.frequency, &use_hw_);
      if (!fd) {
        // A thread that exited meanwhile needs no event.
        std::string path = dir + "/" + std::to_string(tid);
        if (access(path.c_str(), F_OK) != 0) continue;
        return fd.error();
      }
      bpf_link* link = bpf_program__attach_perf_event(skel_->progs.handle_cpu_sample, fd->get());
      if (!link) return Error::from_errno("failed to attach the CPU sampler to thread " + std::to_string(tid), errno);
      te.links.emplace_back(link);
      te.fds.push_back(fd.take());
    }
  }
  return {};
}

CpuProfileProbe::~CpuProfileProbe() { release_links(); }

void CpuProfileProbe::release_links() {
  destroy_links_concurrently(links_, &perf_fds_);
  std::map<uint32_t, ThreadEvents> all;
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    all.swap(thread_events_);
  }
  std::vector<BpfLink> links;
  std::vector<UniqueFd> fds;
  for (auto& [pid, te] : all) {
    for (auto& l : te.links) links.push_back(std::move(l));
    for (auto& f : te.fds) fds.push_back(std::move(f));
  }
  destroy_links_concurrently(links, &fds);
}

void CpuProfileProbe::drain() {
  // New samples go to the other map while we read this one (count_slots.h).
  SlotFlip flip = flip_count_slot(&skel_->bss->active_slot, skel_->bss->slot_writers);
  if (!flip.waited_out) drain_wait_timeouts_++;
  int fd = bpf_map__fd(flip.drained_slot ? skel_->maps.counts_1 : skel_->maps.counts_0);
  const int64_t period = shape().period;
  StackAggregate agg(2);
  std::map<uint32_t, uint64_t> per_tgid;
  drain_hash_map<profile_key, uint64_t>(
      fd,
      [&](const profile_key& k, uint64_t v) {
        agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm)),
                {static_cast<int64_t>(v), static_cast<int64_t>(v) * period});
        samples_ += v;
        per_tgid[k.tgid] += v;
      },
      opts_.max_counts);
  subs_.fan_out(agg);
  std::lock_guard<std::mutex> lock(totals_mu_);
  for (const auto& [tgid, n] : per_tgid) cpu_seconds_.at(tgid) += static_cast<double>(n) / opts_.frequency;
  cpu_seconds_.exited_unless_in(session_.targets());
  cpu_seconds_.expire();
}

Status CpuProfileProbe::attach(uint32_t pid) {
  if (per_thread_)
    if (auto st = cover_threads(pid); !st) return st;
  std::lock_guard<std::mutex> lock(totals_mu_);
  cpu_seconds_.attached(pid);
  return {};
}

void CpuProfileProbe::detach(uint32_t pid) {
  ThreadEvents te;
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    if (auto it = thread_events_.find(pid); it != thread_events_.end()) {
      te = std::move(it->second);
      thread_events_.erase(it);
    }
  }
  destroy_links_concurrently(te.links, &te.fds);
  std::lock_guard<std::mutex> lock(totals_mu_);
  cpu_seconds_.exited(pid);
}

void CpuProfileProbe::metrics(MetricsSnapshot& out) const {
  auto info = metric_family("tickprobe_cpu_sampling_info", "CPU sampling setup (value is always 1).",
                            MetricType::kGauge);
  add_sample(info, {{"event", event_name_}, {"frequency_hz", std::to_string(opts_.frequency)}}, 1);
  out.push_back(std::move(info));
  auto samples = metric_family("tickprobe_cpu_samples_total", "CPU samples taken of traced threads.",
                               MetricType::kCounter);
  add_sample(samples, {}, static_cast<double>(samples_));
  out.push_back(std::move(samples));
  auto cpu = metric_family("tickprobe_target_cpu_seconds_total",
                           "CPU time of a traced process, estimated from samples (samples / frequency).",
                           MetricType::kCounter);
  std::lock_guard<std::mutex> lock(totals_mu_);
  cpu_seconds_.for_each([&](uint32_t pid, double v, bool) {
    add_sample(cpu, {{"pid", std::to_string(pid)}, {"comm", session_.process_name(pid)}}, v);
  });
  out.push_back(std::move(cpu));
  // Per-process series go some time after a process exits; this one keeps
  // counting every process ever traced, so sums over time stay monotonic.
  auto all = metric_family("tickprobe_targets_cpu_seconds_total",
                           "CPU time of all traced processes together, exited and forgotten ones included.",
                           MetricType::kCounter);
  add_sample(all, {}, cpu_seconds_.all());
  out.push_back(std::move(all));
}

ProfileShape CpuProfileProbe::shape() const {
  ProfileShape s;
  s.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  s.period_type = {"cpu", "nanoseconds"};
  s.period = 1000000000LL / opts_.frequency;
  s.include_kernel = opts_.kernel_stacks;
  return s;
}

Counters CpuProfileProbe::counters() const {
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_CTR_SAMPLES] = samples_;
  c[TP_ERR_DRAIN_WAIT] += drain_wait_timeouts_;
  return c;
}

uint64_t CpuProfileProbe::samples_taken() const {
  return __atomic_load_n(&skel_->bss->samples_taken, __ATOMIC_RELAXED);
}

uint64_t CpuProfileProbe::bpf_counter(uint32_t id) const {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0 || id >= TP_COUNTER_MAX) return 0;
  std::vector<uint64_t> v(static_cast<size_t>(ncpus));
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.errors), &id, v.data()) != 0) return 0;
  uint64_t sum = 0;
  for (uint64_t x : v) sum += x;
  return sum;
}

FamilySpec profile_family_spec() {
  return {"profile", "CPU samples per thread and stack (perf_event)", true,
          {"frequency", "kernel_stacks", "max_counts"},
          [](Session& s, const FamilySettings& set) -> Result<std::unique_ptr<Family>> {
            CpuProfileOptions o;
            auto f = set.get_u64("frequency", o.frequency, 1, 10000);
            if (!f) return f.error();
            o.frequency = static_cast<uint32_t>(*f);
            auto k = set.get_bool("kernel_stacks", o.kernel_stacks);
            if (!k) return k.error();
            o.kernel_stacks = *k;
            auto m = set.get_u64("max_counts", o.max_counts, 1, 1u << 24);
            if (!m) return m.error();
            o.max_counts = static_cast<uint32_t>(*m);
            auto p = CpuProfileProbe::create(s, o);
            if (!p) return p.error();
            return std::unique_ptr<Family>(p.take());
          }};
}

}  // namespace tickprobe
