#!/usr/bin/env bash
# Run booking sagas and show what happened.
#   ./runtest.sh FILE... [--json] [--report DIR] [--logs] [--timeout SECONDS]   on the embedded stack
#   ./runtest.sh FILE... --stage S [--region R] [--profile P] [--json]          on a deployed stage
# Creates .venv and installs requirements-tools.txt on first use. Works from any directory: FILE paths are
# taken relative to where it is run.
set -euo pipefail
case "$0" in */*) here="${0%/*}" ;; *) here=. ;; esac # no subshell yet: the traps below come soon
# shellcheck source=scripts/venv.sh
source "$here/scripts/venv.sh"

# Defined (so parsed) before the traps below: bash runs a trap between the steps of its parser, and one
# run while it is inside a `(…)` or `$(…)` it is reading fails to parse ("unexpected EOF while looking for
# matching `)'", exit 2). After the traps nothing but this function's name is read.
run_runtest() {
  local root
  root="$(cd "$here" && pwd)"
  if [ $# -eq 0 ]; then
    echo "usage: ./runtest.sh FILE... [--json] [--report DIR] [--stage S --region R --profile P] [--logs] [--timeout SECONDS]" >&2
    exit 2
  fi
  (cd "$root" && ensure_venv requirements-tools.txt) >&2
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
  # The interpreter starts with both signals blocked (held, not lost) until its handlers are in place
  # (sagatools/entry.py); where env cannot block them (not GNU coreutils 8.31+), it starts as it is.
  if env --block-signal=INT true 2>/dev/null; then
    trap '' INT TERM # from here until the interpreter holds them: not this shell's to handle
    exec env --block-signal=INT --block-signal=TERM "$root/.venv/bin/python" -m sagatools.runtest "$@"
  fi
  trap '' INT TERM
  exec "$root/.venv/bin/python" -m sagatools.runtest "$@"
}

# Ctrl-C or SIGTERM while the environment is checked: one line, the usual code, nothing started.
trap 'echo "runtest: interrupted" >&2; exit 130' INT
trap 'echo "runtest: terminated" >&2; exit 143' TERM
run_runtest "$@"
