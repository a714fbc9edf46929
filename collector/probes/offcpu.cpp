#include "probes/offcpu.h"

#include <linux/types.h>

#include <cstring>

#include "core/family_errors.h"
#include "core/log.h"
#include "core/session.h"
#include "bpf/include/offcpu.h"
#include "offcpu.skel.h"

namespace tickprobe {

const char* offcpu_state_name(uint32_t state) {
  switch (state) {
    case OFFCPU_RUNNABLE: return "R";
    case OFFCPU_SLEEPING: return "S";
    case OFFCPU_UNINTERRUPTIBLE: return "D";
    default: return "other";
  }
}

namespace {

// One attempt at open -> configure -> load with the chosen sched_switch variant.
Result<offcpu_bpf*> open_and_load(Session& session, const OffCpuOptions& opts, bool use_btf) {
  offcpu_bpf* skel = offcpu_bpf__open();
  if (!skel) return Error::from_errno("failed to open the offcpu BPF object", errno);
  skel->rodata->min_block_ns = opts.min_block_us * 1000;
  skel->rodata->max_block_ns = opts.max_block_us ? opts.max_block_us * 1000 : ~0ULL;
  uint32_t mask = 0;
  if (opts.include_runnable) mask |= 1u << OFFCPU_RUNNABLE;
  if (opts.include_sleeping) mask |= 1u << OFFCPU_SLEEPING;
  if (opts.include_uninterruptible) mask |= 1u << OFFCPU_UNINTERRUPTIBLE;
  mask |= 1u << OFFCPU_OTHER;
  skel->rodata->state_mask = mask;
  skel->rodata->collect_kernel = opts.kernel_stacks;
  bpf_map__set_max_entries(skel->maps.counts_0, opts.max_counts);
  bpf_map__set_max_entries(skel->maps.counts_1, opts.max_counts);
  bpf_map__set_max_entries(skel->maps.start, opts.max_threads);
  bpf_program__set_autoload(skel->progs.handle_sched_switch_btf, use_btf);
  bpf_program__set_autoload(skel->progs.handle_thread_exit, use_btf);
  bpf_program__set_autoload(skel->progs.handle_sched_switch_raw, !use_btf);
  if (auto st = session.maps().reuse_in(skel->obj); !st) {
    offcpu_bpf__destroy(skel);
    return st.error();
  }
  if (int err = offcpu_bpf__load(skel)) {
    offcpu_bpf__destroy(skel);
    return Error::from_errno("failed to load the offcpu BPF program", err,
                             "run `tickprobe doctor`; rerun with -v for the verifier log");
  }
  return skel;
}

}  // namespace

Result<std::unique_ptr<OffCpuProbe>> OffCpuProbe::create(Session& session, const OffCpuOptions& opts) {
  std::unique_ptr<OffCpuProbe> p(new OffCpuProbe(opts));
  // Feature probe by trying: BTF-typed tracepoints first, raw ones otherwise.
  auto skel = open_and_load(session, opts, /*use_btf=*/true);
  p->variant_ = "tp_btf";
  if (!skel) {
    TP_LOG_DEBUG("tp_btf/sched_switch unavailable (%s); trying raw_tp", skel.error().message.c_str());
    skel = open_and_load(session, opts, /*use_btf=*/false);
    p->variant_ = "raw_tp";
  }
  if (!skel) return skel.error();
  p->skel_ = skel.value();
  if (int err = offcpu_bpf__attach(p->skel_))
    return Error::from_errno("failed to attach to sched:sched_switch", err,
                             "is tracefs mounted? run `tickprobe doctor`");
  return p;
}

OffCpuProbe::~OffCpuProbe() {
  if (skel_) offcpu_bpf__destroy(skel_);
}

void OffCpuProbe::drain(StackAggregate& agg) {
  uint32_t slot = skel_->bss->active_slot;
  skel_->bss->active_slot = slot ? 0 : 1;
  int fd = bpf_map__fd(slot ? skel_->maps.counts_1 : skel_->maps.counts_0);
  drain_hash_map<offcpu_key, offcpu_value>(
      fd,
      [&](const offcpu_key& k, const offcpu_value& v) {
        agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm),
                                      offcpu_state_name(k.state)),
                {static_cast<int64_t>(v.total_ns), static_cast<int64_t>(v.count)});
        blocks_ += v.count;
      },
      opts_.max_counts);
}

ProfileShape OffCpuProbe::shape() const {
  ProfileShape s;
  s.sample_types = {{"offcpu", "nanoseconds"}, {"blocks", "count"}};
  s.period_type = {"offcpu", "nanoseconds"};
  s.period = 1;
  s.label_key = "state";
  s.include_kernel = opts_.kernel_stacks;
  return s;
}

std::map<std::string, uint64_t> OffCpuProbe::counters() const {
  auto c = read_family_errors(skel_->maps.errors);
  c["blocks"] = blocks_;
  return c;
}

}  // namespace tickprobe
