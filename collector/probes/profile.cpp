#include "probes/profile.h"

#include <linux/perf_event.h>
#include <linux/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "core/family_errors.h"
#include "core/log.h"
#include "core/session.h"
#include "bpf/include/profile.h"
#include "profile.skel.h"

namespace tickprobe {
namespace {

int perf_event_open(perf_event_attr* attr, int cpu) {
  return static_cast<int>(syscall(__NR_perf_event_open, attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
}

std::vector<int> online_cpus() {
  std::vector<int> cpus;
  FILE* f = std::fopen("/sys/devices/system/cpu/online", "r");
  if (f) {
    int a, b;
    char sep;
    while (std::fscanf(f, "%d", &a) == 1) {
      b = a;
      if (std::fscanf(f, "%c", &sep) == 1 && sep == '-') {
        if (std::fscanf(f, "%d", &b) != 1) b = a;
        if (std::fscanf(f, "%c", &sep) != 1) sep = '\n';
      }
      for (int c = a; c <= b; c++) cpus.push_back(c);
      if (sep != ',') break;
    }
    std::fclose(f);
  }
  if (cpus.empty())
    for (int c = 0; c < libbpf_num_possible_cpus(); c++) cpus.push_back(c);
  return cpus;
}

}  // namespace

Result<std::unique_ptr<CpuProfileProbe>> CpuProfileProbe::create(Session& session, const CpuProfileOptions& opts) {
  if (opts.frequency == 0 || opts.frequency > 10000)
    return Error("invalid sampling frequency " + std::to_string(opts.frequency),
                 "use --frequency between 1 and 10000 Hz");
  std::unique_ptr<CpuProfileProbe> p(new CpuProfileProbe(session, opts));

  // open -> configure -> load -> attach
  p->skel_ = profile_bpf__open();
  if (!p->skel_) return Error::from_errno("failed to open the profile BPF object", errno);
  p->skel_->rodata->collect_kernel = opts.kernel_stacks;
  bpf_map__set_max_entries(p->skel_->maps.counts_0, opts.max_counts);
  bpf_map__set_max_entries(p->skel_->maps.counts_1, opts.max_counts);
  if (auto st = session.maps().reuse_in(p->skel_->obj); !st) return st.error();
  if (int err = profile_bpf__load(p->skel_))
    return Error::from_errno("failed to load the profile BPF program", err,
                             "run `tickprobe doctor`; rerun with -v for the verifier log");

  // Hardware cycles where the PMU exists; VMs often lack it: cpu-clock.
  bool use_hw = !opts.force_cpu_clock;
  for (int cpu : online_cpus()) {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.freq = 1;
    attr.sample_freq = opts.frequency;
    attr.sample_type = PERF_SAMPLE_RAW;
    int fd = -1;
    if (use_hw) {
      attr.type = PERF_TYPE_HARDWARE;
      attr.config = PERF_COUNT_HW_CPU_CYCLES;
      fd = perf_event_open(&attr, cpu);
      if (fd < 0 && p->perf_fds_.empty()) {
        TP_LOG_DEBUG("no hardware cycles event (%s); using cpu-clock", std::strerror(errno));
        use_hw = false;
      }
    }
    if (!use_hw) {
      attr.type = PERF_TYPE_SOFTWARE;
      attr.config = PERF_COUNT_SW_CPU_CLOCK;
      fd = perf_event_open(&attr, cpu);
    }
    if (fd < 0) {
      if (errno == ENODEV) continue;  // CPU went offline
      return Error::from_errno("failed to open perf event on CPU " + std::to_string(cpu), errno,
                               "check /proc/sys/kernel/perf_event_paranoid and run as root");
    }
    p->perf_fds_.emplace_back(fd);
    bpf_link* link = bpf_program__attach_perf_event(p->skel_->progs.handle_cpu_sample, fd);
    if (!link)
      return Error::from_errno("failed to attach the CPU sampler on CPU " + std::to_string(cpu), errno);
    p->links_.emplace_back(link);
  }
  p->event_name_ = use_hw ? "cycles" : "cpu-clock";
  return p;
}

CpuProfileProbe::~CpuProfileProbe() {
  links_.clear();
  perf_fds_.clear();
  if (skel_) profile_bpf__destroy(skel_);
}

void CpuProfileProbe::drain(StackAggregate& agg) {
  // Flip first: new samples go to the other map while we read this one.
  uint32_t slot = skel_->bss->active_slot;
  skel_->bss->active_slot = slot ? 0 : 1;
  int fd = bpf_map__fd(slot ? skel_->maps.counts_1 : skel_->maps.counts_0);
  const int64_t period = shape().period;
  drain_hash_map<profile_key, uint64_t>(
      fd,
      [&](const profile_key& k, uint64_t v) {
        agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm)),
                {static_cast<int64_t>(v), static_cast<int64_t>(v) * period});
        samples_ += v;
      },
      opts_.max_counts);
}

ProfileShape CpuProfileProbe::shape() const {
  ProfileShape s;
  s.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  s.period_type = {"cpu", "nanoseconds"};
  s.period = 1000000000LL / opts_.frequency;
  s.include_kernel = opts_.kernel_stacks;
  return s;
}

std::map<std::string, uint64_t> CpuProfileProbe::counters() const {
  auto c = read_family_errors(skel_->maps.errors);
  c["samples"] = samples_;
  return c;
}

}  // namespace tickprobe
