#!/usr/bin/env bash
# Trips that need attention on a deployed stage: list them, show one, resolve them.
#   ./attention.sh list    --stage S [--region R] [--profile P] [--json] [--all]
#   ./attention.sh show    TRIP_ID --stage S [--region R] [--profile P] [--json]
#   ./attention.sh resolve TRIP_ID... --stage S [--region R] [--profile P] [--json] [--keep-faults] [--roll-back] [--report DIR]
#   ./attention.sh close   TRIP_ID --reason TEXT --stage S [--region R] [--profile P] [--json]
# Works from any directory; creates .venv and installs requirements-tools.txt on first use.
set -euo pipefail
case "$0" in */*) here="${0%/*}" ;; *) here=. ;; esac # no subshell yet: the traps below come soon
# shellcheck source=scripts/venv.sh
source "$here/scripts/venv.sh"

# Parsed before the traps, as runtest.sh's (a trap run inside a `(…)` bash is reading fails to parse).
run_attention() {
  local root
  root="$(cd "$here" && pwd)"
  if [ $# -eq 0 ]; then
    echo "usage: ./attention.sh list [--all] | show TRIP_ID | resolve TRIP_ID... [--keep-faults] [--roll-back] [--report DIR] | close TRIP_ID --reason TEXT  --stage S [--region R] [--profile P] [--json]" >&2
    exit 2
  fi
  (cd "$root" && ensure_venv requirements-tools.txt) >&2
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
  # As runtest.sh: the interpreter starts with both signals held until its handlers are in place.
  if env --block-signal=INT true 2>/dev/null; then
    trap '' INT TERM
    exec env --block-signal=INT --block-signal=TERM "$root/.venv/bin/python" -m sagatools.attention "$@"
  fi
  trap '' INT TERM
  exec "$root/.venv/bin/python" -m sagatools.attention "$@"
}

trap 'echo "attention: interrupted" >&2; exit 130' INT
trap 'echo "attention: terminated" >&2; exit 143' TERM
run_attention "$@"
