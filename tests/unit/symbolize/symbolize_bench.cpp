// Symbolizer throughput after warm-up: 100k addresses spread over the
// executable mappings of this process (itself, libc, libstdc++, ...).
// Run: build-dir/bin/symbolize_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <random>

#include "symbolize/symbolizer.h"

namespace {

std::vector<uint64_t> random_code_addresses(size_t n) {
  std::vector<tickprobe::Mapping> code;
  for (const auto& m : tickprobe::read_proc_maps(static_cast<uint32_t>(getpid())))
    if (!m.path.empty() && m.path[0] == '/') code.push_back(m);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> addrs;
  addrs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& m = code[rng() % code.size()];
    addrs.push_back(m.start + rng() % (m.end - m.start));
  }
  return addrs;
}

void run(benchmark::State& state, bool line_info) {
  tickprobe::SymbolizerOptions opts;
  opts.line_info = line_info;
  tickprobe::Symbolizer sym(opts);
  auto addrs = random_code_addresses(100000);
  uint32_t pid = static_cast<uint32_t>(getpid());
  sym.symbolize_user(pid, addrs, false);  // warm-up: parse binaries
  for (auto _ : state) {
    auto frames = sym.symbolize_user(pid, addrs, false);
    benchmark::DoNotOptimize(frames.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * addrs.size()));
}

void BM_Symbolize100k(benchmark::State& state) { run(state, false); }
void BM_Symbolize100kLineInfo(benchmark::State& state) { run(state, true); }

// Kernel: 100k addresses around the kallsyms text symbols (needs root to see
// addresses; otherwise every frame is unknown and the number means little).
void BM_SymbolizeKernel100k(benchmark::State& state) {
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
  std::vector<uint64_t> sample(100000);
  for (auto& a : sample) a = addrs[rng() % addrs.size()];
  sym.symbolize_kernel(sample);  // warm-up: read kallsyms
  for (auto _ : state) {
    auto frames = sym.symbolize_kernel(sample);
    benchmark::DoNotOptimize(frames.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * sample.size()));
}

}  // namespace

BENCHMARK(BM_SymbolizeKernel100k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Symbolize100k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Symbolize100kLineInfo)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
