#!/usr/bin/env bash
# README command 1: install what is missing, build, and run ephemera on its demo lab
# (network namespaces with real Linux subscribers and a server; no NIC, no hugepages).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
EPHEMERA="$PWD/build/control/ephemera" exec scripts/demo.sh
