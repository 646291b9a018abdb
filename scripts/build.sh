#!/usr/bin/env bash
# Installs what is missing and builds ephemera into build/ (or $BUILD_DIR) as users run it:
# a release build (-O3, assertions off), warnings as errors.
#   scripts/build.sh [extra meson options...]
#   BUILDTYPE=debugoptimized scripts/build.sh   # another build type
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
buildtype=${BUILDTYPE:-release}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  meson setup "$build_dir" --buildtype="$buildtype" "$@"
elif ! meson introspect "$build_dir" --buildoptions 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; o={x['name']:x['value'] for x in json.load(sys.stdin)}; sys.exit(o['buildtype']!='$buildtype')"; then
  meson configure "$build_dir" --buildtype="$buildtype"
fi
ninja -C "$build_dir"
