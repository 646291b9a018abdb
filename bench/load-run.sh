#!/usr/bin/env bash
# One-command load run of ephemera (RFC 9693 method, on memif, against a testpmd io-forwarding
# floor measured interleaved in the same run). Builds build-load (release) if needed, then runs
# bench/load_run.py: see its header for what is measured and how the two CPUs are shared.
#
# Usage: bench/load-run.sh [--quick] [--sizes 64K,1M,4M,16M] [--reps N] [--duration S]
#                          [--teardown] [--no-scaling] [--proto udp|tcp|mix] [--frame-size N]
#                          [--no-huge] [--json FILE] [--summarise A.json B.json ...]
#        bench/load-run.sh --logging-cost [--logging-idle] [--sizes 64K,1M] [--reps N]
#        bench/load-run.sh --live-changes [--sizes 1M] [--live-workers 1,2] [--live-rounds N]
#                          [--live-duration S]
# Memory: 2 MB hugepages for every DPDK process when they can be had (bench/hugepages.py reserves
# them and gives them back at the end, also on failure or Ctrl-C), else 4 KiB pages with a note;
# --no-huge forces 4 KiB pages (--no-huge -m N) as before. The output and the JSON say which.
# Full run: about 7 minutes on a quiet host (+2.5 with --teardown; more when other work takes
# the CPUs and extra pairs are run); --quick (64K and 1M, 3 s windows): about 2 minutes.
# --live-changes: the workers' longest pauses while ephemeractl changes the pool and the port
# range under load (about 1.5 minutes with the defaults).
# Root only. Results: build-load/load-run.json and a table; method and figures in
# docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$here/load_run.py" "$@"
