#!/usr/bin/env bash
# Builds ephemera-bench in release mode (its own build directory, build-bench) and runs it:
# repetitions interleaved at random so that the translate paths and the rte_hash floor are
# measured side by side despite a noisy host, only the aggregates reported, JSON written to a
# file, and the summary tables printed at the end: cycles per packet and ratios to the floor,
# session create by allocation mode with ratios to dynamic, and bytes of state per subscriber.
#
# Memory: 2 MB hugepages when they can be had (as root: bench/hugepages.py raises
# nr_hugepages as far as needed, mounts a private hugetlbfs, and gives everything back when the
# run ends, also on failure or Ctrl-C); otherwise, or with --no-huge, 4 KiB pages as before
# (`--no-huge -m 2048`), with a one-line note saying why. The output (first line and the end of
# the summary) and the JSON context (eal_memory, eal_memory_args, eal_memory_note) say which.
#
# Usage: bench/run-bench.sh [--no-huge | --huge] [--page-size 2M|1G]
#                           [extra Google Benchmark flags, e.g. --benchmark_filter=1M]
# Environment: BENCH_JSON (default build-bench/translate_bench.json), BENCH_REPETITIONS (5),
# BENCH_MIN_TIME (0.3 s per repetition), BENCH_HUGE_MIB (1024: the hugepages reserved; the whole
# suite peaks at about 690 MiB of them), BENCH_NOHUGE_MIB (2048: -m with 4 KiB pages, which
# costs nothing untouched). The defaults run in about three minutes on 2 idle cores
# (session_create and expire rebuild a whole table per repetition).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-bench"
json=${BENCH_JSON:-$build/translate_bench.json}
repetitions=${BENCH_REPETITIONS:-5}
min_time=${BENCH_MIN_TIME:-0.3}
huge_mib=${BENCH_HUGE_MIB:-1024}
nohuge_mib=${BENCH_NOHUGE_MIB:-2048}

# The run's command and revision go into the JSON's context (bench/plot-results.py captions).
command="bench/run-bench.sh${*:+ $*}"
revision=$(GIT_OPTIONAL_LOCKS=0 git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! GIT_OPTIONAL_LOCKS=0 git -C "$root" diff --quiet HEAD -- 2>/dev/null; then
    revision="$revision+local changes"
fi

memory=(--tag bench)
while (($# > 0)); do
    case $1 in
    --no-huge) memory+=(--no-huge) ;;
    --huge) ;; # the default
    --page-size)
        if (($# < 2)); then
            echo "run-bench.sh: --page-size needs a value (2M or 1G)" >&2
            exit 2
        fi
        memory+=(--page-size "$2")
        shift
        ;;
    --page-size=*) memory+=(--page-size "${1#--page-size=}") ;;
    *) break ;;
    esac
    shift
done
for v in BENCH_HUGE_MIB:$huge_mib BENCH_NOHUGE_MIB:$nohuge_mib; do
    if [[ ! ${v#*:} =~ ^[1-9][0-9]*$ ]]; then
        echo "run-bench.sh: ${v%%:*} must be a number of MiB, not '${v#*:}'" >&2
        exit 2
    fi
done

# build-bench belongs to this script: set it up once, release; ninja regenerates it as needed.
if [[ ! -f $build/build.ninja ]]; then
    meson setup "$build" "$root" --buildtype=release -Dbenchmarks=true
fi
ninja -C "$build" bench/ephemera-bench

# hugepages.py sets EPHEMERA_EAL_MEMORY (and EPHEMERA_MEMORY_NOTE) for the benchmark and
# releases the hugepages when it ends.
/usr/bin/python3 "$root/bench/hugepages.py" exec --mib "$huge_mib" --no-huge-mib "$nohuge_mib" \
    "${memory[@]}" -- \
    "$build/bench/ephemera-bench" \
    --benchmark_repetitions="$repetitions" \
    --benchmark_report_aggregates_only=true \
    --benchmark_enable_random_interleaving=true \
    --benchmark_min_time="$min_time" \
    --benchmark_out="$json" \
    --benchmark_out_format=json \
    "$@"
/usr/bin/python3 - "$json" "$revision" "$command" <<'PY'
import json, sys
path, revision, command = sys.argv[1:4]
with open(path) as f:
    d = json.load(f)
d["context"].update({"revision": revision, "command": command})
with open(path, "w") as f:
    json.dump(d, f, indent=2)
PY
echo "JSON: $json"
