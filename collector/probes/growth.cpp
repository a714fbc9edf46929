#include "probes/growth.h"

#include <linux/types.h>

#include "core/uprobe_multi.h"
#include "bpf/include/growth.h"
#include "core/count_slots.h"
#include "core/map_read.h"
#include "core/session.h"
#include "growth.skel.h"

namespace tickprobe {

Result<std::unique_ptr<GrowthProbe>> GrowthProbe::create(Session& session, const GrowthOptions& opts) {
  std::unique_ptr<GrowthProbe> p(new GrowthProbe(session, opts));
  auto skel = load_skeleton(session, "growth", TP_SKELETON_OPS(growth), [&](growth_bpf* sk) -> Status {
    sk->rodata->fault_sample_every = opts.fault_sample_every ? opts.fault_sample_every : 1;
    sk->rodata->track_faults = opts.faults;
    sk->rodata->track_syscalls = opts.syscalls;
    bpf_program__set_autoload(sk->progs.growth_page_fault, opts.faults);
    for (bpf_program* prog : {sk->progs.growth_brk_enter, sk->progs.growth_brk_exit, sk->progs.growth_mmap_enter})
      bpf_program__set_autoload(prog, opts.syscalls);
    bpf_map__set_max_entries(sk->maps.counts_0, opts.max_counts);
    bpf_map__set_max_entries(sk->maps.counts_1, opts.max_counts);
    return {};
  });
  if (!skel) return skel.error();
  p->skel_ = skel.take();
  return p;
}

GrowthProbe::~GrowthProbe() = default;

void GrowthProbe::drain() {
  SlotFlip flip = flip_count_slot(&skel_->bss->active_slot, skel_->bss->slot_writers);
  if (!flip.waited_out) drain_wait_timeouts_++;
  int fd = bpf_map__fd(flip.drained_slot ? skel_->maps.counts_1 : skel_->maps.counts_0);
  StackAggregate agg(4);
  std::map<uint32_t, GrowthTotals> by_pid;
  drain_hash_map<growth_key, growth_value>(
      fd,
      [&](const growth_key& k, const growth_value& v) {
        agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, 0, k.comm, sizeof(k.comm)),
                {static_cast<int64_t>(v.fault_bytes), static_cast<int64_t>(v.faults), static_cast<int64_t>(v.brk_bytes),
                 static_cast<int64_t>(v.mmap_bytes)});
        GrowthTotals& t = by_pid[k.tgid];
        t.fault_bytes += static_cast<double>(v.fault_bytes);
        t.faults += static_cast<double>(v.faults);
        t.brk_bytes += static_cast<double>(v.brk_bytes);
        t.mmap_bytes += static_cast<double>(v.mmap_bytes);
      },
      opts_.max_counts);
  subs_.fan_out(agg);
  std::lock_guard<std::mutex> lock(totals_mu_);
  for (const auto& [pid, t] : by_pid) {
    GrowthTotals& all = totals_.at(pid);
    all.fault_bytes += t.fault_bytes;
    all.faults += t.faults;
    all.brk_bytes += t.brk_bytes;
    all.mmap_bytes += t.mmap_bytes;
  }
  // Like the other per-process families: processes no longer traced start
  // their retention clock, and expired ones fold into the totals.
  totals_.exited_unless_in(session_.targets());
  totals_.expire();
}

GrowthProbe::GrowthProbe(Session& s, const GrowthOptions& o)
    : session_(s), opts_(o), totals_(s.options().retention) {}

void GrowthProbe::detach(uint32_t pid) {
  std::lock_guard<std::mutex> lock(totals_mu_);
  totals_.exited(pid);
}

void GrowthProbe::metrics(MetricsSnapshot& out) const {
  auto bytes =
      metric_family("tickprobe_target_memory_growth_bytes_total",
                    "Memory growth of a traced process by source: first-touch page faults, i.e. writes to new pages "
                    "(page_fault), heap break growth (brk), anonymous mmap lengths (mmap).",
                    MetricType::kCounter);
  std::lock_guard<std::mutex> lock(totals_mu_);
  totals_.for_each([&](uint32_t pid, const GrowthTotals& t, bool) {
    std::string p = std::to_string(pid), comm = session_.process_name(pid);
    add_sample(bytes, {{"pid", p}, {"comm", comm}, {"source", "page_fault"}}, t.fault_bytes);
    add_sample(bytes, {{"pid", p}, {"comm", comm}, {"source", "brk"}}, t.brk_bytes);
    add_sample(bytes, {{"pid", p}, {"comm", comm}, {"source", "mmap"}}, t.mmap_bytes);
  });
  out.push_back(std::move(bytes));
}

ProfileShape GrowthProbe::shape() const {
  ProfileShape s;
  s.sample_types = {
      {"page_fault_space", "bytes"}, {"page_faults", "count"}, {"brk_space", "bytes"}, {"mmap_space", "bytes"}};
  s.period_type = {"page_fault_space", "bytes"};
  s.period = static_cast<int64_t>(opts_.fault_sample_every) * GROWTH_PAGE_SIZE;
  s.include_kernel = false;
  return s;
}

Counters GrowthProbe::counters() const {
  Counters c;
  c.add_bpf(skel_->maps.errors);
  c[TP_ERR_DRAIN_WAIT] += drain_wait_timeouts_;
  return c;
}

FamilySpec growth_family_spec() {
  return {"growth",
          "memory growth per stack: first-touch page faults (writes to new pages), brk and anonymous mmap "
          "(tracepoints; nothing per malloc)",
          true,
          {"fault_sample_every", "faults", "syscalls", "max_counts"},
          [](Session& s, const FamilySettings& set) -> Result<std::unique_ptr<Family>> {
            GrowthOptions o;
            auto every = set.get_u64("fault_sample_every", o.fault_sample_every, 1, 1u << 20);
            if (!every) return every.error();
            o.fault_sample_every = static_cast<uint32_t>(*every);
            auto f = set.get_bool("faults", o.faults);
            if (!f) return f.error();
            o.faults = *f;
            auto sc = set.get_bool("syscalls", o.syscalls);
            if (!sc) return sc.error();
            o.syscalls = *sc;
            auto m = set.get_u64("max_counts", o.max_counts, 1, 1u << 24);
            if (!m) return m.error();
            o.max_counts = static_cast<uint32_t>(*m);
            auto p = GrowthProbe::create(s, o);
            if (!p) return p.error();
            return std::unique_ptr<Family>(p.take());
          }};
}

// Shutdown: the skeleton's tracepoint links from several threads.
void GrowthProbe::release_links() {
  if (skel_) detach_skeleton_concurrently(skel_->skeleton);
}

}  // namespace tickprobe
