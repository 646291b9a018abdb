#!/bin/sh
# NAT event log volume per subscriber per day in dynamic, blocks and deterministic mode: one
# synthetic day through the translator, every record through the real syslog, IPFIX and archive
# encoders (bench/log_volume.cpp, docs/logging.md). Uses build/ when it is an optimised build,
# else sets up build-release/; builds the one executable, then prints the markdown tables.
#
#   bench/log-volume.sh [--subscribers N] [--seed N] [--archive DIR [--archive-key FILE]]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
buildtype=$(meson introspect --buildoptions "$build" 2>/dev/null | python3 -c \
    'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"][0])' \
    2>/dev/null || true)
case "$buildtype" in
release | debugoptimized) ;;
*)
    build="$root/build-release"
    [ -d "$build" ] || meson setup "$build" --buildtype=release -Dtests=false >/dev/null
    ;;
esac
ninja -C "$build" -j2 bench/ephemera-log-volume >/dev/null
exec "$build/bench/ephemera-log-volume" "$@"
