#!/usr/bin/env bash
# Cost of one `tickprobe goroutines` snapshot (issue 10 item 5) for N
# goroutines parked in the Go fixture, and the target's impact: the
# fixture's /stats latency with and without back-to-back snapshots (the
# target is never stopped: process_vm_readv only).
#   BIN_DIR=build/bin N_LIST="100 1000 10000 50000" bash scripts/bench_goroutines.sh
set -euo pipefail
BIN_DIR=${BIN_DIR:-build/bin}
N_LIST=${N_LIST:-"100 1000 10000 50000"}
out=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$out"' EXIT
"$BIN_DIR/go_gameserver" -duration 600s >"$out/ready" 2>"$out/err" &
srv=$!
for _ in $(seq 100); do [[ -s $out/ready ]] && break; sleep 0.05; done
http=$(awk '{print $2}' "$out/ready")
stats_ms() {  # mean /stats latency over 50 requests, ms
  local t0 t1
  t0=$(date +%s%N)
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$http/stats"; done
  t1=$(date +%s%N)
  echo "scale=3; ($t1 - $t0) / 50 / 1000000" | bc
}
total=0
printf "%8s %12s %12s %14s %16s %16s\n" goroutines snapshot_ms max_ms bytes_read stats_ms_idle stats_ms_reading
for n in $N_LIST; do
  add=$((n - total))
  [[ $add -gt 0 ]] && curl -s -o /dev/null "http://127.0.0.1:$http/spawn?n=$add&leak=1"
  total=$n
  idle=$(stats_ms)
  "$BIN_DIR/tickprobe" goroutines -q -p $srv -d 5 -i 0.05 --json >"$out/r.json" &
  reader=$!
  sleep 1
  busy=$(stats_ms)
  wait $reader
  python3 - "$out/r.json" "$idle" "$busy" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("%8d %12.3f %12.3f %14d %16s %16s" % (r["live"], r["snapshot_ms"]["mean"], r["snapshot_ms"]["max"],
      r["counters"].get("bytes_read", 0) // max(r["snapshots"], 1), sys.argv[2], sys.argv[3]))
PY
done
