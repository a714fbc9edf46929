#!/usr/bin/env bash
# Idempotent bootstrap: installs every Debian package that the build, the tests
# and the demo need, and prepares the kernel interfaces tickprobe uses.
# Safe to run repeatedly; it only calls apt when something is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev libdw-dev zlib1g-dev
  systemtap-sdt-dev
  # libraries
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libssl-dev openssl
  prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # real peers used by tests and benchmarks
  python3 python3-yaml prometheus golang-go bpftrace curl jq procps iproute2 binutils libxml2-utils nodejs
  # other allocators and disassembly (allocator interposition tests, RET-placed probes), load for the under-load run
  libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev libcapstone-dev stress-ng
  # debug files by build-id from a debuginfod server (client library; the server for tests)
  libdebuginfod-dev debuginfod
  # privilege and deploy tests: setpriv/unshare, systemd-analyze verify, manifest parsing
  util-linux systemd python3-yaml
  # benchmark peers (scripts/bench.sh): libbpf-tools offcputime, perf record --call-graph dwarf
  libbpf-tools linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: need root to install packages" >&2
    echo "hint: run as root, or install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian prometheus package starts a server on :9090 on install; tests run
# their own instance on a private port, so the system one is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus >/dev/null 2>&1 || true
fi

# tracepoints need tracefs; some minimal systems do not mount it.
if [ "$(id -u)" -eq 0 ] && [ -d /sys/kernel/tracing ] && ! mountpoint -q /sys/kernel/tracing; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
if [ "$(id -u)" -eq 0 ] && [ -d /sys/kernel/debug ] && ! mountpoint -q /sys/kernel/debug; then
  mount -t debugfs nodev /sys/kernel/debug 2>/dev/null || true
fi
exit 0
