#!/usr/bin/env bash
# The kernel's cost of detaching uprobes, side by side (issue 11.9; see
# docs/agent.md "Shutdown"): N perf-event uprobes (libbpf 1.1's kind) closed
# serially and from N threads, against uprobe_multi links. Root.
#   bash scripts/bench_uprobe_detach.sh [N]     (default 10; probes libc's malloc)
set -euo pipefail
N=${1:-10}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cc -O2 -o "$OUT/uprobe_detach" "$(dirname "$0")/bench/uprobe_detach.c" -lpthread
LIBC=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
OFF=$(readelf -Ws "$LIBC" | awk '!f && $8 ~ /^malloc(@@|$)/ {print "0x"$2; f = 1}')
echo "kernel $(uname -r), $N probes on malloc in $LIBC (+$OFF), load $(cut -d' ' -f1 /proc/loadavg)"
"$OUT/uprobe_detach" "$N" "$LIBC" "$OFF"
