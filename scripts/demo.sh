#!/usr/bin/env bash
# The README demo: build everything, run tickgame with bots and a few faults
# injected for ~20 s, and show the server's own account of what happened.
#
#   bash scripts/demo.sh
#
# Each step is a function so later steps (tickprobe attaching to the running
# server, printing its view next to /stats) slot in between start_server and
# print_server_stats. Env: DEMO_SECONDS (20), DEMO_BOTS (200), PORT,
# TLS_PORT, ADMIN_PORT, SKIP_BUILD=1 to reuse an existing build.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_SECONDS=${DEMO_SECONDS:-45}
DEMO_BOTS=${DEMO_BOTS:-200}
PORT=${PORT:-7777}
TLS_PORT=${TLS_PORT:-7778}
ADMIN_PORT=${ADMIN_PORT:-9100}
BIN_DIR=${BIN_DIR:-build/bin}
WORK=$(mktemp -d /tmp/tickprobe-demo.XXXXXX)
OUT=${DEMO_OUT:-demo-out}
AGENT_PORT=${AGENT_PORT:-9464}
SERVER_PID=""
BOTS_PID=""
AGENT_PID=""

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
  [ -n "$BOTS_PID" ] && kill "$BOTS_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

bootstrap_and_build() {
  [ "${SKIP_BUILD:-0}" = 1 ] && return 0
  step "bootstrap and build"
  bash scripts/bootstrap.sh
  bash scripts/build.sh
}

start_server() {
  step "start tickgame (tcp :$PORT, tls :$TLS_PORT, admin 127.0.0.1:$ADMIN_PORT) with faults injected"
  # Faults: a 2 KiB/tick memory leak, 5 leaked coroutines/s, GC garbage,
  # and blocking writes to the slow readers (stalls the tick).
  "$BIN_DIR/tickgame" --port "$PORT" --tls-port "$TLS_PORT" --admin-port "$ADMIN_PORT" \
    --inject-leak-bytes-per-tick 2048 \
    --inject-coroutine-leak-per-sec 5 \
    --inject-gc-garbage-per-tick 2000 \
    --inject-blocking-writes --blocking-write-timeout-ms 15 --max-outbound-kb 16 \
    >"$WORK/tickgame.out" 2>"$WORK/tickgame.err" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null || { cat "$WORK/tickgame.err" >&2; exit 1; }
  echo "tickgame pid $SERVER_PID"
}

start_bots() {
  step "start $DEMO_BOTS bots (half TLS, 2 slow readers) for ${DEMO_SECONDS}s"
  "$BIN_DIR/tickbots" --port "$PORT" --tls-port "$TLS_PORT" --clients "$DEMO_BOTS" --tls-fraction 0.5 \
    --slow-readers 2 --duration "$DEMO_SECONDS" >"$WORK/bots.json" 2>"$WORK/bots.err" &
  BOTS_PID=$!
}

mid_run_fault_toggle() {
  # A third of the way through, add a CPU hog through the admin endpoint.
  sleep $((DEMO_SECONDS / 3))
  step "POST /faults: cpu_hog_us=5000 (5 ms of CPU burned in every tick from now on)"
  curl -sf -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$ADMIN_PORT/faults" \
    -d '{"cpu_hog_us": 5000}' | jq -c .
}

tickprobe_doctor() {
  step "tickprobe doctor: what this kernel offers"
  "$BIN_DIR/tickprobe" doctor | grep -E "^(ok|MISSING)" | head -20
}

start_agent() {
  step "tickprobe agent --pid $SERVER_PID (sidecar: Prometheus /metrics, pprof endpoints on 127.0.0.1:$AGENT_PORT)"
  "$BIN_DIR/tickprobe" agent -q --pid "$SERVER_PID" --listen "127.0.0.1:$AGENT_PORT" >"$WORK/agent.log" 2>&1 &
  AGENT_PID=$!
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$AGENT_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
}

profile_cpu() {
  mkdir -p "$OUT"
  step "tickprobe profile --pid $SERVER_PID -d 5: where the CPU goes (the hog was just switched on)"
  "$BIN_DIR/tickprobe" profile -q --pid "$SERVER_PID" -d 5 -F 199 --top 12
  "$BIN_DIR/tickprobe" profile -q --pid "$SERVER_PID" -d 3 -F 199 -o "$OUT/cpu.svg"
  echo "flame graph: $OUT/cpu.svg"
}

profile_offcpu() {
  step "tickprobe offcpu --pid $SERVER_PID -d 4: where the tick thread blocks (user stacks; totals include callees)"
  # Blocking writes to slow readers stall the tick inside send(); the stacks
  # keep the caller of libc's send wrapper, which has no frame pointer.
  "$BIN_DIR/tickprobe" offcpu -q --pid "$SERVER_PID" -d 4 --min-block-us 1000 --no-runnable --no-kernel --top 12
  "$BIN_DIR/tickprobe" offcpu -q --pid "$SERVER_PID" -d 3 --min-block-us 1000 -o "$OUT/offcpu.svg"
  echo "flame graph: $OUT/offcpu.svg"
}

runtime_hunts() {
  step "tickprobe pauses --pid $SERVER_PID -d 5: GC/arena pauses, tick durations, and what made slow ticks late"
  "$BIN_DIR/tickprobe" pauses -q --pid "$SERVER_PID" -d 5 --top 5 | cut -c1-160
  step "tickprobe leaks --pid $SERVER_PID -d 8 --coroutines: leaking allocation stacks and leaked coroutines"
  "$BIN_DIR/tickprobe" leaks -q --pid "$SERVER_PID" -d 8 --top 3 --coroutines --coro-min-age 3 | cut -c1-160 | head -60
}

agent_metrics() {
  step "tickprobe agent GET /metrics (excerpt) and a pprof profile from GET /debug/pprof/profile?seconds=2"
  curl -sf "http://127.0.0.1:$AGENT_PORT/metrics" |
    grep -E "^(tickprobe_target_cpu_seconds_total|tickprobe_target_offcpu_seconds_total|tickprobe_targets |tickprobe_coroutines_|tickprobe_hitches_total|tickprobe_pause_seconds_(count|sum)|tickprobe_bpf_map_bytes|process_resident_memory_bytes)" | head -24
  curl -sf "http://127.0.0.1:$AGENT_PORT/debug/pprof/profile?seconds=2" -o "$OUT/agent-cpu.pb.gz"
  echo "pprof: $OUT/agent-cpu.pb.gz (go tool pprof -top $OUT/agent-cpu.pb.gz)"
}

wait_for_bots() {
  wait "$BOTS_PID" || true
  BOTS_PID=""
}

print_bots_summary() {
  step "tickbots summary (client-side ground truth)"
  jq '{connections, tls: {handshakes_ok: .tls.handshakes_ok, handshakes_failed: .tls.handshakes_failed, handshake_us: .tls.handshake_us},
       rtt_us, frames_sent, frames_received, errors}' "$WORK/bots.json"
}

print_server_stats() {
  step "tickgame GET /stats (server-side ground truth)"
  curl -sf "http://127.0.0.1:$ADMIN_PORT/stats" | jq .
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

main() {
  bootstrap_and_build
  tickprobe_doctor
  start_server
  start_agent
  start_bots
  mid_run_fault_toggle
  profile_cpu
  profile_offcpu
  runtime_hunts
  agent_metrics
  wait_for_bots
  print_bots_summary
  print_server_stats
  stop_server
  echo
  echo "logs: $WORK"
}

main "$@"
