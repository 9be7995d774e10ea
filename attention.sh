#!/usr/bin/env bash
# Sagas that need attention on a deployed stage: list them, show one, resolve them.
#   ./attention.sh list    --stage S [--region R] [--profile P] [--json] [--all]
#   ./attention.sh show    ID --stage S [--region R] [--profile P] [--json]
#   ./attention.sh resolve ID... --stage S [--region R] [--profile P] [--json] [--keep-faults] [--roll-back] [--report DIR]
#   ./attention.sh close   ID --reason TEXT --stage S [--region R] [--profile P] [--json]
# Works from any directory; creates .venv and installs requirements-tools.txt on first use.
set -euo pipefail
case "$0" in */*) here="${0%/*}" ;; *) here=. ;; esac # no subshell yet: the traps below come soon
# shellcheck source=scripts/tool.sh
source "$here/scripts/tool.sh"
# Ctrl-C or SIGTERM while the environment is checked: one line, the usual code, nothing started.
trap 'echo "attention: interrupted" >&2; exit 130' INT
trap 'echo "attention: terminated" >&2; exit 143' TERM
run_tool sagatools.attention "./attention.sh list [--all] | show ID | resolve ID... [--keep-faults] [--roll-back] [--report DIR] | close ID --reason TEXT  --stage S [--region R] [--profile P] [--json]" "$@"
