#!/usr/bin/env bash
# Run booking sagas and show what happened.
#   ./runtest.sh FILE... [--json] [--logs] [--timeout SECONDS]        on the embedded stack (no AWS account)
#   ./runtest.sh FILE... --stage S [--region R] [--profile P] [--json]  on a deployed stage
# Creates .venv and installs requirements.txt on first use.
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -eq 0 ]; then
  echo "usage: ./runtest.sh FILE... [--json] [--stage S --region R --profile P] [--logs] [--timeout SECONDS]" >&2
  exit 2
fi
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
ensure_venv requirements.txt >&2
exec .venv/bin/python -m sagatools.runner "$@"
