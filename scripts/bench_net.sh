#!/usr/bin/env bash
# Cost of the sockets and TLS families, measured side by side in one run.
#
#  1. Per socket syscall: net_pingpong (a loopback TCP ping-pong, 4 socket
#     syscalls per round trip, each blocking) untraced, then under
#     `tickprobe sockets`, alternating, ROUNDS times. Reported: median round
#     trips/s of each, the ratio, and the cost per traced syscall.
#  2. Per handshake: `openssl s_server` under `openssl s_time -new`
#     untraced, then under `tickprobe tls`, alternating. Reported: median
#     handshakes/s, the ratio, and the cost per handshake.
#
# usage: scripts/bench_net.sh [ROUNDS=3] [PHASE_SECONDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
ROUNDS=${1:-3}; PHASE=${2:-5}
[ -x "$BIN/net_pingpong" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pingpong() {  # $1 = base|traced
  local out tp=""
  "$BIN/net_pingpong" --duration $((PHASE + 2)) > /tmp/pp.$$ & local pp=$!
  if [ "$1" = traced ]; then
    "$BIN/tickprobe" sockets -q --pid "$pp" -d $((PHASE + 4)) > /dev/null 2>&1 & tp=$!
  fi
  wait "$pp"; out=$(awk '{print $2}' /tmp/pp.$$)
  [ -n "$tp" ] && { kill -INT "$tp" 2>/dev/null || true; wait "$tp" 2>/dev/null || true; }
  echo "$out"
}
# The ping-pong starts before tickprobe attaches: give each traced phase the
# same 2 s head start and compare the whole run (attach takes well under 1 s,
# so the traced rate slightly overstates the traced throughput).
base=(); traced=()
for r in $(seq "$ROUNDS"); do
  base+=("$(pingpong base)"); traced+=("$(pingpong traced)")
done
B=$(printf '%s\n' "${base[@]}" | median); T=$(printf '%s\n' "${traced[@]}" | median)
python3 - "$B" "$T" <<'PY'
import sys
b, t = float(sys.argv[1]), float(sys.argv[2])
per_syscall_us = (1 / t - 1 / b) / 4 * 1e6
print(f"socket syscalls: untraced {b:.0f} round trips/s, tickprobe sockets {t:.0f}/s, ratio {t/b:.3f}, "
      f"+{per_syscall_us:.2f} us per syscall (4 per round trip)")
PY

DIR=$(mktemp -d)
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout "$DIR/key.pem" -out "$DIR/cert.pem" \
  > /dev/null 2>&1
handshakes() {  # $1 = base|traced
  local port tp="" srv n
  port=$(free_port)
  openssl s_server -quiet -accept "$port" -cert "$DIR/cert.pem" -key "$DIR/key.pem" -www > /dev/null 2>&1 & srv=$!
  sleep 0.5
  if [ "$1" = traced ]; then
    "$BIN/tickprobe" tls -q --pid "$srv" -d $((PHASE + 5)) > /dev/null 2>&1 & tp=$!
    sleep 2
  fi
  # s_time prints "N connections in Ts; X connections/user sec"; use N / T.
  n=$(openssl s_time -connect "127.0.0.1:$port" -new -time "$PHASE" 2>/dev/null \
      | awk '/connections in/ {gsub("s;","",$4); print $1 / $4; exit}')
  [ -n "$tp" ] && { kill -INT "$tp" 2>/dev/null || true; wait "$tp" 2>/dev/null || true; }
  kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
  echo "${n:-0}"
}
base=(); traced=()
for r in $(seq "$ROUNDS"); do
  base+=("$(handshakes base)"); traced+=("$(handshakes traced)")
done
B=$(printf '%s\n' "${base[@]}" | median); T=$(printf '%s\n' "${traced[@]}" | median)
python3 - "$B" "$T" <<'PY'
import sys
b, t = float(sys.argv[1]), float(sys.argv[2])
print(f"TLS handshakes (s_server + s_time -new): untraced {b:.1f}/s, tickprobe tls {t:.1f}/s, ratio {t/b:.3f}, "
      f"+{(1/t - 1/b)*1e6:.0f} us per handshake (client and server share 2 cores)")
PY
rm -rf "$DIR" /tmp/pp.$$
