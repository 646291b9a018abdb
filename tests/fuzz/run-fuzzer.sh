#!/usr/bin/env bash
# A bounded fuzz run, as a test: every input of the seed corpus first, then SECONDS of fuzzing
# from them. New inputs go to a temporary directory (the tree is never written); a finding is
# kept in FINDINGS and fails the test.
#   run-fuzzer.sh FUZZER SEED_CORPUS FINDINGS SECONDS [DICTIONARY [LIBFUZZER_OPTION...]]
set -euo pipefail
fuzzer=$1 seeds=$2 findings=$3 seconds=$4 dict=${5:-}
shift $(($# < 5 ? $# : 5))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$findings"
# libFuzzer's own exit status for a finding is 77, which meson reads as a skipped test: 1 makes
# a finding a failure.
args=(-max_total_time="$seconds" -timeout=60 -rss_limit_mb=8192 -print_final_stats=1
      -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$findings/")
if [[ -n "$dict" && -f "$dict" ]]; then
  args+=(-dict="$dict")
fi
cd "$work"
status=0
"$fuzzer" "${args[@]}" "$@" "$work/corpus" "$seeds" || status=$?
exit "$status"
