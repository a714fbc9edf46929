#!/usr/bin/env bash
# The agent's game-runtime metrics against tickgame's own /stats.
#
# The agent is started first with --exe (absolute path), so the runtime
# probes are attached to the binary before tickgame runs and every coroutine
# and GC cycle is seen: the totals must then equal the server's.
#   - coroutines: live and created equal /stats (bots stopped: nothing in flight);
#   - GC: pause count equals /stats cycles, total pause time within 2% or 50 us;
#   - hitches: GC pauses longer than the tick period are counted as cause "gc";
#   - leaks (--leaks): the injected leak's site is the suspect.
set -euo pipefail
BIN=$1
. "$(dirname "$0")/../lib.sh"
e2e_init

start_agent "$BIN" --exe "$BIN/tickgame" --leaks --no-offcpu -F 49
PORT=$(free_port); ADMIN=$(free_port)
# 6000 garbage entities per tick: GC pauses of ~100+ ms at 20 Hz (hitches).
"$BIN/tickgame" --port "$PORT" --admin-port "$ADMIN" --duration 60 \
  --inject-gc-garbage-per-tick 6000 --inject-coroutine-leak-per-sec 4 --inject-leak-bytes-per-tick 1000 \
  > "$WORK/game.log" 2>&1 & GAME=$!; PIDS+=($GAME)
wait_http "http://127.0.0.1:$ADMIN/healthz" 50 || fail "tickgame did not start"
"$BIN/tickbots" --port "$PORT" --clients 20 --duration 9 > /dev/null 2>&1 & BOTS=$!; PIDS+=($BOTS)
wait $BOTS || true
sleep 3  # bots gone; a few more GC cycles
# The agent re-judges leak suspects every 10 s, each time over all it has
# seen: wait (up to 60 s, not a fixed sleep that a loaded machine can
# outrun) until a judgement has had enough steady growth to name a suspect.
for _ in $(seq 60); do
  curl -sf "$AGENT_URL/metrics" | grep -q '^tickprobe_leak_suspect_bytes{' && break
  sleep 1
done

# Read both sides back to back, twice, and keep a pair taken with no GC cycle in between.
for attempt in 1 2 3 4 5; do
  S=$(curl -sf "http://127.0.0.1:$ADMIN/stats")
  M=$(curl -sf "$AGENT_URL/metrics")
  S2=$(curl -sf "http://127.0.0.1:$ADMIN/stats")
  if python3 -c 'import json,sys; a,b=(json.loads(x) for x in sys.argv[1:]); sys.exit(a["gc"]["cycles"]!=b["gc"]["cycles"] or a["coroutines"]["created"]!=b["coroutines"]["created"])' "$S" "$S2"; then
    break
  fi
  sleep 0.3
done
echo "$M" > "$WORK/metrics.txt"

python3 - "$S" "$WORK/metrics.txt" "$GAME" <<'PY' || fail "runtime metrics disagree with /stats (see above)"
import json, re, sys
stats = json.loads(sys.argv[1])
pid = sys.argv[3]  # the agent covers every process of the binary: look at ours
metrics = {}
for line in open(sys.argv[2]):
    if line.startswith("#") or not line.strip():
        continue
    name_labels, value = line.rsplit(" ", 1)
    metrics[name_labels] = float(value)
def get(prefix, **labels):
    for k, v in metrics.items():
        if k.split("{")[0] == prefix and f'pid="{pid}"' in k and all(f'{lk}="{lv}"' in k for lk, lv in labels.items()):
            return v
    raise SystemExit(f"missing metric {prefix} {labels}")
bad = []
live, created = get("tickprobe_coroutines_live"), get("tickprobe_coroutines_created_total")
print(f"coroutines: tickprobe live {live:.0f} created {created:.0f}; /stats live {stats['coroutines']['live']} created {stats['coroutines']['created']}")
# /stats is published once per tick; allow the coroutines created in flight.
if abs(live - stats["coroutines"]["live"]) > 2: bad.append("live coroutines")
if abs(created - stats["coroutines"]["created"]) > 2: bad.append("created coroutines")
n, total = get("tickprobe_pause_seconds_count", kind="gc"), get("tickprobe_pause_seconds_sum", kind="gc") * 1e9
cycles, st_total = stats["gc"]["cycles"], stats["gc"]["total_pause_ns"]
print(f"gc: tickprobe {n:.0f} pauses, {total/1e6:.3f} ms; /stats {cycles} cycles, {st_total/1e6:.3f} ms")
if abs(n - cycles) > 1: bad.append("gc count")  # a cycle may end between the two reads
# One cycle in flight may separate the two reads: compare the mean pause too.
if n == cycles and abs(total - st_total) > max(0.02 * st_total, 50e3): bad.append("gc total")
if n != cycles and abs(total / n - st_total / cycles) > max(0.02 * st_total / cycles, 50e3): bad.append("gc mean")
gc_hitches = get("tickprobe_hitches_total", cause="gc")
print(f"hitches caused by gc: {gc_hitches:.0f}; /stats max gc pause {stats['gc']['max_pause_ns']/1e6:.1f} ms")
if stats["gc"]["max_pause_ns"] > 60e6 and gc_hitches < 1: bad.append("no gc hitch")
sites = [k for k in metrics if k.startswith("tickprobe_leak_suspect_bytes{")]
print("leak suspects:", sites)
if not any("inject_leak_bytes" in k for k in sites): bad.append("injected leak not a suspect")
if bad:
    print("FAIL:", ", ".join(bad)); sys.exit(1)
PY
echo "ok: agent runtime metrics match /stats"
