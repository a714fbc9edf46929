# Shared helpers for the shell e2e tests (sourced, not run).
#   e2e_init                 temp dir in $WORK, processes in PIDS killed on exit
#   fail MSG                 print and exit 1
#   free_port                a free loopback TCP port
#   wait_http URL [TRIES]    poll URL (0.2 s apart) until it answers 2xx
#   start_agent BIN ARGS...  `tickprobe agent ARGS` on a free port: sets AGENT_PORT, AGENT_URL
#   start_prometheus         Prometheus scraping the agent every 1 s: sets PROM_URL; query EXPR

e2e_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

e2e_init() {
  WORK=$(mktemp -d)
  PIDS=()
  trap e2e_cleanup EXIT
  trap "exit 1" INT TERM
}

fail() { echo "FAIL: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {
  local url=$1 tries=${2:-50}
  for _ in $(seq "$tries"); do curl -sf "$url" > /dev/null && return 0; sleep 0.2; done
  return 1
}

start_agent() {
  local bin=$1; shift
  AGENT_PORT=$(free_port)
  AGENT_URL=http://127.0.0.1:$AGENT_PORT
  "$bin/tickprobe" agent "$@" --listen "127.0.0.1:$AGENT_PORT" > "$WORK/agent.log" 2>&1 & PIDS+=($!)
  wait_http "$AGENT_URL/healthz" || { cat "$WORK/agent.log"; fail "agent did not start"; }
}

start_prometheus() {
  local port
  port=$(free_port)
  PROM_URL=http://127.0.0.1:$port
  cat > "$WORK/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: tickprobe
    static_configs: [{targets: ["127.0.0.1:$AGENT_PORT"]}]
YML
  prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address=127.0.0.1:$port > "$WORK/prom.log" 2>&1 & PIDS+=($!)
}

query() { curl -sf "$PROM_URL/api/v1/query" --data-urlencode "query=$1"; }
