#include "probes/offcpu.h"

#include <linux/types.h>

#include <cstring>

#include "core/count_slots.h"
#include "core/map_read.h"
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

OffCpuProbe::OffCpuProbe(Session& s, const OffCpuOptions& o)
    : session_(s), opts_(o), seconds_by_state_(s.options().retention) {}

Result<std::unique_ptr<OffCpuProbe>> OffCpuProbe::create(Session& session, const OffCpuOptions& opts) {
  std::unique_ptr<OffCpuProbe> p(new OffCpuProbe(session, opts));
  // tp_btf needs kernel BTF, which every kernel tickprobe runs on has (CO-RE).
  auto skel = load_skeleton(session, "offcpu", TP_SKELETON_OPS(offcpu), [&](offcpu_bpf* sk) -> Status {
    sk->rodata->min_block_ns = opts.min_block_us * 1000;
    sk->rodata->max_block_ns = opts.max_block_us ? opts.max_block_us * 1000 : ~0ULL;
    uint32_t mask = 1u << OFFCPU_OTHER;
    if (opts.include_runnable) mask |= 1u << OFFCPU_RUNNABLE;
    if (opts.include_sleeping) mask |= 1u << OFFCPU_SLEEPING;
    if (opts.include_uninterruptible) mask |= 1u << OFFCPU_UNINTERRUPTIBLE;
    sk->rodata->state_mask = mask;
    sk->rodata->collect_kernel = opts.kernel_stacks;
    bpf_map__set_max_entries(sk->maps.counts_0, opts.max_counts);
    bpf_map__set_max_entries(sk->maps.counts_1, opts.max_counts);
    bpf_map__set_max_entries(sk->maps.start, opts.max_threads);
    return {};
  });
  if (!skel) return skel.error();
  p->skel_ = skel.take();
  return p;
}

OffCpuProbe::~OffCpuProbe() = default;

void OffCpuProbe::drain() {
  SlotFlip flip = flip_count_slot(&skel_->bss->active_slot, skel_->bss->slot_writers);
  if (!flip.waited_out) drain_wait_timeouts_++;
  int fd = bpf_map__fd(flip.drained_slot ? skel_->maps.counts_1 : skel_->maps.counts_0);
  StackAggregate agg(2);
  std::map<std::pair<uint32_t, const char*>, uint64_t> ns_by_state;
  drain_hash_map<offcpu_key, offcpu_value>(
      fd,
      [&](const offcpu_key& k, const offcpu_value& v) {
        agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm),
                                      offcpu_state_name(k.state)),
                {static_cast<int64_t>(v.total_ns), static_cast<int64_t>(v.count)});
        blocks_ += v.count;
        ns_by_state[{k.tgid, offcpu_state_name(k.state)}] += v.total_ns;
      },
      opts_.max_counts);
  subs_.fan_out(agg);
  std::lock_guard<std::mutex> lock(totals_mu_);
  for (const auto& [key, ns] : ns_by_state) seconds_by_state_.at(key.first)[key.second] += static_cast<double>(ns) / 1e9;
  seconds_by_state_.exited_unless_in(session_.targets());
  seconds_by_state_.expire();
}

Status OffCpuProbe::attach(uint32_t pid) {
  std::lock_guard<std::mutex> lock(totals_mu_);
  seconds_by_state_.attached(pid);
  return {};
}

void OffCpuProbe::detach(uint32_t pid) {
  std::lock_guard<std::mutex> lock(totals_mu_);
  seconds_by_state_.exited(pid);
}

void OffCpuProbe::metrics(MetricsSnapshot& out) const {
  auto blocks = metric_family("tickprobe_offcpu_blocks_total", "Off-CPU intervals recorded for traced threads.",
                              MetricType::kCounter);
  add_sample(blocks, {}, static_cast<double>(blocks_));
  out.push_back(std::move(blocks));
  auto off = metric_family("tickprobe_target_offcpu_seconds_total",
                           "Time threads of a traced process spent off-CPU, by thread state (R preempted, S "
                           "sleeping, D uninterruptible).",
                           MetricType::kCounter);
  std::lock_guard<std::mutex> lock(totals_mu_);
  seconds_by_state_.for_each([&](uint32_t pid, const std::map<std::string, double>& by_state, bool) {
    for (const char* state : {"R", "S", "D", "other"}) {
      auto it = by_state.find(state);
      add_sample(off, {{"pid", std::to_string(pid)}, {"comm", session_.process_name(pid)}, {"state", state}},
                 it == by_state.end() ? 0.0 : it->second);
    }
  });
  out.push_back(std::move(off));
  auto all = metric_family("tickprobe_targets_offcpu_seconds_total",
                           "Off-CPU time of all traced processes together (exited and forgotten ones included), by "
                           "thread state.",
                           MetricType::kCounter);
  auto totals = seconds_by_state_.all();
  for (const char* state : {"R", "S", "D", "other"}) {
    auto it = totals.find(state);
    add_sample(all, {{"state", state}}, it == totals.end() ? 0.0 : it->second);
  }
  out.push_back(std::move(all));
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

Counters OffCpuProbe::counters() const {
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_CTR_BLOCKS] = blocks_;
  c[TP_ERR_DRAIN_WAIT] += drain_wait_timeouts_;
  return c;
}

FamilySpec offcpu_family_spec() {
  return {"offcpu", "time threads spend switched out, per stack and state (sched_switch)", true,
          {"min_block_us", "kernel_stacks", "max_counts"},
          [](Session& s, const FamilySettings& set) -> Result<std::unique_ptr<Family>> {
            OffCpuOptions o;
            auto mb = set.get_u64("min_block_us", o.min_block_us, 0, 3600ull * 1000000);
            if (!mb) return mb.error();
            o.min_block_us = *mb;
            auto k = set.get_bool("kernel_stacks", o.kernel_stacks);
            if (!k) return k.error();
            o.kernel_stacks = *k;
            auto m = set.get_u64("max_counts", o.max_counts, 1, 1u << 24);
            if (!m) return m.error();
            o.max_counts = static_cast<uint32_t>(*m);
            auto p = OffCpuProbe::create(s, o);
            if (!p) return p.error();
            return std::unique_ptr<Family>(p.take());
          }};
}

}  // namespace tickprobe
