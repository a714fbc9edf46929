#!/usr/bin/env bash
# Agent memory at default settings for one target (issue 12 goal 3: RSS +
# BPF maps <= 48 MiB).
#
# Starts tickgame (the reference server) under a light bot load, then
# `tickprobe agent --pid GAME` with default settings, lets it attach, drain
# and serve /metrics for a while, and prints:
#  - the agent's RSS (VmRSS of /proc/PID/status) and its BPF map memory,
#    per map (the "memlock" of each map fd in /proc/PID/fdinfo: what the
#    kernel charges for it, counted once per map id), largest first;
#  - the total against the budget.
# Not a pass/fail test: the map bytes are also asserted by
# tests/e2e/agent/agent_memory_test.sh, with its own budget.
#
# usage: scripts/bench_memory.sh [SECONDS=10] [BOTS=50]
#   BIN_DIR=build/bin (default), BUDGET_MIB=48
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN_DIR:-build/bin}
SECONDS_RUN=${1:-10}; BOTS=${2:-50}; BUDGET_MIB=${BUDGET_MIB:-48}
for b in tickprobe tickgame tickbots; do
  [ -x "$BIN/$b" ] || { echo "error: $BIN/$b not found" >&2; echo "hint: build first: bash scripts/build.sh" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "error: needs root (BPF)" >&2; echo "hint: run with sudo" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

port=$(free_port); admin=$(free_port); aport=$(free_port)
"$BIN/tickgame" --port "$port" --admin-port "$admin" --duration $((SECONDS_RUN + 30)) > /dev/null 2>&1 &
game=$!; pids+=("$game")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/healthz" > /dev/null && break; sleep 0.1; done
"$BIN/tickbots" --port "$port" --clients "$BOTS" --duration $((SECONDS_RUN + 25)) > /dev/null 2>&1 &
pids+=("$!")
"$BIN/tickprobe" agent -q --pid "$game" --listen "127.0.0.1:$aport" &
agent=$!; pids+=("$agent")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/healthz" > /dev/null && break; sleep 0.1; done
sleep "$SECONDS_RUN"
# One scrape and one short CPU capture: the agent's steady state includes serving them.
curl -sf "http://127.0.0.1:$aport/metrics" > /dev/null
curl -sf -o /dev/null "http://127.0.0.1:$aport/debug/pprof/profile?seconds=2" || true
sleep 3  # the run loop hands freed heap back after a capture (malloc_trim)

python3 - "$agent" "$BUDGET_MIB" <<'PY'
import json, os, subprocess, sys
pid, budget = sys.argv[1], float(sys.argv[2])
rss = 0
for line in open(f"/proc/{pid}/status"):
    if line.startswith("VmRSS:"):
        rss = int(line.split()[1]) * 1024
maps = {}
for fd in os.listdir(f"/proc/{pid}/fdinfo"):
    try:
        info = dict(l.split(":", 1) for l in open(f"/proc/{pid}/fdinfo/{fd}") if ":" in l)
    except OSError:
        continue
    if "map_id" not in info:
        continue
    mid = int(info["map_id"])
    maps[mid] = {"id": mid, "type": int(info.get("map_type", 0)), "max_entries": int(info.get("max_entries", 0)),
                 "memlock": int(info.get("memlock", 0)), "flags": int(info.get("map_flags", "0"), 16), "name": "?"}
try:
    for m in json.loads(subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True).stdout or "[]"):
        if m.get("id") in maps:
            maps[m["id"]]["name"] = m.get("name", "?")
            maps[m["id"]]["type"] = m.get("type", maps[m["id"]]["type"])
except (OSError, ValueError):
    pass
total = sum(m["memlock"] for m in maps.values())
MiB = 1048576
print(f"agent memory, default settings, one target (tickgame), {len(maps)} BPF maps")
print(f"{'map':24s} {'type':16s} {'max_entries':>11s} {'flags':>6s} {'KiB':>9s}")
for m in sorted(maps.values(), key=lambda m: -m["memlock"]):
    if m["memlock"] < 64 * 1024:
        continue
    print(f"{m['name']:24s} {str(m['type']):16s} {m['max_entries']:11d} {m['flags']:#6x} {m['memlock']/1024:9.0f}")
small = [m for m in maps.values() if m["memlock"] < 64 * 1024]
print(f"{'(' + str(len(small)) + ' maps < 64 KiB)':24s} {'':16s} {'':11s} {'':6s} {sum(m['memlock'] for m in small)/1024:9.0f}")
print()
print(f"RSS           {rss/MiB:6.1f} MiB")
print(f"BPF maps      {total/MiB:6.1f} MiB")
print(f"RSS + maps    {(rss+total)/MiB:6.1f} MiB   goal <= {budget:.0f} MiB: {'MET' if (rss+total)/MiB <= budget else 'NOT MET'}")
PY
