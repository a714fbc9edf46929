// Symbolizer throughput (issue 12 goal 4: 100k unique addresses in <= 1 s
// cold and <= 50 ms warm).
//
// The addresses: 100k distinct code addresses of this process, drawn from
// its executable mappings in proportion to their size: this benchmark binary
// itself (it links the whole collector, built with symbols and DWARF),
// libcrypto (dlopen'ed: a big stripped library, named from .dynsym and
// .eh_frame FDEs), libstdc++, libc, libelf/libdw, ... Shuffled, so lookups
// do not walk the tables in order.
//
//   BM_Cold*  a new Symbolizer per iteration: /proc/PID/maps snapshot, every
//             ELF opened and its symbol tables read, names demangled (and,
//             with line info, DWARF read), then the 100k addresses
//   BM_Warm*  the same Symbolizer again (binaries, names cached)
//
// Run: build/bin/symbolize_bench (scripts/bench_micro.sh compares with the goals).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <unordered_set>

#include "symbolize/symbolizer.h"

namespace {

constexpr size_t kAddresses = 100000;

void map_big_library() {
  static void* handle = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
  (void)handle;  // when missing, the other mappings still give 100k addresses
}

const std::vector<uint64_t>& unique_code_addresses() {
  static std::vector<uint64_t> addrs = [] {
    map_big_library();
    std::vector<tickprobe::Mapping> code;
    uint64_t total = 0;
    for (const auto& m : tickprobe::read_proc_maps(static_cast<uint32_t>(getpid())))
      if (!m.path.empty() && m.path[0] == '/') {
        code.push_back(m);
        total += m.end - m.start;
      }
    std::mt19937_64 rng(42);
    std::unordered_set<uint64_t> seen;
    std::vector<uint64_t> out;
    out.reserve(kAddresses);
    while (out.size() < kAddresses && total > 0) {
      uint64_t at = rng() % total;
      for (const auto& m : code) {
        uint64_t len = m.end - m.start;
        if (at < len) {
          uint64_t a = m.start + at;
          if (seen.insert(a).second) out.push_back(a);
          break;
        }
        at -= len;
      }
    }
    std::shuffle(out.begin(), out.end(), rng);
    return out;
  }();
  return addrs;
}

void report(benchmark::State& state, const tickprobe::Symbolizer& sym) {
  auto s = sym.stats();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * unique_code_addresses().size()));
  state.counters["binaries"] = static_cast<double>(s.binaries_cached);
  double frames = static_cast<double>(s.resolved_frames + s.unknown_frames);
  state.counters["named_share"] = frames > 0 ? static_cast<double>(s.resolved_frames) / frames : 0;
}

void cold(benchmark::State& state, bool line_info) {
  const auto& addrs = unique_code_addresses();
  uint32_t pid = static_cast<uint32_t>(getpid());
  tickprobe::SymbolizerOptions opts;
  opts.line_info = line_info;
  opts.debuginfod = false;  // no network in a benchmark
  std::unique_ptr<tickprobe::Symbolizer> last;
  for (auto _ : state) {
    auto sym = std::make_unique<tickprobe::Symbolizer>(opts);
    auto frames = sym->symbolize_user(pid, addrs, false);
    benchmark::DoNotOptimize(frames.data());
    state.PauseTiming();  // destruction is not part of the lookup
    last = std::move(sym);
    frames.clear();
    state.ResumeTiming();
  }
  if (last) report(state, *last);
}

void warm(benchmark::State& state, bool line_info) {
  const auto& addrs = unique_code_addresses();
  uint32_t pid = static_cast<uint32_t>(getpid());
  tickprobe::SymbolizerOptions opts;
  opts.line_info = line_info;
  opts.debuginfod = false;
  tickprobe::Symbolizer sym(opts);
  sym.symbolize_user(pid, addrs, false);  // warm-up: parse binaries, fill caches
  for (auto _ : state) {
    auto frames = sym.symbolize_user(pid, addrs, false);
    benchmark::DoNotOptimize(frames.data());
  }
  report(state, sym);
}

void BM_Cold100kUnique(benchmark::State& state) { cold(state, false); }
void BM_Warm100kUnique(benchmark::State& state) { warm(state, false); }
void BM_Cold100kUniqueLineInfo(benchmark::State& state) { cold(state, true); }
void BM_Warm100kUniqueLineInfo(benchmark::State& state) { warm(state, true); }

// Kernel: 100k addresses around the kallsyms text symbols (needs root to see
// addresses; otherwise every frame is unknown and the number means little).
void BM_WarmKernel100k(benchmark::State& state) {
  tickprobe::Symbolizer sym;
  std::vector<uint64_t> addrs;
  {
    FILE* f = std::fopen("/proc/kallsyms", "r");
    unsigned long long a;
    char type;
    char name[256];
    while (f && std::fscanf(f, "%llx %c %255s%*[^\n]", &a, &type, name) == 3)
      if ((type == 't' || type == 'T') && a != 0) addrs.push_back(a + 3);
    if (f) std::fclose(f);
  }
  if (addrs.empty()) {
    state.SkipWithError("no kallsyms addresses");
    return;
  }
  std::mt19937_64 rng(7);
  std::vector<uint64_t> sample(kAddresses);
  for (auto& a : sample) a = addrs[rng() % addrs.size()];
  sym.symbolize_kernel(sample);  // warm-up: read kallsyms
  for (auto _ : state) {
    auto frames = sym.symbolize_kernel(sample);
    benchmark::DoNotOptimize(frames.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * sample.size()));
}

}  // namespace

// Cold runs are few: each one re-reads every binary.
BENCHMARK(BM_Cold100kUnique)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_Warm100kUnique)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Cold100kUniqueLineInfo)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_Warm100kUniqueLineInfo)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WarmKernel100k)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
