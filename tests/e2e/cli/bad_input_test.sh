#!/usr/bin/env bash
# Every bad input of issue 11.5, table-driven: what is run, the exit code
# (or HTTP status) it must give, and the one line it must print (an
# extended regex on the first stderr line, or on the response body). CLI
# errors are that line plus at most one "hint:" line.
set -uo pipefail
BIN=${1:?usage: bad_input_test.sh BIN_DIR}
TP=$BIN/tickprobe
source "$(dirname "$0")/../lib.sh"
e2e_init

head -c 2000000 /dev/zero | tr '\0' ' ' > "$WORK/huge.json"
"$BIN/cpu_fixture" 120 > /dev/null & PIDS+=($!); FIX=$!
failures=0
check_cli() {  # expected_rc regex -- command...
  local want=$1 re=$2; shift 3
  local rc=0
  timeout 20 "$TP" "$@" > /dev/null 2> "$WORK/err" || rc=$?
  local first; first=$(head -1 "$WORK/err")
  local n; n=$(wc -l < "$WORK/err")
  if [ "$rc" -ne "$want" ] || ! [[ "$first" =~ $re ]] || [ "$n" -gt 2 ] ||
     { [ "$n" -eq 2 ] && ! sed -n 2p "$WORK/err" | grep -q '^hint: '; }; then
    echo "FAIL: tickprobe $*: exit $rc (want $want), $n lines:"; sed 's/^/    /' "$WORK/err"
    failures=$((failures + 1))
  else
    echo "ok: tickprobe $* -> $rc: $first"
  fi
}
check_http() {  # method url body expected_status regex
  local method=$1 url=$2 body=$3 want=$4 re=$5
  local status
  if [ "$method" = POST ]; then
    status=$(curl -s -o "$WORK/body" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$url")
  else
    status=$(curl -s -o "$WORK/body" -w '%{http_code}' "$url")
  fi
  local line; line=$(head -1 "$WORK/body")
  if [ "$status" -ne "$want" ] || ! [[ "$line" =~ $re ]]; then
    echo "FAIL: $method $url $body: $status (want $want): $line"; failures=$((failures + 1))
  else
    echo "ok: $method ${url#http://127.0.0.1:*/} $body -> $status: $line"
  fi
}

P="-p $FIX"
#        exit  first line (regex)                                                     command
check_cli 2 '^error: runtime description /dev/zero is not a regular file$'       -- agent $P --runtime /dev/zero
check_cli 2 '^error: runtime description /dev/zero is not a regular file$'       -- coro $P --runtime /dev/zero -d 1
check_cli 2 "^error: runtime description .*huge.json is larger than 1 MiB"       -- coro $P --runtime "$WORK/huge.json" -d 1
check_cli 2 '^error: --duration: "nan" is not a number of seconds'               -- profile $P -d nan
check_cli 2 '^error: --duration: "inf" is not a number of seconds'               -- profile $P -d inf
check_cli 2 '^error: --duration: "-1" is not a number of seconds between 0 and 86400' -- profile $P -d -1
check_cli 2 '^error: --min-block-us: "-1" is not a whole number between 0 and 3600000000$' -- offcpu $P --min-block-us -1 -d 1
check_cli 2 '^error: --interval: "0" is not a number of seconds above 0'         -- agent $P --interval 0
check_cli 2 '^error: --interval: "-1" is not a number of seconds above 0'        -- agent $P --interval -1
check_cli 2 '^error: --frequency: "0" is not a whole number between 1 and 10000$' -- profile $P -F 0 -d 1
check_cli 2 '^error: --max-stacks: "0" is not a whole number between 1 and 4194304$' -- profile $P --max-stacks 0 -d 1
check_cli 2 '^error: --unwind-rows: "4000000000" is not a whole number between 1 and 67108864$' -- profile $P --unwind-rows 4000000000 -d 1
check_cli 2 '^error: --forget-exited-after: "5x" is not a duration'              -- agent $P --forget-exited-after 5x
check_cli 0 '^warning: process 2 \(kthreadd\) is a kernel thread: it has no user stacks' -- profile -p 2 -d 1

# HTTP: the agent's profile parameter and tickgame's fault settings.
start_agent "$BIN" --pid "$FIX"
for s in nan 0x10 '1%20abc' -1 1e3 ''; do
  check_http GET "$AGENT_URL/debug/pprof/profile?seconds=$s" "" 400 '^seconds must be a positive decimal number'
done
ADMIN=$(free_port)
"$BIN/tickgame" --port "$(free_port)" --tls-port 0 --admin-port "$ADMIN" > "$WORK/game.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$ADMIN/healthz" || fail "tickgame did not start"
F=http://127.0.0.1:$ADMIN/faults
check_http POST "$F" '{"cpu_hog_us": -5}'   400 "^bad value '-5' for cpu_hog_us: must be a whole number in \[0, 10000000\]$"
check_http POST "$F" '{"cpu_hog_us": 1e23}' 400 "^bad value '[0-9.e+]+' for cpu_hog_us: must be a whole number"
check_http POST "$F" '{"cpu_hog_us": 1.5}'  400 "^bad value '1.5' for cpu_hog_us: must be a whole number"
check_http POST "$F" '{"coroutine_leak_per_sec": -1}' 400 "^bad value '-1' for coroutine_leak_per_sec"
check_http GET "$F?leak_bytes_per_tick=-1" "" 400 "^bad value '-1' for leak_bytes_per_tick"
check_http POST "$F" '{"cpu_hog_us": 0}'    200 '^\{'

[ "$failures" -eq 0 ] || fail "$failures bad inputs not handled"
