#!/usr/bin/env bash
# Run booking sagas and show what happened.
#   ./runtest.sh FILE... [--json] [--report DIR] [--logs] [--timeout SECONDS]   on the embedded stack
#   ./runtest.sh FILE... --stage S [--region R] [--profile P] [--json]          on a deployed stage
# Creates .venv and installs requirements-tools.txt on first use. Works from any directory: FILE paths are
# taken relative to where it is run.
set -euo pipefail
# Ctrl-C or SIGTERM while the environment is checked: one line, the usual code, nothing started.
trap 'echo "runtest: interrupted" >&2; exit 130' INT
trap 'echo "runtest: terminated" >&2; exit 143' TERM
root="$(cd "$(dirname "$0")" && pwd)"
if [ $# -eq 0 ]; then
  echo "usage: ./runtest.sh FILE... [--json] [--report DIR] [--stage S --region R --profile P] [--logs] [--timeout SECONDS]" >&2
  exit 2
fi
# shellcheck source=scripts/venv.sh
(cd "$root" && source scripts/venv.sh && ensure_venv requirements-tools.txt) >&2
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
# The interpreter starts with both signals blocked (held, not lost) until its handlers are in place
# (sagatools/entry.py); where env cannot block them (not GNU coreutils 8.31+), it starts as it is.
block=()
if env --block-signal=INT true 2>/dev/null; then
  block=(env --block-signal=INT --block-signal=TERM)
fi
trap '' INT TERM  # from here until the interpreter holds them: not this shell's to handle
exec "${block[@]}" "$root/.venv/bin/python" -m sagatools.runtest "$@"
