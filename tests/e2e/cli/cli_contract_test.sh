#!/usr/bin/env bash
# The CLI's contract: doctor passes on this machine, errors are one line plus
# a hint, exit codes are 0 ok / 1 runtime failure / 2 usage, --help works,
# and Ctrl-C during a recording still writes the profile.
set -uo pipefail
BIN=${1:?usage: cli_contract_test.sh BIN_DIR}
TP=$BIN/tickprobe
WORK=$(mktemp -d); trap 'kill $FIX 2>/dev/null; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TP" doctor > "$WORK/doctor.txt"; rc=$?
[ $rc -eq 0 ] || { cat "$WORK/doctor.txt"; fail "doctor exit $rc"; }
"$TP" doctor --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] and len(d["checks"]) >= 10, d' \
  || fail "doctor --json"
echo "ok: doctor"

"$TP" --help | grep -q profile || fail "--help lists subcommands"
"$TP" profile --help | grep -q -- "--frequency" || fail "profile --help"

"$TP" profile > /dev/null 2> "$WORK/err"; rc=$?
[ $rc -eq 2 ] || fail "no target: exit $rc, want 2"
grep -q "^error: no target given" "$WORK/err" && grep -q "^hint: " "$WORK/err" || { cat "$WORK/err"; fail "usage message"; }

"$TP" profile --frequency abc > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "bad flag value: exit $rc, want 2"

"$TP" profile --pid 4000000 -d 1 > /dev/null 2> "$WORK/err"; rc=$?
[ $rc -eq 1 ] || fail "missing process: exit $rc, want 1"
[ "$(wc -l < "$WORK/err")" -eq 2 ] && grep -q "^error: no running process matches pid 4000000" "$WORK/err" \
  && grep -q "^hint: is the process still running?" "$WORK/err" || { cat "$WORK/err"; fail "runtime error format"; }
echo "ok: errors and exit codes"

# Ctrl-C (SIGINT) ends a long recording early and still writes the output.
"$BIN/cpu_fixture" 60 > /dev/null & FIX=$!
"$TP" profile -q --pid $FIX -d 60 -o "$WORK/cpu.folded" & TPPID=$!
sleep 3; kill -INT $TPPID; wait $TPPID; rc=$?
[ $rc -eq 0 ] || fail "profile after SIGINT: exit $rc"
grep -q "burn_hot" "$WORK/cpu.folded" || fail "profile written after SIGINT lacks the hot function"
echo "ok: SIGINT writes what was recorded"
