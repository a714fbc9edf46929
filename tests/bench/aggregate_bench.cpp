// User-space aggregation throughput (issue 12 goal 5: >= 2M events/s on one
// core). An "event" is one entry of a family's in-kernel count map as the
// drain reads it: (tgid, tid, user stack, kernel stack, comm[, state]) ->
// values. The drain decodes each entry into a StackAggKey, adds it to the
// drain's StackAggregate, and fans the aggregate out to the subscribers (an
// agent capture, a one-shot recording): the loop of CpuProfileProbe::drain
// and OffCpuProbe::drain (collector/probes/{profile,offcpu}.cpp).
//
//   BM_AggregateProfileEntries  decode + aggregate + fan-out to one capture
//   BM_AggregateOffcpuEntries   the same with the off-CPU state label
//   BM_DrainProfileCountMap     the whole drain against a real BPF hash map
//                               (root): read-and-delete syscalls included
//
// Run: build/bin/aggregate_bench (scripts/bench_micro.sh compares with the goal).
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <linux/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "bpf/include/offcpu.h"
#include "bpf/include/profile.h"
#include "core/map_read.h"
#include "core/stack_family.h"
#include "model/stack_aggregate.h"

namespace {

using tickprobe::StackAggKey;
using tickprobe::StackAggregate;
using tickprobe::StackSubscribers;

// One drain interval of a busy server: `distinct` count-map entries over 64
// threads and a few thousand stacks (every entry of one drain is a distinct
// key: the kernel already summed repeats).
std::vector<profile_key> profile_keys(size_t distinct, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<profile_key> keys(distinct);
  const char* names[] = {"tick-main", "net-io", "worker-3", "db-pool", "gc"};
  for (size_t i = 0; i < distinct; ++i) {
    profile_key& k = keys[i];
    std::memset(&k, 0, sizeof k);
    k.tgid = 4242;
    k.pid = 4242 + static_cast<uint32_t>(i % 64);
    k.user_stack = rng() | 1;
    k.kernel_stack = (i % 3 == 0) ? (rng() | 1) : 0;
    std::memcpy(k.comm, names[i % 5], std::min(sizeof k.comm - 1, std::strlen(names[i % 5])));
  }
  return keys;
}

const char* state_name(uint32_t s) { return s == 0 ? "S" : s == 1 ? "D" : "R"; }

void BM_AggregateProfileEntries(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  auto keys = profile_keys(n, 1);
  const int64_t period = 1000000000LL / 99;
  StackAggregate capture(2);  // a long-lived subscriber: keys repeat across drains
  StackSubscribers subs;
  subs.subscribe(&capture);
  uint64_t samples = 0;
  for (auto _ : state) {
    // CpuProfileProbe::drain's loop body, per entry.
    StackAggregate agg(2);
    std::map<uint32_t, uint64_t> per_tgid;
    for (size_t i = 0; i < n; ++i) {
      const profile_key& k = keys[i];
      uint64_t v = 1 + (i & 7);
      agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm)),
              {static_cast<int64_t>(v), static_cast<int64_t>(v) * period});
      samples += v;
      per_tgid[k.tgid] += v;
    }
    subs.fan_out(agg);
    benchmark::DoNotOptimize(per_tgid);
  }
  benchmark::DoNotOptimize(samples);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.counters["capture_keys"] = static_cast<double>(capture.entries().size());
}

void BM_AggregateOffcpuEntries(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  auto pkeys = profile_keys(n, 2);
  std::vector<offcpu_key> keys(n);
  for (size_t i = 0; i < n; ++i) {
    std::memset(&keys[i], 0, sizeof keys[i]);
    keys[i].tgid = pkeys[i].tgid;
    keys[i].pid = pkeys[i].pid;
    keys[i].user_stack = pkeys[i].user_stack;
    keys[i].kernel_stack = pkeys[i].kernel_stack | 1;
    keys[i].state = static_cast<uint32_t>(i % 3);
    std::memcpy(keys[i].comm, pkeys[i].comm, sizeof keys[i].comm);
  }
  StackAggregate capture(2);
  StackSubscribers subs;
  subs.subscribe(&capture);
  for (auto _ : state) {
    // OffCpuProbe::drain's loop body, per entry.
    StackAggregate agg(2);
    std::map<std::pair<uint32_t, const char*>, uint64_t> ns_by_state;
    for (size_t i = 0; i < n; ++i) {
      const offcpu_key& k = keys[i];
      offcpu_value v{1000 + i, 1 + (i & 3), 1000 + i};
      agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm),
                                    state_name(k.state)),
              {static_cast<int64_t>(v.total_ns), static_cast<int64_t>(v.count)});
      ns_by_state[{k.tgid, state_name(k.state)}] += v.total_ns;
    }
    subs.fan_out(agg);
    benchmark::DoNotOptimize(ns_by_state);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

// The real drain: fill a BPF hash map shaped like profile's counts_N, then
// drain_hash_map (read-and-delete) into the aggregate. The fill is not timed.
void BM_DrainProfileCountMap(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_counts", sizeof(profile_key), sizeof(uint64_t),
                          static_cast<uint32_t>(n), nullptr);
  if (fd < 0) {
    state.SkipWithError("bpf_map_create failed (needs root)");
    return;
  }
  auto keys = profile_keys(n, 3);
  const int64_t period = 1000000000LL / 99;
  StackAggregate capture(2);
  StackSubscribers subs;
  subs.subscribe(&capture);
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < n; ++i) {
      uint64_t v = 1 + (i & 7);
      bpf_map_update_elem(fd, &keys[i], &v, BPF_ANY);
    }
    state.ResumeTiming();
    StackAggregate agg(2);
    std::map<uint32_t, uint64_t> per_tgid;
    size_t drained = tickprobe::drain_hash_map<profile_key, uint64_t>(
        fd,
        [&](const profile_key& k, uint64_t v) {
          agg.add(StackAggKey::from_bpf(k.tgid, k.pid, k.user_stack, k.kernel_stack, k.comm, sizeof(k.comm)),
                  {static_cast<int64_t>(v), static_cast<int64_t>(v) * period});
          per_tgid[k.tgid] += v;
        },
        n);
    subs.fan_out(agg);
    if (drained != n) state.SkipWithError("drain lost entries");
  }
  ::close(fd);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

}  // namespace

BENCHMARK(BM_AggregateProfileEntries)->Arg(16384)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AggregateOffcpuEntries)->Arg(16384)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DrainProfileCountMap)->Arg(16384)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
