#!/bin/sh
# One simulated day of port-block allocation: fixed block sizes against the adaptive rule
# (bench/block_sim.cpp, docs/allocation.md). Builds the release tree in build-release/ when
# there is no build/ configured as release, then prints the markdown tables.
#
#   bench/block-sizing.sh [--seed N] [--subscribers N] [--max-blocks N]
#                         [--active-block-timeout S] [--records-per-day N] [--threads N]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
buildtype=$(meson introspect --buildoptions "$build" 2>/dev/null | python3 -c \
    'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"][0])' \
    2>/dev/null || true)
if [ "$buildtype" != release ]; then
    build="$root/build-release"
    [ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" -j2 bench/ephemera-block-sim >/dev/null
exec "$build/bench/ephemera-block-sim" "$@"
