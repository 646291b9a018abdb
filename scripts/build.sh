#!/usr/bin/env bash
# Installs what is missing and builds ephemera into build/ (or $BUILD_DIR).
#   scripts/build.sh [extra meson options...]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  meson setup "$build_dir" --buildtype=debugoptimized "$@"
fi
ninja -C "$build_dir"
