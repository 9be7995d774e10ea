#!/usr/bin/env bash
# Run booking sagas and show what happened.
#   ./runtest.sh FILE... [--json] [--report DIR] [--logs] [--timeout SECONDS]   on the embedded stack
#   ./runtest.sh FILE... --stage S [--region R] [--profile P] [--json]          on a deployed stage
# Creates .venv and installs requirements-tools.txt on first use. Works from any directory: FILE paths are
# taken relative to where it is run.
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
if [ $# -eq 0 ]; then
  echo "usage: ./runtest.sh FILE... [--json] [--report DIR] [--stage S --region R --profile P] [--logs] [--timeout SECONDS]" >&2
  exit 2
fi
# shellcheck source=scripts/venv.sh
(cd "$root" && source scripts/venv.sh && ensure_venv requirements-tools.txt) >&2
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$root/.venv/bin/python" -m sagatools.runtest "$@"
