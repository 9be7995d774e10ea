#!/usr/bin/env bash
# Trips that need attention on a deployed stage: list them, show one, resolve them.
#   ./attention.sh list    --stage S [--region R] [--profile P] [--json] [--all]
#   ./attention.sh show    TRIP_ID --stage S [--region R] [--profile P] [--json]
#   ./attention.sh resolve TRIP_ID... --stage S [--region R] [--profile P] [--json] [--keep-faults] [--roll-back] [--report DIR]
#   ./attention.sh close   TRIP_ID --reason TEXT --stage S [--region R] [--profile P] [--json]
# Works from any directory; creates .venv and installs requirements-tools.txt on first use.
set -euo pipefail
trap 'echo "attention: interrupted" >&2; exit 130' INT
trap 'echo "attention: terminated" >&2; exit 143' TERM
root="$(cd "$(dirname "$0")" && pwd)"
if [ $# -eq 0 ]; then
  echo "usage: ./attention.sh list [--all] | show TRIP_ID | resolve TRIP_ID... [--keep-faults] [--roll-back] [--report DIR] | close TRIP_ID --reason TEXT  --stage S [--region R] [--profile P] [--json]" >&2
  exit 2
fi
# shellcheck source=scripts/venv.sh
(cd "$root" && source scripts/venv.sh && ensure_venv requirements-tools.txt) >&2
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
# As runtest.sh: the interpreter starts with both signals held until its handlers are in place.
block=()
if env --block-signal=INT true 2>/dev/null; then
  block=(env --block-signal=INT --block-signal=TERM)
fi
trap '' INT TERM
exec "${block[@]}" "$root/.venv/bin/python" -m sagatools.attention "$@"
