#!/usr/bin/env bash
# Create or update a stage's two state machines (the saga's and the resolution of a stuck one) from
# statemachine/*.asl.json and the function ARNs, roles and log groups in the stage's stack outputs.
# Nothing to edit by hand.
#   ./deploy-stepfunc.sh [STAGE [REGION [AWS_PROFILE]]] [--dry-run]
# Defaults: stage dev; region from AWS_REGION / AWS_DEFAULT_REGION, else us-west-2; profile from
# AWS_PROFILE, else the default credentials chain. --dry-run prints the rendered definition and checks it.
set -euo pipefail
cd "$(dirname "$0")"
usage() { echo "usage: ./deploy-stepfunc.sh [STAGE [REGION [AWS_PROFILE]]] [--dry-run]" >&2; exit 2; }
positional=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) ;;
    -h|--help) usage ;;
    -*) echo "deploy-stepfunc: unknown option $arg" >&2; usage ;;
    *) positional=$((positional + 1)) ;;
  esac
done
[ "$positional" -le 3 ] || usage
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
ensure_venv requirements-tools.txt >&2
exec .venv/bin/python -m sagatools.deployed.deploy stepfunctions "$@"
