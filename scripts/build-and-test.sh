#!/usr/bin/env bash
# README command 2: install what is missing, build, run every test, and end with
# "N passed, N failed".
#   0. builds: release (what users run, and what the suites below test) and debug
#   1. unit tests (config parser, translation core) in the release build
#   2. golden pcap tests: ephemera on net_pcap with 1, 2 and 4 workers, outputs compared byte
#      for byte
#   3. namespace tests: real Linux TCP/UDP/ICMP through ephemera on net_af_packet
#   4. conformance tests: one per RFC requirement (docs/conformance.md), also in namespaces
#   5. the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#   6. the fuzz targets (tests/fuzz, docs/reliability.md), built with clang, libFuzzer, ASan and
#      UBSan: every input of the in-tree corpus, then a short bounded run of each
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

# Every target must also build warning-free at -O0 (debug); GCC warns differently at each
# optimisation level, and the release build above is -O3.
if [[ ! -f build-debug/build.ninja ]]; then
  meson setup build-debug --buildtype=debug >/dev/null
fi
ninja -C build-debug >/dev/null || { echo "debug build failed"; echo "0 passed, 1 failed"; exit 1; }

status=0
meson test -C build --print-errorlogs --num-processes 1 || status=1

# Sanitizer build of the unit tests only (the dataplane suites need real timing).
if [[ ! -f build-asan/build.ninja ]]; then
  meson setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbenchmarks=false >/dev/null || status=1
fi
if ninja -C build-asan tests/config-tests tests/core-tests tests/block-sizing-tests tests/alarms-tests \
  tests/metrics-tests tests/capacity-plan-tests tests/subscriber-summary-tests \
  tests/logging-tests tests/ha-tests tools/ephemeractl/ephemeractl >/dev/null; then
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --no-rebuild --print-errorlogs --suite unit --num-processes 1 \
      --timeout-multiplier 4 || status=1
else
  echo "sanitizer build failed"
  status=1
fi

# The fuzz build: clang only; one ninja at a time, the targets alone.
if [[ ! -f build-fuzz/build.ninja ]]; then
  CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbenchmarks=false >/dev/null ||
    status=1
fi
if ninja -C build-fuzz tests/fuzz/fuzz-translator tests/fuzz/fuzz-config tests/fuzz/fuzz-reply \
    >/dev/null; then
  meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz --num-processes 1 || status=1
else
  echo "fuzz build failed"
  status=1
fi

/usr/bin/python3 scripts/summarize-tests.py build build-asan build-fuzz
summary_status=$?
[[ $status -eq 0 && $summary_status -eq 0 ]]
