#!/usr/bin/env bash
# e2e: the Grafana dashboards in dashboards/, without Grafana (not packaged on
# Debian): their PromQL runs against a real Prometheus scraping a real
# `tickprobe agent` that traces cpu_fixture.
#  1. the dashboard JSON is well formed (check_dashboard.py static: parses,
#     unique panel ids, datasource = ${datasource}, targets, units, variables);
#  2. the provisioning YAML parses and prometheus-scrape.yml passes promtool;
#  3. every panel target and variable query, with $comm/$pid/$instance = .*,
#     returns status success, and data for every panel but the future ones
#     (listed by title in check_dashboard.py and printed as not checked);
#  4. the same with the variables set to one concrete agent, process and pid,
#     as Grafana sends them when a single value is picked.
set -euo pipefail
BIN=${1:?usage: dashboards_test.sh BIN_DIR DASHBOARDS_DIR}
DASH_DIR=${2:?usage: dashboards_test.sh BIN_DIR DASHBOARDS_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="python3 $HERE/check_dashboard.py"
source "$HERE/../lib.sh"
e2e_init

shopt -s nullglob
DASHBOARDS=("$DASH_DIR"/*.json)
[ ${#DASHBOARDS[@]} -gt 0 ] || fail "no dashboards in $DASH_DIR"

# 1. structure
for d in "${DASHBOARDS[@]}"; do
  echo "== $(basename "$d")"
  $CHECK static "$d" || fail "$(basename "$d"): structure"
done

# 2. provisioning + scrape example
promtool check config "$DASH_DIR/prometheus-scrape.yml" > "$WORK/promtool.txt" 2>&1 \
  || { cat "$WORK/promtool.txt"; fail "promtool check config prometheus-scrape.yml"; }
echo "ok: promtool check config prometheus-scrape.yml"
if python3 -c 'import yaml' 2>/dev/null; then
  python3 - "$DASH_DIR/provisioning" <<'PY' || fail "provisioning YAML"
import pathlib, sys, yaml
root = pathlib.Path(sys.argv[1])
ds = yaml.safe_load((root / "datasources/tickprobe-prometheus.yml").read_text())
assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus", ds
prov = yaml.safe_load((root / "dashboards/tickprobe.yml").read_text())
assert prov["apiVersion"] == 1 and prov["providers"][0]["type"] == "file", prov
assert prov["providers"][0]["options"]["path"], prov
print("ok: provisioning YAML (datasource: prometheus, dashboards: file provider)")
PY
else
  echo "not checked: provisioning YAML (PyYAML not installed)"
fi

# 3. a fixture, the agent, and Prometheus scraping it every second
# (and tickgame for the game-runtime panels: the agent attaches to its binary
# before it starts, so its coroutines are counted from the first one)
"$BIN/cpu_fixture" 150 > /dev/null & PIDS+=($!); FIX=$!
start_agent "$BIN" --comm cpu_fixture --exe "$BIN/tickgame" --enable sockets --enable tls
GAME_PORT=$(free_port); GAME_TLS_PORT=$(free_port)
"$BIN/tickgame" --port "$GAME_PORT" --tls-port "$GAME_TLS_PORT" --admin-port 0 --duration 150 --gc-every-ticks 4 \
  --inject-blocking-writes --blocking-write-timeout-ms 20 --sndbuf-kb 8 --max-outbound-kb 8 \
  > /dev/null 2>&1 & PIDS+=($!)
# (and for the network row) bots that stay, two of them slow readers, and a
# stream of short TLS sessions, so handshakes keep happening.
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$GAME_PORT) 2>/dev/null && break; sleep 0.1; done
"$BIN/tickbots" --port "$GAME_PORT" --tls-port "$GAME_TLS_PORT" --clients 8 --tls-fraction 0.5 --slow-readers 2 \
  --duration 140 > /dev/null 2>&1 & PIDS+=($!)
( while :; do "$BIN/tickbots" --port "$GAME_PORT" --tls-port "$GAME_TLS_PORT" --clients 4 --tls --duration 1 \
    > /dev/null 2>&1 || sleep 1; done ) & PIDS+=($!)
start_prometheus
PROM=$PROM_URL

# Ask for a profile so the symbolizer resolves frames (the unknown-frame ratio
# then has a real denominator).
curl -sf "http://127.0.0.1:$AGENT_PORT/debug/pprof/profile?seconds=1" -o /dev/null || fail "pprof endpoint"

# rate() over 30s needs at least two samples; wait for five scrapes with the target seen.
ok=""
for _ in $(seq 60); do
  if query 'count_over_time(tickprobe_target_cpu_seconds_total{comm="cpu_fixture"}[30s]) >= 5' 2>/dev/null | grep -q '"result":\[{'; then
    ok=1; break
  fi
  sleep 1
done
[ -n "$ok" ] || { tail -20 "$WORK/prom.log"; tail -20 "$WORK/agent.log"; fail "Prometheus did not scrape the agent"; }
echo "ok: Prometheus scraped the agent (5 samples of the fixture's CPU time)"

for d in "${DASHBOARDS[@]}"; do
  echo "== $(basename "$d"): all values (.*)"
  $CHECK queries "$d" "$PROM" || fail "$(basename "$d"): queries with all values"
  # 4. one concrete selection
  echo "== $(basename "$d"): one agent, one process"
  $CHECK queries "$d" "$PROM" instance=127.0.0.1:$AGENT_PORT comm=cpu_fixture pid=$FIX _runtime_optional=1 \
    || fail "$(basename "$d"): queries with instance/comm/pid set"
done
echo "ok: dashboards"
