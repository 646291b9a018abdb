#!/usr/bin/env bash
# Builds ephemera-bench in release mode (its own build directory, build-bench) and runs it:
# repetitions interleaved at random so that the translate paths and the rte_hash floor are
# measured side by side despite a noisy host, only the aggregates reported, JSON written to a
# file, and the summary table (cycles per packet, ratios to the floor) printed at the end.
#
# Usage: bench/run-bench.sh [extra Google Benchmark flags, e.g. --benchmark_filter=1M]
# Environment: BENCH_JSON (default build-bench/translate_bench.json), BENCH_REPETITIONS (5),
# BENCH_MIN_TIME (0.3 s per repetition). The defaults run in about three minutes on 2 idle
# cores (session_create and expire rebuild a whole table per repetition).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-bench"
json=${BENCH_JSON:-$build/translate_bench.json}
repetitions=${BENCH_REPETITIONS:-5}
min_time=${BENCH_MIN_TIME:-0.3}

# build-bench belongs to this script: set it up once, release; ninja regenerates it as needed.
if [[ ! -f $build/build.ninja ]]; then
    meson setup "$build" "$root" --buildtype=release -Dbenchmarks=true
fi
ninja -C "$build" bench/ephemera-bench

"$build/bench/ephemera-bench" \
    --benchmark_repetitions="$repetitions" \
    --benchmark_report_aggregates_only=true \
    --benchmark_enable_random_interleaving=true \
    --benchmark_min_time="$min_time" \
    --benchmark_out="$json" \
    --benchmark_out_format=json \
    "$@"
echo "JSON: $json"
