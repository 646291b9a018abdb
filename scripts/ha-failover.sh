#!/usr/bin/env bash
# The HA failover tests with long transfers: two TCP streams (EPHEMERA_HA_TCP_MBPS MB/s and half
# that, each with a 256 KB/s upload) and a UDP stream run EPHEMERA_HA_RUN_S seconds before and
# after each failover, so a few hundred MB cross every failover. The test command runs the same
# tests with short transfers (docs/ha.md).
#
# Usage: scripts/ha-failover.sh [BUILD_DIR] [TEST...]
#   BUILD_DIR  a build with control/ephemera and tools/ephemeractl/ephemeractl (default build-rel)
#   TEST       ha_failover_sigkill (default), ha_failback_returning_box, ha_frozen_active_steps_down
# Root is needed (network namespaces). Example, 10 MB/s for 15 s around the kill (~300 MB):
#   EPHEMERA_HA_TCP_MBPS=10 EPHEMERA_HA_RUN_S=15 scripts/ha-failover.sh build-rel
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-rel}
shift || true
tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || tests=(ha_failover_sigkill)
export EPHEMERA_HA_TCP_MBPS=${EPHEMERA_HA_TCP_MBPS:-10}
export EPHEMERA_HA_RUN_S=${EPHEMERA_HA_RUN_S:-15}
cd "$root/$build"
for t in "${tests[@]}"; do
  /usr/bin/python3 "$root/tests/netns/ha_tests.py" "$t" control/ephemera \
    tools/ephemeractl/ephemeractl
done
