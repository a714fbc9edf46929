#!/usr/bin/env bash
# Soak (issue 11.9, not in CI): tickgame under tickbots for a long time with
# the agent and every probe family on, sampled once per interval.
#
#   bash scripts/soak.sh [-d SECONDS] [-i SECONDS] [-c CLIENTS] [-b BIN_DIR] [-o OUT_DIR]
#
# Defaults: 3600 s, a sample every 30 s, 100 clients (10% TLS), build/bin,
# a fresh directory under /tmp. Every sample is one line of samples.tsv:
#   t_s  agent_rss_kb  agent_fds  agent_threads  agent_bpf_links  game_pid  game_restarts
#   scrape_ms  metrics_lines  bpf_events_dropped  healthz
# At the end it prints a summary (also summary.txt): target crashes (tickgame
# restarts because it died, must be 0), the agent's RSS slope (least squares
# over the second half, KiB/hour, so warm-up does not count), the min/max of
# the fd, thread and link counts, the drop counters' growth, and whether the
# agent stayed up and exited cleanly on SIGTERM.
set -uo pipefail

DURATION=3600 INTERVAL=30 CLIENTS=100
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
OUT=""
while getopts "d:i:c:b:o:h" o; do
  case $o in
    d) DURATION=$OPTARG ;; i) INTERVAL=$OPTARG ;; c) CLIENTS=$OPTARG ;;
    b) BIN=$OPTARG ;; o) OUT=$OPTARG ;;
    *) sed -n 2,16p "$0"; exit 2 ;;
  esac
done
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/tickprobe-soak.XXXXXX)
mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "error: soak needs root (the agent attaches BPF programs)" >&2; exit 2; }
for b in tickprobe tickgame tickbots; do
  [ -x "$BIN/$b" ] || { echo "error: $BIN/$b missing" >&2; echo "hint: bash scripts/build.sh" >&2; exit 2; }
done
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GAME_PORT=$(free_port) TLS_PORT=$(free_port) ADMIN_PORT=$(free_port) AGENT_PORT=$(free_port)
# A private copy, so that --exe follows only this soak's tickgame and not
# other processes started from the build's binary meanwhile.
cp "$(readlink -f "$BIN/tickgame")" "$OUT/tickgame"
GAME=$OUT/tickgame
AGENT_URL=http://127.0.0.1:$AGENT_PORT
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
trap "exit 1" INT TERM

# tickgame is restarted if it dies; every restart is a crash (it runs with
# --duration 0, so it never exits by itself).
game_pid=0 restarts=0
start_game() {
  "$GAME" --port "$GAME_PORT" --tls-port "$TLS_PORT" --admin-port "$ADMIN_PORT" --duration 0 \
    >> "$OUT/tickgame.log" 2>&1 &
  game_pid=$!
  PIDS+=($game_pid)
}
start_game
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" > /dev/null && break; sleep 0.2; done

"$BIN/tickprobe" agent --exe "$GAME" --listen "127.0.0.1:$AGENT_PORT" --leaks \
  --enable sockets --enable tls > "$OUT/agent.log" 2>&1 &
AGENT=$!
PIDS+=($AGENT)
for _ in $(seq 100); do curl -sf "$AGENT_URL/healthz" > /dev/null && break; sleep 0.2; done

bots() {
  "$BIN/tickbots" --port "$GAME_PORT" --tls-port "$TLS_PORT" --clients "$CLIENTS" --tls-fraction 0.1 \
    --duration "$DURATION" >> "$OUT/tickbots.log" 2>&1 &
  PIDS+=($!)
}
bots
# A capture every few samples, like an operator would take.
echo "soak: ${DURATION}s, ${CLIENTS} bots, sample every ${INTERVAL}s, output $OUT"
printf "t_s\tagent_rss_kb\tagent_fds\tagent_threads\tagent_bpf_links\tgame_pid\tgame_restarts\tscrape_ms\tmetrics_lines\tbpf_events_dropped\thealthz\n" > "$OUT/samples.tsv"
t0=$(date +%s)
n=0
while :; do
  now=$(date +%s); t=$((now - t0))
  [ "$t" -ge "$DURATION" ] && break
  if ! kill -0 "$game_pid" 2>/dev/null; then
    restarts=$((restarts + 1))
    echo "$(date -u +%T) tickgame $game_pid died (restart $restarts)" >> "$OUT/events.log"
    start_game
  fi
  if ! kill -0 "$AGENT" 2>/dev/null; then
    echo "$(date -u +%T) agent died" >> "$OUT/events.log"; break
  fi
  rss=$(awk '/^VmRSS/{print $2}' /proc/$AGENT/status)
  fds=$(ls /proc/$AGENT/fd | wc -l)
  thr=$(awk '/^Threads/{print $2}' /proc/$AGENT/status)
  links=$( (grep -h "^link_id:" /proc/$AGENT/fdinfo/* 2>/dev/null || true) | wc -l)
  s0=$(date +%s%N)
  curl -s -m 10 "$AGENT_URL/metrics" > "$OUT/metrics.last" || true
  s1=$(date +%s%N)
  lines=$(wc -l < "$OUT/metrics.last")
  drops=$(awk '/^tickprobe_bpf_events_dropped_total/{s+=$NF} END{printf "%d", s}' "$OUT/metrics.last")
  hz=$(curl -s -m 5 "$AGENT_URL/healthz" | head -c 200 | tr '\t\n' '  ')
  printf "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n" "$t" "$rss" "$fds" "$thr" "$links" "$game_pid" "$restarts" \
    $(((s1 - s0) / 1000000)) "$lines" "$drops" "$hz" >> "$OUT/samples.tsv"
  n=$((n + 1))
  if [ $((n % 4)) -eq 0 ]; then
    curl -s -m 30 -o /dev/null "$AGENT_URL/debug/pprof/profile?seconds=5" &
    curl -s -m 30 -o /dev/null "$AGENT_URL/debug/pprof/heap" &
  fi
  sleep "$INTERVAL"
done
cp "$OUT/metrics.last" "$OUT/metrics.final"
grep "^tickprobe_bpf_events_dropped_total\|^tickprobe_unwind_rows_dropped_total\|^tickprobe_attach_failures_total" \
  "$OUT/metrics.final" > "$OUT/drops.final" || true

# SIGTERM at the end: a clean exit, timed.
alive=no; kill -0 "$AGENT" 2>/dev/null && alive=yes
s0=$(date +%s%N); kill -TERM "$AGENT" 2>/dev/null; wait "$AGENT"; arc=$?; s1=$(date +%s%N)
python3 - "$OUT" "$restarts" "$alive" "$arc" $(((s1 - s0) / 1000000)) "$DURATION" <<'PY' | tee "$OUT/summary.txt"
import sys, csv
out, restarts, alive, rc, stop_ms, duration = sys.argv[1:]
rows = list(csv.DictReader(open(out + "/samples.tsv"), delimiter="\t"))
def col(k): return [float(r[k]) for r in rows if r[k] not in ("", None)]
t, rss = col("t_s"), col("agent_rss_kb")
half = [(a, b) for a, b in zip(t, rss) if a >= t[-1] / 2] if t else []
slope = 0.0
if len(half) >= 2:
    mx = sum(a for a, _ in half) / len(half); my = sum(b for _, b in half) / len(half)
    den = sum((a - mx) ** 2 for a, _ in half)
    slope = sum((a - mx) * (b - my) for a, b in half) / den * 3600 if den else 0.0
def rng(k):
    v = col(k)
    return f"{min(v):.0f}..{max(v):.0f}" if v else "n/a"
d = col("bpf_events_dropped")
print(f"soak: planned {duration} s, ran {t[-1]:.0f} s, {len(rows)} samples")
print(f"target crashes (tickgame restarts): {restarts}")
print(f"agent alive at the end: {alive}; exit code after SIGTERM: {rc}, in {stop_ms} ms")
print(f"agent RSS: first {rss[0]:.0f} KiB, last {rss[-1]:.0f} KiB, max {max(rss):.0f} KiB; "
      f"slope over the second half {slope:+.0f} KiB/hour")
print(f"agent fds {rng('agent_fds')}, threads {rng('agent_threads')}, BPF links {rng('agent_bpf_links')}")
print(f"/metrics lines {rng('metrics_lines')}, scrape ms {rng('scrape_ms')}")
print(f"tickprobe_bpf_events_dropped_total: {d[0]:.0f} at the first sample, {d[-1]:.0f} at the end" if d else "no drop counter")
print("healthz at the end: " + (rows[-1]["healthz"] if rows else "n/a"))
PY
