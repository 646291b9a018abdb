#!/usr/bin/env bash
# Installs every Debian 12 package ephemera needs to build, test and run its demo lab.
# Idempotent: packages already present are not downloaded again, and apt's lists are
# refreshed only when something is missing.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config clang-format
  # dataplane
  dpdk dpdk-dev libdpdk-dev libpcap-dev libnuma-dev
  # libraries
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  # NAT event logging: the archive's hash chain (OpenSSL) and its compressed files (zstd)
  libssl-dev libzstd-dev
  # Prometheus /metrics: the embedded HTTP server
  libcivetweb-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3-scapy
  # fuzzing (tests/fuzz): clang 14, its libFuzzer and sanitizer runtimes, llvm-symbolizer
  clang libclang-rt-14-dev llvm
  # conformance suite: STUN client and server, traceroute, captures
  stun-client stun-server traceroute tcpdump
  # namespace lab
  iproute2 ethtool socat iputils-ping procps coreutils python3 curl traceroute netcat-openbsd
  # scale-out lab (scripts/lab.sh ... scale): BIRD 2 speaks BGP for each box and the outside
  # router; the lab runs its own instances (own configs and sockets) and leaves the package's
  # service alone
  bird2
  # NAT event logging: real collectors (rsyslogd, pmacct's nfacctd, nfdump's nfcapd) and tshark,
  # which decodes the IPFIX exporter's messages
  rsyslog nfdump pmacct tshark
  # Prometheus exposition: a real Prometheus and promtool (tests/netns/metrics_tests.py)
  prometheus
  # bench/plot-results.py: the pictures of docs/performance.md
  python3-matplotlib
  # tests that would otherwise skip: the zstd command reads the archive's frames back
  # (archive_test.cpp), systemd-analyze checks the unit and unshare/findmnt the hugepage
  # helper's mount (tests/service)
  zstd systemd util-linux
)

# Debian's prometheus package enables and starts its own service on :9090. The tests run their
# own Prometheus, and a second one scraping nothing only costs CPU: it is stopped and disabled
# where systemd runs (without systemd the package starts nothing).
stop_packaged_prometheus() {
  if [[ -d /run/systemd/system ]] && { systemctl is-enabled --quiet prometheus ||
      systemctl is-active --quiet prometheus; } 2>/dev/null; then
    echo "install-deps: stopping and disabling the prometheus package's own service"
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  [[ $EUID -ne 0 ]] || stop_packaged_prometheus
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or with sudo) to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
stop_packaged_prometheus
