#!/usr/bin/env bash
# The README's test command: bootstrap, build, and run every test (unit, bpf, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 "$@"
