#!/usr/bin/env bash
# e2e: profile tickgame under 50 bots with --inject-cpu-hog-us. Ground truth:
# the server burns the hog inside every tick in inject_cpu_hog(), so that
# function must be among the top frames by inclusive CPU, and its stacks must
# reach the tick loop. The off-CPU profile of the same server must show the
# tick thread blocking in an epoll wait between ticks, with the caller kept.
set -euo pipefail
BIN=${1:?usage: profile_tickgame_test.sh BIN_DIR}
source "$(dirname "$0")/../lib.sh"
e2e_init

PORT=$(free_port); ADMIN=$(free_port)
"$BIN/tickgame" --port "$PORT" --tls-port 0 --admin-port "$ADMIN" --inject-cpu-hog-us 8000 --duration 60 \
  > "$WORK/game.log" 2>&1 & PIDS+=($!); GAME=$!
wait_http "http://127.0.0.1:$ADMIN/healthz" || { cat "$WORK/game.log"; fail "tickgame did not start"; }
"$BIN/tickbots" --port "$PORT" --clients 50 --duration 40 > "$WORK/bots.json" 2> "$WORK/bots.log" & PIDS+=($!)
sleep 2

"$BIN/tickprobe" profile -q --pid "$GAME" -d 5 -F 199 --json > "$WORK/cpu.json" || fail "tickprobe profile"
python3 - "$WORK/cpu.json" <<'PY' || fail "CPU profile check"
import json, sys
prof = json.load(open(sys.argv[1]))
total = {}
stacks_with_hog = []
for s in prof["samples"]:
    names = [f["name"] for f in s["stack"]]
    for n in set(names):
        total[n] = total.get(n, 0) + s["values"][0]
    if any("inject_cpu_hog" in n for n in names):
        stacks_with_hog.append(names)
grand = sum(s["values"][0] for s in prof["samples"])
user_total = {n: v for n, v in total.items() if v < grand}  # drop frames on every stack (_start, main)
top = sorted(user_total.items(), key=lambda kv: -kv[1])[:10]
print("top inclusive frames:", [(n, round(100.0 * v / grand, 1)) for n, v in top])
hog = max((v for n, v in total.items() if "inject_cpu_hog" in n), default=0)
assert hog > 0, "inject_cpu_hog not in the profile"
assert any("inject_cpu_hog" in n for n, _ in top), "inject_cpu_hog not among the top 10 frames"
# 8 ms of hog per 50 ms tick: at least a quarter of the server's CPU.
assert hog >= 0.25 * grand, f"hog share {hog / grand:.2f} too small"
print(f"ok: inject_cpu_hog = {100.0 * hog / grand:.1f}% of tickgame CPU samples")
PY

"$BIN/tickprobe" offcpu -q --pid "$GAME" -d 3 --no-kernel --json > "$WORK/off.json" || fail "tickprobe offcpu"
python3 - "$WORK/off.json" <<'PY' || fail "off-CPU profile check"
import json, sys
prof = json.load(open(sys.argv[1]))
found = 0
for s in prof["samples"]:
    names = [f["name"] for f in s["stack"]]
    if names and names[0].startswith("epoll_"):  # epoll_wait, epoll_pwait, epoll_pwait2
        # the caller of the libc wrapper must be tickgame code, not skipped
        assert len(names) > 1 and "[unknown]" not in names[1], names[:4]
        found += s["values"][0]
assert found > 0, "no off-CPU time in an epoll wait"
print(f"ok: tick thread blocked {found / 1e9:.2f}s in epoll waits, with the caller kept")
PY
