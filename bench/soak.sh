#!/usr/bin/env bash
# Soak and floods of ephemera over memif: an hour under ephemera-loadgen with churn, a live
# change every minute and periodic SIGHUP, then three floods (SYN from many subscribers, outside
# to random pool ports, malformed frames) while well-behaved flows run. See bench/soak.py for
# what is checked, docs/reliability.md for the method and the figures.
#
# Usage: bench/soak.sh [--quick] [--duration S] [--reconfig-every S] [--sighup-every S]
#                      [--floods-only | --no-floods] [--workers N] [--json FILE] [...]
# Needs a release build in build/ (scripts/build.sh). Full run: about 70 minutes; --quick:
# about 10. Not part of the test command. Root only. Every process it starts, memif socket and
# EAL runtime directory it makes is removed at the end, also when it fails or is interrupted.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$here/soak.py" "$@"
