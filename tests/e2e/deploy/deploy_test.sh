#!/usr/bin/env bash
# e2e: the deploy files are tested (issue 11.8).
#  1. check_deploy.py: the manifests parse and fit the schema of the fields
#     they use; the tickprobe containers and the systemd unit carry exactly
#     the "agent" capabilities of deploy/capabilities.txt (the set
#     tests/e2e/privileges runs the agent under), drop ALL, read-only root,
#     BTF/tracefs mounts, /healthz liveness, scrape annotations;
#  2. the checker is not blind: a misspelt key, a missing capability in a
#     manifest and in the unit each make it fail;
#  3. `systemd-analyze verify` accepts the unit (ExecStart pointed at this
#     build);
#  4. the agent runs under the unit's sandbox: its CapabilityBoundingSet and
#     AmbientCapabilities (read from the unit), NoNewPrivileges, SecureBits,
#     a read-only root (ProtectSystem=strict) and a private /tmp, emulated
#     with unshare + setpriv because this machine has no systemd manager
#     (systemd-run needs one), against tickgame running as another user:
#     /healthz must say "ok" and /metrics carry its runtime series.
set -uo pipefail
BIN=${1:?usage: deploy_test.sh BIN_DIR DEPLOY_DIR}
DEPLOY=${2:?usage: deploy_test.sh BIN_DIR DEPLOY_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
e2e_init
python3 -c 'import yaml' 2> /dev/null || fail "python3-yaml missing; hint: bash scripts/bootstrap.sh"
command -v systemd-analyze > /dev/null || fail "systemd-analyze missing; hint: apt-get install systemd"

# 1.
python3 "$HERE/check_deploy.py" "$DEPLOY" || fail "deploy files do not pass the checks"
echo "ok: manifests and unit pass the structural and capability checks"

# 2.
mutate() {  # NAME FILE SED
  rm -rf "$WORK/d"; cp -r "$DEPLOY" "$WORK/d"
  sed -i "$3" "$WORK/d/$2"
  cmp -s "$DEPLOY/$2" "$WORK/d/$2" && fail "mutation '$1' changed nothing"
  if python3 "$HERE/check_deploy.py" "$WORK/d" > "$WORK/m.log" 2>&1; then fail "check_deploy.py missed: $1"; fi
  echo "ok: check_deploy.py catches $1: $(grep -m1 FAIL "$WORK/m.log")"
}
mutate "a misspelt key" k8s/sidecar.yaml 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/'
mutate "a capability missing in a manifest" k8s/daemonset.yaml 's/, "SYSLOG"\]/]/'
mutate "an extra capability in a manifest" k8s/sidecar.yaml 's/"SYS_PTRACE", /"SYS_PTRACE", "NET_ADMIN", /'
mutate "a capability missing in the unit" tickprobe-agent.service 's/^\(AmbientCapabilities=.*\) CAP_SYSLOG/\1/'
mutate "ProtectKernelLogs in the unit" tickprobe-agent.service 's/^# ProtectKernelLogs=yes.*/ProtectKernelLogs=yes/'

# 3.
UNIT=$WORK/tickprobe-agent.service
sed "s|^ExecStart=/usr/local/bin/tickprobe |ExecStart=$(readlink -f "$BIN/tickprobe") |" \
  "$DEPLOY/tickprobe-agent.service" > "$UNIT"
if ! systemd-analyze verify "$UNIT" > "$WORK/verify.log" 2>&1 || grep -q "tickprobe-agent.service" "$WORK/verify.log"; then
  cat "$WORK/verify.log"; fail "systemd-analyze verify rejects the unit"
fi
echo "ok: systemd-analyze verify accepts the unit"
sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$UNIT" > "$WORK/bad/tickprobe-agent.service" 2>/dev/null ||
  { mkdir -p "$WORK/bad"; sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$UNIT" > "$WORK/bad/tickprobe-agent.service"; }
systemd-analyze verify "$WORK/bad/tickprobe-agent.service" 2>&1 | grep -q "Unknown key 'ProtectSystm'" ||
  fail "systemd-analyze verify does not report a misspelt key: the check above would be blind"

# 4.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
prop() { grep "^$1=" "$UNIT" | tail -1 | cut -d= -f2-; }
[ "$(prop ProtectSystem)" = strict ] && [ "$(prop NoNewPrivileges)" = yes ] && [ "$(prop PrivateTmp)" = yes ] ||
  fail "the unit lost its sandbox settings"
capspec() { echo "-all,$(echo "$1" | tr ' ' '\n' | sed 's/^CAP_//' | tr A-Z a-z | sed 's/^/+/' | paste -sd,)"; }
BND=$(capspec "$(prop CapabilityBoundingSet)")
AMB=$(capspec "$(prop AmbientCapabilities)")
GAME=$(readlink -f "$BIN/tickgame")
GP=$(free_port) AP=$(free_port) PORT=$(free_port)
setpriv --reuid=65534 --regid=65534 --clear-groups "$GAME" --port "$GP" --tls-port 0 --admin-port "$AP" \
  --duration 120 > "$WORK/game.log" 2>&1 & PIDS+=($!)
G=$!
wait_http "http://127.0.0.1:$AP/healthz" || fail "tickgame did not start"
# ProtectSystem=strict: / read-only; PrivateTmp: a private /tmp; then the
# unit's capabilities, no_new_privs and noroot securebits for the agent.
unshare --mount --propagation private sh -c '
  mount -t tmpfs -o mode=1777 tmpfs /tmp &&
  mount --bind -o ro / / && mount -o remount,bind,ro / &&
  exec setpriv --no-new-privs --securebits +noroot,+noroot_locked \
    --inh-caps="$0" --ambient-caps="$0" --bounding-set="$1" -- "$2" agent --pid "$3" --listen "127.0.0.1:$4"' \
  "$AMB" "$BND" "$(readlink -f "$BIN/tickprobe")" "$G" "$PORT" > "$WORK/agent.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/healthz" 100 || { cat "$WORK/agent.log"; fail "agent did not start in the sandbox"; }
ok=""
# Up to 60 s: on a loaded 2-core machine the families' verifier runs and
# attach retries take longer than /healthz does to come up.
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$PORT/metrics" | grep -q "^tickprobe_ticks_total{.*pid=\"$G\"" && { ok=1; break; }
  sleep 0.2
done
hz=$(curl -s "http://127.0.0.1:$PORT/healthz")
[ -n "$ok" ] && [ "$hz" = ok ] || { cat "$WORK/agent.log"; fail "agent in the unit's sandbox: healthz '$hz', runtime series: ${ok:-none}"; }
ap=$(pgrep -f "agent --pid $G --listen 127.0.0.1:$PORT" | head -1)
echo "ok: agent under the unit's sandbox (caps $(prop AmbientCapabilities); $(grep ^Cap /proc/$ap/status 2>/dev/null | tr '\t\n' ' '))"
echo "    /healthz: $hz; root read-only: $(awk '$2 == "/" {print $4}' /proc/$ap/mounts | tail -1 | cut -d, -f1)"
