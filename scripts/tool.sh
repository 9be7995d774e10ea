# shellcheck shell=bash
# Sourced by runtest.sh and attention.sh before they set their traps. A trap that bash runs while it is
# parsing a `(…)` fails ("unexpected EOF while looking for matching `)'", exit 2), and bash parses a `$(…)`
# again each time it expands one: so the function below is parsed before the traps, and what it runs while
# they are set expands no `$(…)` in this shell (the venv check runs in a subshell, with its own traps).
# shellcheck source=scripts/venv.sh
source "${BASH_SOURCE[0]%/*}/venv.sh"

# run_tool MODULE USAGE ARGS...: the usage line when there are no ARGS, else .venv checked, then the tool's
# Python entry point (sagatools/entry.py) started with SIGINT and SIGTERM held (not lost) until its handlers
# are in place; where env cannot hold them (not GNU coreutils 8.31+), it starts as it is.
run_tool() {
  local module="$1" usage="$2" root="${BASH_SOURCE[0]%/*}/.."
  shift 2
  case "$root" in /*) ;; *) root="$PWD/$root" ;; esac
  if [ $# -eq 0 ]; then
    echo "usage: $usage" >&2
    exit 2
  fi
  (cd "$root" && ensure_venv requirements-tools.txt) >&2
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
  if env --block-signal=INT true 2>/dev/null; then
    trap '' INT TERM # from here until the interpreter holds them: not this shell's to handle
    exec env --block-signal=INT --block-signal=TERM "$root/.venv/bin/python" -m "$module" "$@"
  fi
  trap '' INT TERM
  exec "$root/.venv/bin/python" -m "$module" "$@"
}
