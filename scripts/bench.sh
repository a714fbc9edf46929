#!/usr/bin/env bash
# The one benchmark command: tickprobe and its peers measured side by side,
# each area in the same run, printed as ratios. Not a CI test (timing on a
# shared machine); results and the commands behind them: docs/benchmarks.md.
#
#   off-CPU      scripts/bench_offcpu.sh    vs libbpf-tools offcputime (pipe ping-pong)
#   CPU profile  scripts/bench_profile.sh   vs bpftrace profile, perf record --call-graph dwarf (tickgame + bots)
#   allocators   scripts/bench_leaks.sh     vs scripts/memleak.bt (BCC memleak in bpftrace), glibc and jemalloc
#   more areas   scripts/bench_micro_*.sh   every such script is run too, in name order (Google Benchmark
#                                           runs: agent memory, symbolization, aggregation)
#
# usage: scripts/bench.sh [AREA...]   AREA: offcpu profile leaks micro (default: all)
#   QUICK=1  fewer rounds and shorter phases (a smoke run, not for docs)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: needs root (BPF, uprobes, perf)" >&2; echo "hint: sudo scripts/bench.sh" >&2; exit 2; }
AREAS=${*:-offcpu profile leaks micro}
BIN=${BIN:-build/bin}
if [ -n "${QUICK:-}" ]; then R=1 P=3 OPS=400000; else R=4 P=5 OPS=2000000; fi
echo "tickprobe benchmarks on $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%FT%TZ)"
for a in $AREAS; do
  echo; echo "=== $a"
  case $a in
    offcpu) bash scripts/bench_offcpu.sh "$R" "$P" ;;
    profile) bash scripts/bench_profile.sh 200 "$((R > 2 ? 2 : R))" "$((P * 2))" ;;
    leaks)
      echo "--- glibc"; bash scripts/bench_leaks.sh "$OPS" 3
      if [ -x "$BIN/leak_fixture_jemalloc" ]; then
        echo "--- jemalloc"
        FIXTURE=$BIN/leak_fixture_jemalloc LIBC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 bash scripts/bench_leaks.sh "$OPS" 3
      else
        echo "(jemalloc: $BIN/leak_fixture_jemalloc not built; make -C build leak_fixture_jemalloc)"
      fi ;;
    micro)
      found=0
      for s in scripts/bench_micro_*.sh; do [ -e "$s" ] || continue; found=1; echo "--- $s"; bash "$s"; done
      [ "$found" = 1 ] || echo "(no scripts/bench_micro_*.sh yet)" ;;
    *) echo "bench: unknown area '$a'" >&2; echo "hint: offcpu profile leaks micro" >&2; exit 2 ;;
  esac
done
