#!/usr/bin/env bash
# Run sagas (request files of the app this project serves) and show what happened.
#   ./runtest.sh FILE... [--json] [--report DIR] [--logs] [--timeout SECONDS]   on the embedded stack
#     [--coordinator durable]                                                  (coordinated by the durable function)
#   ./runtest.sh FILE... --stage S [--region R] [--profile P] [--json]          on a deployed stage
# Creates .venv and installs requirements-tools.txt on first use. Works from any directory: FILE paths are
# taken relative to where it is run.
set -euo pipefail
case "$0" in */*) here="${0%/*}" ;; *) here=. ;; esac # no subshell yet: the traps below come soon
# shellcheck source=scripts/tool.sh
source "$here/scripts/tool.sh"
# Ctrl-C or SIGTERM while the environment is checked: one line, the usual code, nothing started.
trap 'echo "runtest: interrupted" >&2; exit 130' INT
trap 'echo "runtest: terminated" >&2; exit 143' TERM
run_tool sagatools.runtest "./runtest.sh FILE... [--json] [--report DIR] [--stage S --region R --profile P] [--coordinator durable] [--logs] [--timeout SECONDS]" "$@"
