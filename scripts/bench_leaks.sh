#!/usr/bin/env bash
# Per-call cost of tracing libc allocations, measured side by side in one run.
#
# Each phase runs a fresh `leak_fixture --bench` (malloc 64..1024 bytes,
# touch, free; every 64th block kept in a ring of 1024) with one tracer, the
# rounds interleaved so drift hits all phases alike:
#   none              no tracing
#   bare              bpftrace, empty probes on exactly tickprobe's exact-mode
#                     set (uprobe + uretprobe on malloc, calloc, realloc;
#                     uprobe on free): the trap cost alone, the floor
#   exact             tickprobe leaks --pid PID --json -o OUT
#   sampled           the same with --sample-bytes 524288
#   bpftrace-memleak  scripts/memleak.bt (a stack per allocation, like BCC memleak)
# The tracer attaches while the fixture waits (--wait-for-signal); the timed
# loop starts on SIGUSR1 once every probed function's entry in the fixture
# carries a breakpoint (checked in /proc/PID/mem) and, for bpftrace, its
# BEGIN probe has run (after all attaches). A tracer that fails to start
# skips its phase, with the reason.
#
# Side effect: bpftrace 0.17 registers its uprobes for every process (-p does
# not narrow uprobes, only the /pid/ predicate filters), so during the bare and
# bpftrace-memleak phases every malloc/free on the machine traps (~1-4 us
# each): other work slows down, and heavy malloc users elsewhere add noise.
# tickprobe attaches per pid, which does not have this effect.
#
# Reported per phase: ns per malloc/free call (median of the rounds), the
# overhead (ns/op - none) and overhead / bare overhead (1.0 = no more than the
# trap itself). Traced phases run TRACED_OPS iterations, the untraced one OPS
# (it is ~1000x faster); ns/op is per call either way.
#
# usage: scripts/bench_leaks.sh [OPS=2000000] [ROUNDS=3]
# Env: BIN (build/bin), FIXTURE ($BIN/leak_fixture), TICKPROBE ($BIN/tickprobe),
#      TRACED_OPS (OPS/4), PHASES ("none bare exact sampled bpftrace-memleak"),
#      LIBC (/lib/x86_64-linux-gnu/libc.so.6), ATTACH_TIMEOUT (30 s), KEEP=1 keeps logs.
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-2000000}; ROUNDS=${2:-3}
BIN=${BIN:-build/bin}
FIXTURE=${FIXTURE:-$BIN/leak_fixture}
TICKPROBE=${TICKPROBE:-$BIN/tickprobe}
TRACED_OPS=${TRACED_OPS:-$((OPS / 4))}
PHASES=${PHASES:-"none bare exact sampled bpftrace-memleak"}
LIBC=${LIBC:-/lib/x86_64-linux-gnu/libc.so.6}
ATTACH_TIMEOUT=${ATTACH_TIMEOUT:-30}
EXACT_FUNCS=(malloc calloc realloc free)  # tickprobe leaks' exact-mode probe set

[ "$(id -u)" = 0 ] || { echo "bench_leaks: needs root (uprobes)" >&2; exit 1; }
[ -x "$FIXTURE" ] || { echo "bench_leaks: $FIXTURE not found" >&2; echo "hint: cmake --build build --target leak_fixture (or FIXTURE=path)" >&2; exit 1; }
[ -r "$LIBC" ] || { echo "bench_leaks: $LIBC not found" >&2; echo "hint: set LIBC to the target's libc" >&2; exit 1; }
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

WORK=$(mktemp -d /tmp/bench_leaks.XXXXXX)
# memleak.bt probes glibc; for another allocator (LIBC=.../libjemalloc.so.2)
# the same script with its path: the same probes on that library.
MEMLEAK_BT=scripts/memleak.bt
if [ "$LIBC" != /lib/x86_64-linux-gnu/libc.so.6 ]; then
  MEMLEAK_BT=$WORK/memleak.bt
  # (jemalloc has no pvalloc: probes the library lacks are left out)
  python3 - "$LIBC" scripts/memleak.bt > "$MEMLEAK_BT" <<'PY'
import re, subprocess, sys
lib, src = sys.argv[1], open(sys.argv[2]).read().replace("/lib/x86_64-linux-gnu/libc.so.6", sys.argv[1])
have = set(l.split()[-1] for l in subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True).stdout.splitlines())
for fn in ("pvalloc", "valloc", "memalign", "aligned_alloc", "posix_memalign"):
    if fn not in have:
        src = re.sub(r",\s*\n\s*u(ret)?probe:%s:%s\b" % (re.escape(lib), fn), "", src)
print(src)
PY
fi
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap "exit 1" INT TERM

cat > "$WORK/bare.bt" <<BT
BEGIN { printf("attached\n"); }
uprobe:$LIBC:malloc, uprobe:$LIBC:calloc, uprobe:$LIBC:realloc, uprobe:$LIBC:free /pid == \$1/ {}
uretprobe:$LIBC:malloc, uretprobe:$LIBC:calloc, uretprobe:$LIBC:realloc /pid == \$1/ {}
BT

# wait_armed PID TOOL_PID TIMEOUT FUNC...: 0 once every FUNC's first 16 bytes in
# PID's libc mapping differs from the file (uprobe breakpoint installed),
# 1 if TOOL_PID exits first, 2 on timeout.
wait_armed() {
  python3 - "$LIBC" "$@" <<'PY'
import os, struct, subprocess, sys, time
libc, pid, tool, timeout, funcs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
real = os.path.realpath(libc)
data = open(real, "rb").read()
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
loads = []
for i in range(phnum):
    p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
    if p_type == 1:
        loads.append((p_vaddr, p_offset, p_filesz))
syms = {}
for line in subprocess.run(["nm", "-D", "--defined-only", real], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 3:
        syms.setdefault(f[2].split("@")[0], int(f[0], 16))
offsets = []
for fn in funcs:
    v = syms[fn]
    offsets.append(next(v - va + off for va, off, sz in loads if va <= v < va + sz))
def mapped(off):
    with open(f"/proc/{pid}/maps") as m:
        for line in m:
            f = line.split()
            if len(f) >= 6 and os.path.realpath(f[5]) == real and "x" in f[1]:
                lo, hi = (int(x, 16) for x in f[0].split("-"))
                if int(f[2], 16) <= off < int(f[2], 16) + hi - lo:
                    return lo + off - int(f[2], 16)
    return None
addrs = [mapped(o) for o in offsets]
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    if not os.path.exists(f"/proc/{tool}") or open(f"/proc/{tool}/stat").read().split(")")[1].split()[0] == "Z":
        sys.exit(1)
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        armed = 0
        for a, o in zip(addrs, offsets):
            # A breakpoint in the first 160 bytes: tickprobe probes the first
            # instruction the kernel emulates, up to 160 bytes past the entry
            # (collector/core/uprobe_site.h), e.g. jemalloc's free at +48.
            mem.seek(a)
            armed += mem.read(160) != data[o:o + 160]
    if armed == len(addrs):
        sys.exit(0)
    time.sleep(0.05)
sys.exit(2)
PY
}

SKIP_REASON_FILE=$WORK/skip  # "phase<TAB>reason" lines
skipped() { awk -F'\t' -v p="$1" '$1 == p {print $2; exit}' "$SKIP_REASON_FILE" 2>/dev/null; }
skip() { printf '%s\t%s\n' "$1" "$2" >> "$SKIP_REASON_FILE"; echo "  skip $1: $2" >&2; }

# run_phase PHASE ROUND: sets RESULT_JSON to the fixture's JSON line (empty if skipped).
run_phase() {
  RESULT_JSON=""
  local phase=$1 round=$2 ops=$TRACED_OPS fx tool="" log=$WORK/$1.$2.log marker="" out=$WORK/$1.$2.fixture
  [ "$phase" = none ] && ops=$OPS
  : > "$out"  # exists before the fixture's shell opens it (the ready poll reads it)
  "$FIXTURE" --bench "$ops" --wait-for-signal > "$out" 2> "$out.err" & fx=$!; PIDS+=("$fx")
  for _ in $(seq 100); do grep -q '^ready' "$out" && break; sleep 0.05; done
  grep -q '^ready' "$out" || { skip "$phase" "fixture did not start: $(tail -1 "$out.err")"; kill "$fx"; return 0; }
  case $phase in
    none) ;;
    bare) bpftrace "$WORK/bare.bt" "$fx" > "$log" 2>&1 & tool=$!; marker=attached ;;
    bpftrace-memleak)
      BPFTRACE_MAP_KEYS_MAX=65536 bpftrace "$MEMLEAK_BT" "$fx" > "$log" 2>&1 & tool=$!; marker=Tracing ;;
    exact) "$TICKPROBE" leaks --pid "$fx" --duration 600 --json -o "$WORK/exact.$round.json" > "$log" 2>&1 & tool=$! ;;
    sampled)
      "$TICKPROBE" leaks --pid "$fx" --duration 600 --json --sample-bytes 524288 -o "$WORK/sampled.$round.json" \
        > "$log" 2>&1 & tool=$! ;;
  esac
  if [ -n "$tool" ]; then
    PIDS+=("$tool")
    local rc=0
    wait_armed "$fx" "$tool" "$ATTACH_TIMEOUT" "${EXACT_FUNCS[@]}" || rc=$?
    if [ -n "$marker" ] && [ $rc = 0 ]; then  # bpftrace runs BEGIN after every attach
      rc=2
      for _ in $(seq $((ATTACH_TIMEOUT * 10))); do
        grep -q "^$marker" "$log" && { rc=0; break; }
        kill -0 "$tool" 2>/dev/null || { rc=1; break; }
        sleep 0.1
      done
    fi
    [ -z "$marker" ] && [ $rc = 0 ] && sleep 1  # uretprobes may attach after the entry probes
    if [ $rc != 0 ]; then
      local why="did not attach within ${ATTACH_TIMEOUT}s"
      [ $rc = 1 ] && why="exited: $(grep -v '^$' "$log" | grep -v RLIMIT_MEMLOCK | head -2 | tr '\n' ' ')"
      skip "$phase" "$why"
      kill -INT "$tool" 2>/dev/null || true; kill "$fx" 2>/dev/null || true
      wait "$tool" "$fx" 2>/dev/null || true
      return 0
    fi
  fi
  kill -USR1 "$fx"
  wait "$fx" || true
  if [ -n "$tool" ]; then
    kill -INT "$tool" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$tool" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tool" 2>/dev/null || true
    wait "$tool" 2>/dev/null || true
  fi
  RESULT_JSON=$(grep '^{' "$out" || true)
  [ -n "$RESULT_JSON" ] || skip "$phase" "fixture printed no result: $(tail -1 "$out.err")"
}

# Tools that cannot run at all are skipped up front, once.
for phase in $PHASES; do
  case $phase in
    none) ;;
    bare | bpftrace-memleak)
      command -v bpftrace > /dev/null || skip "$phase" "bpftrace not found (hint: apt-get install bpftrace)" ;;
    exact | sampled)
      if [ ! -x "$TICKPROBE" ]; then skip "$phase" "$TICKPROBE not found"
      elif ! "$TICKPROBE" --help 2>&1 | grep -Eq '^ +leaks '; then skip "$phase" "$TICKPROBE has no 'leaks' subcommand"
      fi ;;
    *) echo "bench_leaks: unknown phase $phase" >&2; exit 2 ;;
  esac
done

echo "leak tracing overhead: $OPS ops untraced, $TRACED_OPS traced, $ROUNDS rounds ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "fixture: $FIXTURE; libc: $LIBC"
printf "%-18s %5s %10s %9s %9s\n" phase round ns/op calls seconds
RESULTS=$WORK/results  # "phase ns_per_op" lines
: > "$RESULTS"
t_start=$(date +%s)
for r in $(seq "$ROUNDS"); do
  for phase in $PHASES; do
    [ -n "$(skipped "$phase")" ] && continue
    run_phase "$phase" "$r"
    json=$RESULT_JSON
    [ -z "$json" ] && continue
    read -r nsop calls secs < <(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["ns_per_op"], j["ops"], j["seconds"])' "$json")
    printf "%-18s %5s %10s %9s %9s\n" "$phase" "$r" "$nsop" "$calls" "$secs"
    echo "$phase $nsop" >> "$RESULTS"
  done
done

python3 - "$RESULTS" "$SKIP_REASON_FILE" "$PHASES" "$OPS" "$TRACED_OPS" "$ROUNDS" "$(($(date +%s) - t_start))" <<'PY'
import json, os, statistics, sys
results, skipfile, phases, ops, traced_ops, rounds, wall = sys.argv[1:8]
runs = {}
for line in open(results):
    p, v = line.split()
    runs.setdefault(p, []).append(float(v))
skips = {}
if os.path.exists(skipfile):
    for line in open(skipfile):
        p, why = line.rstrip("\n").split("\t", 1)
        skips.setdefault(p, why)
med = {p: statistics.median(v) for p, v in runs.items()}
base = med.get("none")
bare = med["bare"] - base if base is not None and "bare" in med else None
print()
print(f"{'phase':18s} {'ns/op':>10s} {'overhead ns':>12s} {'x bare':>8s}  rounds")
out = {"ops": int(ops), "traced_ops": int(traced_ops), "rounds": int(rounds), "wall_s": int(wall), "phases": {}}
for p in phases.split():
    if p not in med:
        why = skips.get(p, "no result")
        print(f"{p:18s} {'skipped':>10s}  {why}")
        out["phases"][p] = {"skipped": why}
        continue
    o = med[p] - base if base is not None else None
    x = o / bare if o is not None and bare else None
    fmt = lambda v, f: f"{v:{f}}" if v is not None else "-"
    print(f"{p:18s} {med[p]:10.1f} {fmt(o, '12.1f'):>12s} {fmt(x, '8.2f'):>8s}  {' '.join(f'{v:.1f}' for v in runs[p])}")
    out["phases"][p] = {"ns_per_op": round(med[p], 2), "overhead_ns": None if o is None else round(o, 2),
                        "vs_bare": None if x is None else round(x, 3), "runs": runs[p]}
print()
print(json.dumps(out, separators=(",", ":")))
PY
