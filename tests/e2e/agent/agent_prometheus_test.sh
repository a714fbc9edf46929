#!/usr/bin/env bash
# e2e: `tickprobe agent` traced by name, scraped by a real Prometheus server.
#  1. /metrics passes `promtool check metrics`;
#  2. Prometheus scrapes it (up == 1) and sees the target's sampled CPU time;
#  3. /debug/pprof/profile returns a profile `go tool pprof` reads, whose top
#     frame is the fixture's hot function;
#  4. a restarted target (new pid, same name) is picked up without polling.
set -euo pipefail
BIN=${1:?usage: agent_prometheus_test.sh BIN_DIR}
source "$(dirname "$0")/../lib.sh"
e2e_init

"$BIN/cpu_fixture" 120 > /dev/null & PIDS+=($!); FIX1=$!
start_agent "$BIN" --comm cpu_fixture
sleep 3

# 1. promtool
curl -sf "http://127.0.0.1:$AGENT_PORT/metrics" > "$WORK/metrics.txt"
promtool check metrics < "$WORK/metrics.txt" || fail "promtool check metrics"
grep -q "tickprobe_target_cpu_seconds_total{comm=\"cpu_fixture\",pid=\"$FIX1\"}" "$WORK/metrics.txt" \
  || fail "no per-target CPU series for pid $FIX1"
echo "ok: promtool check metrics"

# 2. a real Prometheus scrapes it
start_prometheus
ok=""
for _ in $(seq 60); do
  if query 'up{job="tickprobe"}' 2>/dev/null | grep -q '"value":\[[0-9.]*,"1"\]' &&
     query 'tickprobe_target_cpu_seconds_total{comm="cpu_fixture"} > 0' 2>/dev/null | grep -q '"result":\[{'; then
    ok=1; break
  fi
  sleep 1
done
[ -n "$ok" ] || { tail -20 "$WORK/prom.log"; fail "Prometheus did not scrape the agent"; }
echo "ok: Prometheus scraped the agent (up == 1, per-target CPU seconds > 0)"

# 3. pprof endpoint
curl -sf "http://127.0.0.1:$AGENT_PORT/debug/pprof/profile?seconds=2" -o "$WORK/cpu.pb.gz" || fail "pprof endpoint"
HOME=$WORK GOCACHE=$WORK/go go tool pprof -top "$WORK/cpu.pb.gz" > "$WORK/top.txt" 2>&1 || { cat "$WORK/top.txt"; fail "go tool pprof"; }
grep -q spin_for "$WORK/top.txt" || { cat "$WORK/top.txt"; fail "hot function missing from pprof"; }
curl -sf "http://127.0.0.1:$AGENT_PORT/debug/pprof/offcpu?seconds=1" -o "$WORK/off.pb.gz" || fail "offcpu endpoint"
HOME=$WORK GOCACHE=$WORK/go go tool pprof -raw "$WORK/off.pb.gz" > /dev/null 2>&1 || fail "offcpu pprof unreadable"
echo "ok: pprof endpoints"

# 4. restart: a new process with the same name is followed
kill "$FIX1"; wait "$FIX1" 2>/dev/null || true
"$BIN/cpu_fixture" 120 > /dev/null & PIDS+=($!); FIX2=$!
found=""
for _ in $(seq 30); do
  curl -sf "http://127.0.0.1:$AGENT_PORT/metrics" | grep -q "tickprobe_target_cpu_seconds_total{comm=\"cpu_fixture\",pid=\"$FIX2\"}" && { found=1; break; }
  sleep 0.5
done
[ -n "$found" ] || fail "restarted target $FIX2 not followed"
echo "ok: restarted target followed (pid $FIX1 -> $FIX2)"
