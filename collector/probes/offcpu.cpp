#include "probes/offcpu.h"

#include <linux/types.h>

#include <bpf/bpf.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "core/uprobe_multi.h"
#include "core/count_slots.h"
#include "core/map_read.h"
#include "core/log.h"
#include "core/session.h"
#include "bpf/include/offcpu.h"
#include "offcpu.skel.h"
#include "unwind/user_unwind.h"

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
    // Run on demand (seed_blocked_threads), not attached with the rest.
    bpf_program__set_autoattach(sk->progs.dump_threads, false);
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

namespace {

uint64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // what bpf_ktime_get_ns() reads
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Same mixing as tp_hash_stack (bpf/lib/unwind.bpf.h), other seeds: stacks
// made in user space share the stacks map with the BPF ones.
uint64_t hash_stack(const tp_stack& st, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (uint32_t i = 0; i < st.len && i < TP_MAX_FRAMES; i++) {
    h ^= st.ips[i];
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return h ? h : 1;
}

uint64_t store_stack(int stacks_fd, const std::vector<uint64_t>& ips, uint32_t flags, uint64_t seed) {
  if (ips.empty()) return 0;
  tp_stack st{};
  st.len = static_cast<__u32>(std::min<size_t>(ips.size(), TP_MAX_FRAMES));
  st.flags = flags;
  for (uint32_t i = 0; i < st.len; i++) st.ips[i] = ips[i];
  uint64_t h = hash_stack(st, seed);
  if (bpf_map_update_elem(stacks_fd, &h, &st, BPF_ANY) != 0) return 0;
  return h;
}

// State letter and context switches of a thread, from /proc (the check
// that it did not run between the dump and the seeding).
bool thread_still_blocked(uint32_t pid, uint32_t tid, uint64_t switches) {
  std::string base = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid);
  std::ifstream status(base + "/status");
  std::string line;
  char state = 0;
  uint64_t total = 0;
  while (std::getline(status, line)) {
    if (line.rfind("State:", 0) == 0) {
      std::istringstream in(line.substr(6));
      in >> state;
    } else if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
               line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
      total += std::stoull(line.substr(line.find(':') + 1));
    }
  }
  return (state == 'S' || state == 'D') && total == switches;
}

}  // namespace

Result<std::vector<offcpu_thread_dump>> OffCpuProbe::dump_threads(uint32_t pid) {
  skel_->bss->iter_tgid = pid;
  bpf_link* link = bpf_program__attach_iter(skel_->progs.dump_threads, nullptr);
  if (!link) return Error::from_errno("failed to attach the offcpu task iterator", errno);
  int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0) {
    int err = errno;
    bpf_link__destroy(link);
    return Error::from_errno("failed to create the offcpu task iterator", err);
  }
  std::vector<offcpu_thread_dump> threads;
  offcpu_thread_dump d;
  size_t have = 0;
  int retries = 0;
  for (;;) {
    ssize_t n = ::read(fd, reinterpret_cast<char*>(&d) + have, sizeof d - have);
    if (n < 0 && (errno == EINTR || errno == EAGAIN) && ++retries < 100) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      bpf_link__destroy(link);
      skel_->bss->iter_tgid = 0;
      return Error::from_errno("failed to read the offcpu task iterator", err);
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
    if (have == sizeof d) {
      threads.push_back(d);
      have = 0;
    }
  }
  ::close(fd);
  bpf_link__destroy(link);
  skel_->bss->iter_tgid = 0;
  return threads;
}

Result<size_t> OffCpuProbe::seed_blocked_threads(uint32_t pid) {
  auto dumped = dump_threads(pid);
  if (!dumped) return dumped.error();
  std::vector<offcpu_thread_dump> threads = dumped.take();

  uint32_t mask = skel_->rodata->state_mask;
  int stacks_fd = session_.maps().stacks_fd();
  int start_fd = bpf_map__fd(skel_->maps.start);
  // Stacks first (the unwind builds CFI tables), then one timestamp for
  // every record: the window starts right after this call, so the seeded
  // blocks count from (almost exactly) its start.
  UserUnwinder unwinder;
  struct Seed {
    uint32_t tid;
    uint64_t switches;
    offcpu_start record;
  };
  std::vector<Seed> seeds;
  for (const offcpu_thread_dump& t : threads) {
    if (t.state != OFFCPU_SLEEPING && t.state != OFFCPU_UNINTERRUPTIBLE) continue;
    if (!(mask & (1u << t.state))) continue;
    offcpu_start s{};
    s.tgid = t.tgid;
    s.state = t.state;
    s.flags = OFFCPU_START_SEEDED;
    std::memcpy(s.comm, t.comm, sizeof s.comm);
    if (t.ip) {
      UserUnwindResult u = unwinder.unwind(pid, UserRegs{t.ip, t.sp, t.bp});
      s.user_stack = store_stack(stacks_fd, u.ips, u.flags, 0x73656564ULL /* "seed" */);
    }
    if (opts_.kernel_stacks && t.kstack_len) {
      std::vector<uint64_t> k(t.kstack, t.kstack + std::min<uint32_t>(t.kstack_len, OFFCPU_ITER_KSTACK));
      s.kernel_stack = store_stack(stacks_fd, k, 0, 0x6b65726e656cULL ^ 0x73656564ULL);
    }
    seeds.push_back({t.tid, t.switches, s});
  }
  uint64_t now = monotonic_ns();
  size_t seeded = 0;
  for (Seed& seed : seeds) {
    seed.record.ts_ns = now;
    // A record from a real switch-out since we attached is better: keep it.
    if (bpf_map_update_elem(start_fd, &seed.tid, &seed.record, BPF_NOEXIST) != 0) continue;
    // It may have woken between the dump and now: then this record would
    // stand for a block that ended. Undo it (if no switch replaced it).
    if (!thread_still_blocked(pid, seed.tid, seed.switches)) {
      offcpu_start cur{};
      if (bpf_map_lookup_elem(start_fd, &seed.tid, &cur) == 0 && (cur.flags & OFFCPU_START_SEEDED) &&
          cur.ts_ns == now)
        bpf_map_delete_elem(start_fd, &seed.tid);
      continue;
    }
    seeded++;
  }
  seeded_threads_ += seeded;
  return seeded;
}

void OffCpuProbe::account_still_blocked() {
  int fd = bpf_map__fd(skel_->maps.start);
  uint64_t now = monotonic_ns();
  uint64_t min_ns = opts_.min_block_us * 1000;
  uint64_t max_ns = opts_.max_block_us ? opts_.max_block_us * 1000 : ~0ULL;
  StackAggregate agg(2);
  std::map<std::pair<uint32_t, const char*>, uint64_t> ns_by_state;
  // The BPF side takes kernel stacks at switch-in, which these threads have
  // not had: take theirs now from the task iterator (they are still blocked
  // where they switched out; one that woke meanwhile gets none).
  std::map<uint32_t, uint64_t> kernel_stack_of;
  std::map<uint32_t, bool> dumped_tgid;
  int stacks_fd = session_.maps().stacks_fd();
  __u32 key = 0, next = 0;
  bool first = true;
  size_t guard = 0;
  while (guard++ < opts_.max_threads + 1u &&
         bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
    first = false;
    key = next;
    offcpu_start s{};
    if (bpf_map_lookup_elem(fd, &key, &s) != 0 || s.ts_ns == 0 || s.ts_ns > now) continue;
    uint64_t delta = now - s.ts_ns;
    if (delta < min_ns || delta > max_ns) continue;
    if (opts_.kernel_stacks && !s.kernel_stack) {
      if (!dumped_tgid[s.tgid]) {
        dumped_tgid[s.tgid] = true;
        auto threads = dump_threads(s.tgid);
        if (threads) {
          for (const offcpu_thread_dump& t : *threads) {
            if (!t.kstack_len || t.state == OFFCPU_RUNNABLE) continue;
            std::vector<uint64_t> k(t.kstack, t.kstack + std::min<uint32_t>(t.kstack_len, OFFCPU_ITER_KSTACK));
            kernel_stack_of[t.tid] = store_stack(stacks_fd, k, 0, 0x6b65726e656cULL ^ 0x656e64ULL /* "end" */);
          }
        }
      }
      auto it = kernel_stack_of.find(key);
      if (it != kernel_stack_of.end()) s.kernel_stack = it->second;
    }
    agg.add(StackAggKey::from_bpf(s.tgid, key, s.user_stack, s.kernel_stack, s.comm, sizeof(s.comm),
                                  offcpu_state_name(s.state)),
            {static_cast<int64_t>(delta), 1});
    ns_by_state[{s.tgid, offcpu_state_name(s.state)}] += delta;
    blocks_++;
    still_blocked_++;
  }
  subs_.fan_out(agg);
  std::lock_guard<std::mutex> lock(totals_mu_);
  for (const auto& [k, ns] : ns_by_state) seconds_by_state_.at(k.first)[k.second] += static_cast<double>(ns) / 1e9;
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
  c[TP_CTR_OFFCPU_SEEDED] = seeded_threads_;
  c[TP_CTR_OFFCPU_STILL_BLOCKED] = still_blocked_;
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

// Shutdown: the skeleton's tracepoint links from several threads.
void OffCpuProbe::release_links() {
  if (skel_) detach_skeleton_concurrently(skel_->skeleton);
}

}  // namespace tickprobe
