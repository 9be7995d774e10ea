#!/usr/bin/env bash
# One command per job, the same on a workstation and in CI.
#   ./build.sh test     lint (ruff) and the whole test suite; creates .venv on first use
#   ./build.sh lint     ruff only
set -euo pipefail
cd "$(dirname "$0")"
usage() { echo "usage: ./build.sh test|lint" >&2; exit 2; }
[ $# -ge 1 ] || usage
# shellcheck source=scripts/venv.sh
source scripts/venv.sh

lint() {
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
}

case "$1" in
  test)
    ensure_venv requirements-dev.txt
    lint
    shift
    .venv/bin/python -m pytest "$@"
    ;;
  lint)
    ensure_venv requirements-dev.txt
    lint
    ;;
  *) usage ;;
esac
