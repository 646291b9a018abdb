#!/usr/bin/env bash
# One-command load run of ephemera (RFC 9693 method, on memif, against a testpmd io-forwarding
# floor measured interleaved in the same run). Builds build-load (release) if needed, then runs
# bench/load_run.py: see its header for what is measured and how the two CPUs are shared.
#
# Usage: bench/load-run.sh [--quick] [--sizes 64K,1M,4M,16M] [--reps N] [--duration S]
#                          [--teardown] [--no-scaling] [--proto udp|tcp|mix] [--frame-size N]
#                          [--json FILE] [--summarise A.json B.json ...]
# Full run: about 7 minutes on a quiet host (+2.5 with --teardown; more when other work takes
# the CPUs and extra pairs are run); --quick (64K and 1M, 3 s windows): about 2 minutes.
# Root only. Results: build-load/load-run.json and a table; method and figures in
# docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$here/load_run.py" "$@"
