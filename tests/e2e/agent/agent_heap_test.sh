#!/usr/bin/env bash
# The agent's Go-style allocation profiles, scraped like a continuous
# profiler does (curl) and read with the real `go tool pprof -top`:
#   /debug/pprof/heap              inuse_space by default: the leak and the
#                                  warm cache (never freed) hold the memory;
#   /debug/pprof/allocs?seconds=3  alloc_space by default, a 3 s delta: the
#                                  pool's churn and the leak at their known
#                                  ratio (1.125 x 8 KiB x 100/s : 256 KiB/s);
#   /debug/pprof/growth?seconds=3  page_fault_space: the leak's fresh memory
#                                  (the pool reuses freed chunks).
# The leak fixture (tests/fixtures/leak) waits for SIGUSR1 until the agent
# is up, so the allocation probes see its timed part from the start.
set -euo pipefail
BIN=$1
. "$(dirname "$0")/../lib.sh"
e2e_init
export HOME=$WORK GOCACHE=$WORK/gocache PPROF_TMPDIR=$WORK PPROF_BINARY_PATH=/nonexistent

"$BIN/leak_fixture" --duration 60 --wait-for-signal --leak-bytes-per-sec 262144 --leak-size 4096 \
  --pool 64 --pool-size 8192 --pool-ops-per-sec 100 --cache-bytes 1048576 > "$WORK/fixture.log" 2>&1 & FX=$!
PIDS+=($FX)
for _ in $(seq 100); do grep -q '^ready ' "$WORK/fixture.log" && break; sleep 0.1; done
grep -q '^ready ' "$WORK/fixture.log" || fail "leak fixture did not start"

# Allocation tracing is off by default: the endpoints say how to turn it on.
start_agent "$BIN" --pid "$FX" --no-offcpu --no-runtime
CODE=$(curl -s -o "$WORK/off.txt" -w '%{http_code}' "$AGENT_URL/debug/pprof/heap")
[ "$CODE" = 400 ] && grep -q -- '--leaks' "$WORK/off.txt" || fail "heap without --leaks: $CODE $(cat "$WORK/off.txt")"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

start_agent "$BIN" --pid "$FX" --leaks --no-offcpu --no-runtime
kill -USR1 "$FX"
sleep 3
curl -sf -o "$WORK/heap.pb.gz" "$AGENT_URL/debug/pprof/heap" || fail "GET /debug/pprof/heap"
curl -sf -o "$WORK/allocs.pb.gz" "$AGENT_URL/debug/pprof/allocs?seconds=3" || fail "GET /debug/pprof/allocs?seconds=3"
# The growth family (on by default): the leak memsets fresh heap, so its
# first touches (brk growth of glibc's heap) are where memory grows.
curl -sf -o "$WORK/growth.pb.gz" "$AGENT_URL/debug/pprof/growth?seconds=3" || fail "GET /debug/pprof/growth?seconds=3"
go tool pprof -top -unit=B "$WORK/growth.pb.gz" > "$WORK/growth.txt" 2>&1 || { cat "$WORK/growth.txt"; fail "pprof growth"; }
go tool pprof -top -unit=B "$WORK/heap.pb.gz" > "$WORK/heap.txt" 2>&1 || { cat "$WORK/heap.txt"; fail "pprof heap"; }
go tool pprof -top -unit=B "$WORK/allocs.pb.gz" > "$WORK/allocs.txt" 2>&1 || { cat "$WORK/allocs.txt"; fail "pprof allocs"; }

python3 - "$WORK/heap.txt" "$WORK/allocs.txt" "$WORK/growth.txt" <<'PY' || fail "allocation profiles disagree with the fixture (see above)"
import re, sys
def rows(path):
    text = open(path).read()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(-?\d+)B?\s+[-\d.]+%\s+[-\d.]+%\s+(-?\d+)B?\s+[-\d.]+%\s+(.+?)\s*$", line)
        if m: out[m.group(3)] = (float(m.group(1)), float(m.group(2)))
    return text, out
heap_text, heap = rows(sys.argv[1])
allocs_text, allocs = rows(sys.argv[2])
bad = []
if "Type: inuse_space" not in heap_text: bad.append("heap's default is not inuse_space")
if "Type: alloc_space" not in allocs_text: bad.append("allocs' default is not alloc_space")
if "File: leak_fixture" not in heap_text: bad.append("File: is not the executable")
cum = lambda r, f: r.get(f, (0, 0))[1]
leak, cache = cum(heap, "leak_memory_slowly"), cum(heap, "warm_cache_fill")
print(f"heap inuse: leak_memory_slowly {leak:.0f} B, warm_cache_fill {cache:.0f} B, pool_churn {cum(heap, 'pool_churn'):.0f} B")
if abs(cache - 1048576) > 16384: bad.append("warm cache in use is not 1 MiB")
# At least the 3 s before the heap scrape of leaking, at 256 KiB/s.
if leak < 0.9 * 3 * 262144: bad.append("leak in use too small")
pool, leak_a = cum(allocs, "pool_churn"), cum(allocs, "leak_memory_slowly")
print(f"allocs delta 3 s: pool_churn {pool:.0f} B, leak_memory_slowly {leak_a:.0f} B, ratio {pool / max(leak_a, 1):.2f} (expected 3.52)")
if abs(leak_a - 3 * 262144) > 0.1 * 3 * 262144: bad.append("allocs delta: leak bytes not 3 s worth")
if abs(pool / max(leak_a, 1) - 3.52) > 0.1 * 3.52: bad.append("allocs delta: pool/leak ratio")
if cum(allocs, "warm_cache_fill") > 0: bad.append("allocs delta includes the cache filled before the window")
growth_text, growth = rows(sys.argv[3])
g = cum(growth, "leak_memory_slowly")
print(f"growth 3 s: leak_memory_slowly first touches {g:.0f} B (leaked about {3 * 262144} B)")
if "Type: page_fault_space" not in growth_text: bad.append("growth's default is not page_fault_space")
if not (0.5 * 3 * 262144 <= g <= 1.5 * 3 * 262144): bad.append("growth: the leak's first touches")
if bad:
    print(heap_text); print(allocs_text)
    sys.exit("bad: " + ", ".join(bad))
PY
echo "PASS"
