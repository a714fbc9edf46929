#!/usr/bin/env bash
# SIGTERM -> exit of the agent tracing tickgame, side by side: uprobe_multi
# links (the default where the kernel has them) against the perf-event
# fallback (TICKPROBE_NO_UPROBE_MULTI=1), with the default families and
# with --leaks, each a few times, a capture in flight as in
# tests/e2e/agent/agent_shutdown_test.sh (docs/agent.md "Shutdown"). Root.
#   bash scripts/bench_agent_shutdown.sh BUILD_BIN_DIR [RUNS]   (default 3)
set -euo pipefail
BIN=$(readlink -f "${1:?usage: bench_agent_shutdown.sh BIN_DIR [RUNS]}")
RUNS=${2:-3}
source "$(dirname "$0")/../tests/e2e/lib.sh"
e2e_init
GAME=$BIN/tickgame
"$GAME" --port "$(free_port)" --tls-port 0 --admin-port 0 --duration 1200 > /dev/null 2>&1 & PIDS+=($!)
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
printf "%-10s %-12s %-40s %s\n" families links "link kinds" "SIGTERM->exit (ms)"
for args in "" "--leaks"; do
  for mode in multi perf; do
    times=""; kinds=""
    for _ in $(seq "$RUNS"); do
      env_set=(); [ "$mode" = perf ] && env_set=(TICKPROBE_NO_UPROBE_MULTI=1)
      AGENT_PORT=$(free_port); AGENT_URL=http://127.0.0.1:$AGENT_PORT
      env "${env_set[@]}" "$BIN/tickprobe" agent --exe "$GAME" $args --listen "127.0.0.1:$AGENT_PORT" > "$WORK/agent.log" 2>&1 & AP=$!
      PIDS+=($AP)
      wait_http "$AGENT_URL/healthz" || { cat "$WORK/agent.log"; fail "agent did not start"; }
      for _ in $(seq 50); do curl -sf "$AGENT_URL/metrics" | grep -q '^tickprobe_ticks_total{' && break; sleep 0.2; done
      kinds=$( (grep -h "^link_type:" /proc/"$AP"/fdinfo/* 2>/dev/null || true) | awk '{print $2}' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
      curl -s -o /dev/null "$AGENT_URL/debug/pprof/profile?seconds=60" & PIDS+=($!)
      sleep 1
      t0=$(date +%s%N); kill -TERM "$AP"; wait "$AP" || true; t1=$(date +%s%N)
      times="$times $(( (t1 - t0) / 1000000 ))"
    done
    printf "%-10s %-12s %-40s %s\n" "${args:-default}" "$mode" "$kinds" "$times"
  done
done
