#!/usr/bin/env bash
# meson install: puts the example configuration into SYSCONFDIR unless a file is already there,
# so that installing a new version never overwrites what an operator edited. The examples are
# also installed untouched in EXAMPLES, to compare with.
#
#   install-config.sh SYSCONFDIR EXAMPLES     (absolute paths; DESTDIR is prepended)
set -euo pipefail

sysconfdir=${DESTDIR:-}$1
examples=${DESTDIR:-}$2

put() {
  local from=$examples/$1 to=$sysconfdir/$2
  if [[ -e $to ]]; then
    echo "Keeping $to (the new example is $from)"
  else
    install -D -m 0644 "$from" "$to"
    echo "Installing $to"
  fi
}

put ephemera.toml ephemera/ephemera.toml
put eal.conf ephemera/eal.conf
put ephemera.default default/ephemera
