#!/usr/bin/env bash
# One-command Pktgen-DPDK run of ephemera over memif: Pktgen -> ephemera -> Pktgen and
# Pktgen -> testpmd io -> Pktgen interleaved, what comes out checked for pool addresses, the
# received rates and their ratio printed per flow count. See bench/pktgen_run.py's header.
#
# Usage: bench/pktgen-run.sh [--flows range,64K,1M] [--reps N] [--duration S] [--warmup S]
#                            [--nice N] [--no-capture] [--build DIR] [--no-build] [--json FILE]
#        bench/pktgen-run.sh --self-check      (no Pktgen, root or DPDK needed)
# Pktgen comes from $PKTGEN or the PATH (not a Debian package: docs/lab.md says where to get it
# and the memif MTU change it needs); without it the run exits 77 (skipped). Root only.
# Results: a table and BUILD/pktgen-run.json; figures in docs/performance.md ("Pktgen").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$here/pktgen_run.py" "$@"
