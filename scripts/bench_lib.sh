# Shared helpers of the scripts/bench_*.sh benchmarks (sourced, not run).
#
#   median                      reads numbers on stdin, prints their median
#   bpf_stats_on / bpf_stats_restore
#                               kernel.bpf_stats_enabled for the run (it adds
#                               a few ns to every BPF program while on), put
#                               back as it was on exit
#   prog_snapshot FILE          `bpftool prog show -j` into FILE
#   wait_prog_running BEFORE NAME [TIMEOUT]
#                               waits until a program named NAME that is not
#                               in snapshot BEFORE has run at least once
#                               (the tracer has attached; NAME * = any
#                               new program); prints its ids
#   prog_cost BEFORE AFTER IDS  prints "runs avg_ns" of programs IDS between
#                               two snapshots (summed)
#   own_prog_ids PID IDS        the ids among IDS (comma-separated) that
#                               process PID holds open (its fdinfo prog_id)

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

BENCH_BPF_STATS_OLD=""
bpf_stats_on() {
  BENCH_BPF_STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled=1
}
bpf_stats_restore() { [ -n "$BENCH_BPF_STATS_OLD" ] && sysctl -qw kernel.bpf_stats_enabled="$BENCH_BPF_STATS_OLD" || true; }

prog_snapshot() { bpftool prog show -j > "$1"; }

wait_prog_running() {  # BEFORE NAME [TIMEOUT_S] -> ids, one line, comma-separated
  local before=$1 name=$2 timeout=${3:-30} now ids
  for _ in $(seq $((timeout * 5))); do
    now=$(mktemp)
    prog_snapshot "$now"
    ids=$(python3 - "$before" "$now" "$name" <<'PY'
import json, sys
old = {p["id"] for p in json.load(open(sys.argv[1]))}
ids = [str(p["id"]) for p in json.load(open(sys.argv[2]))
       if p["id"] not in old and sys.argv[3] in ("*", p.get("name")) and p.get("run_cnt", 0) > 0]
print(",".join(ids))
PY
)
    rm -f "$now"
    [ -n "$ids" ] && { echo "$ids"; return 0; }
    sleep 0.2
  done
  return 1
}

prog_cost() {  # BEFORE AFTER IDS -> "runs avg_ns"
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
ids = {int(i) for i in sys.argv[3].split(",") if i}
b = {p["id"]: p for p in json.load(open(sys.argv[1]))}
n = t = 0
for p in json.load(open(sys.argv[2])):
    if p["id"] in ids and p["id"] in b:
        n += p.get("run_cnt", 0) - b[p["id"]].get("run_cnt", 0)
        t += p.get("run_time_ns", 0) - b[p["id"]].get("run_time_ns", 0)
print(n, round(t / n) if n else 0)
PY
}

own_prog_ids() {  # PID IDS -> the ids among IDS that PID holds, comma-separated
  local mine
  mine=" $(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2> /dev/null | awk '{print $2}' | sort -u | tr '\n' ' ') "
  local i out=()
  for i in ${2//,/ }; do [[ "$mine" == *" $i "* ]] && out+=("$i"); done
  (IFS=,; echo "${out[*]}")
}
