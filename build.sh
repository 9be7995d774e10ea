#!/usr/bin/env bash
# One command per job, the same on a workstation and in CI.
#   ./build.sh test [all|TIER] [PYTEST_ARGS]     lint, generated files, offline template checks, every test but the
#                                                slow ones (all: those too; TIER unit|embedded|deploy|e2e: that
#                                                folder of tests/ only, slow ones included)
#   ./build.sh generate [--check]                write what follows from saga/definition.py (--check: exit 1
#                                                naming each generated file that differs, writing nothing)
#   ./build.sh deploy [STAGE [REGION [PROFILE]]] functions, tables and the state machine, then a summary (a stage
#                                                whose coordinator is durable, serverless.yml params: its
#                                                durable function and tables, no state machine)
#   ./build.sh remove [STAGE [REGION [PROFILE]]] [--force]  the state machines, then the stack (prod: --force
#                                                or its name typed; its tables' deletion protection is lifted)
#   ./build.sh bench                             measure the embedded stack and a saga's cost (docs/BENCHMARKS.md)
#   ./build.sh diagram                           the state machines as Mermaid diagrams (generate writes README's)
#   ./build.sh screenshot                        run the app's samples/fail.json, screenshot its report (docs/)
#   ./build.sh package [STAGE]                   package the templates offline (build/package/; every stage by default)
#   ./build.sh lint                              ruff (lint and format), mypy and shellcheck
#   ./build.sh lock                              write the lock files (requirements*.lock) from the pins in
#                                                requirements*.txt, every dependency at its newest allowed release
#   ./build.sh local start|stop|status|url       the local cloud's endpoint (moto server on 127.0.0.1)
# Defaults: stage dev; region from AWS_REGION / AWS_DEFAULT_REGION, else us-west-2; profile from
# AWS_PROFILE, else the default credentials chain. The stage `local` deploys to the local endpoint
# (started by `deploy local` when it is not running) with the credentials its start made
# (.runtest/local/credentials); profiles play no part.
set -euo pipefail
cd "$(dirname "$0")"
usage() {
  echo "usage: ./build.sh test [all|unit|embedded|deploy|e2e] | generate [--check] | bench | diagram | screenshot | deploy [STAGE [REGION [AWS_PROFILE]]] | remove [STAGE [REGION [AWS_PROFILE]]] | package [STAGE] | lint | lock | local start|stop|status|url" >&2
  exit 2
}
[ $# -ge 1 ] || usage
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
PACKAGED_STAGES=(dev prod local durable)
# The AWS SDK inside the pinned osls warns, in 8 lines on every deploy and remove, that SDK releases after
# January 2027 will need Node 22; the pinned one runs on the Node we have. Its own switch turns that off.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

app_dir() {
  # The served app's folder (saga/definition.py's APP), relative to the project.
  .venv/bin/python -c 'from sagatools.project import PROJECT_ROOT, app_folder; print(app_folder().relative_to(PROJECT_ROOT))'
}

app_folders() {
  # Every app of the project: a top-level folder with a definition.py (saga/ holds the one setting), and
  # the served one wherever it is.
  local definition app
  app=$(app_dir)
  for definition in */definition.py; do
    [ "$definition" = saga/definition.py ] || [ "${definition%/definition.py}" = "$app" ] || echo "${definition%/definition.py}"
  done
  echo "$app"
}

app_tests() {
  # The apps' own tests (each folder's tests/: its rules), which run whichever app is served.
  local app
  for app in $(app_folders); do [ ! -d "$app/tests" ] || echo "$app/tests"; done
}

lint() {
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  # The engine (pyproject.toml's mypy files) and every app.
  # shellcheck disable=SC2046 # one word per folder
  .venv/bin/mypy saga functions sagatools $(app_folders)
  ensure_debian_package shellcheck shellcheck "the shell scripts' lint"
  if command -v shellcheck >/dev/null 2>&1; then
    shellcheck -x build.sh runtest.sh deploy-stepfunc.sh attention.sh scripts/venv.sh scripts/tool.sh .ci/run
    echo "shellcheck: the shell scripts are clean"
  fi
}


lock_requirements() {
  # The -dev set first (everything), then each smaller set within it, so every lock holds the same versions.
  # The Lambda runtime's set (requirements.txt) is locked apart: it is what the local stage's functions run on.
  local compile=(.venv/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras --no-header
    --no-emit-index-url --no-emit-find-links --annotation-style=line)
  "${compile[@]}" -o requirements-dev.lock requirements-dev.txt
  local set
  for set in requirements requirements-durable requirements-tools requirements-local; do
    "${compile[@]}" -c requirements-dev.lock -o "$set.lock" "$set.txt"
  done
  echo "locked: requirements*.lock (install with ./build.sh test or ./runtest.sh, which install from them)"
}

node_tools() {
  # The pinned Serverless CLI (osls) and asl-validator, from package-lock.json.
  local stamp=node_modules/.installed-lock
  if ! command -v npm >/dev/null 2>&1; then
    echo "build.sh: Node.js and npm are needed here (the pinned Serverless CLI and asl-validator, package.json);" \
      "install Node.js 18 or newer, then run this again" >&2
    exit 2
  fi
  if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    echo "Installing the pinned node tools (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
  fi
}

package_templates() {
  # Offline, with no AWS credentials at all: what would be deployed must build without an account.
  local stage
  for stage in "$@"; do
    rm -rf "build/package/$stage"
    .venv/bin/python -m sagatools.deployed.durable_package "$stage" >/dev/null # a durable stage's function package
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
      AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null SLS_TELEMETRY_DISABLED=1 \
      npx --no-install osls package --stage "$stage" --region us-west-2 --package "build/package/$stage" >/dev/null
    echo "packaged stage $stage -> build/package/$stage"
  done
}

ensure_debian_package() {
  # COMMAND from Debian's PACKAGE, installed with apt-get when missing and this is root (said first; not with
  # BUILD_SYSTEM_PACKAGES=no); otherwise say what is skipped.
  local command="$1" package="$2" purpose="$3"
  command -v "$command" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 && [ "${BUILD_SYSTEM_PACKAGES:-yes}" != "no" ]; then
    echo "$command is missing: installing the Debian package $package with apt-get for $purpose" \
      "(BUILD_SYSTEM_PACKAGES=no skips it)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  else
    echo "$command is not installed: $purpose is skipped (as root, ./build.sh test installs it with apt-get)" >&2
  fi
}

check_templates() {
  # Each tool once for all its files (its start is most of its time); a finding names its file.
  local stage templates=() asl_paths=() asl
  for stage in "${PACKAGED_STAGES[@]}"; do
    templates+=("build/package/$stage/cloudformation-template-update-stack.json")
  done
  # W3005 (a DependsOn that a GetAtt already implies) is how the Serverless CLI writes every function.
  .venv/bin/cfn-lint --ignore-checks W3005 -- "${templates[@]}"
  for stage in "${PACKAGED_STAGES[@]}"; do echo "cfn-lint: stage $stage template clean"; done
  for asl in statemachine/*.asl.json; do asl_paths+=(--json-path "$asl"); done
  local found
  found=$(npx --no-install asl-validator "${asl_paths[@]}" 2>&1) || { echo "$found" >&2; exit 1; }
  # URI: the Resource fields are ${...} placeholders until deploy time.
  .venv/bin/statelint --ignore=URI statemachine/*.asl.json
  for asl in statemachine/*.asl.json; do echo "asl-validator and statelint: $asl valid"; done
}

use_local_endpoint() {
  # Every AWS client of the stage `local` (osls, boto3) talks to the local endpoint with the credentials its
  # start wrote (an AWS shared credentials file, 0600): it refuses any other.
  local url
  url=$(.venv/bin/python -m sagatools.deployed.local_commands url) || exit 2
  export AWS_ENDPOINT_URL="$url" AWS_SHARED_CREDENTIALS_FILE="$PWD/.runtest/local/credentials"
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN
  export AWS_CONFIG_FILE=/dev/null SLS_TELEMETRY_DISABLED=1
  export SLS_AWS_MONITORING_FREQUENCY=200 # osls polls the stack every 5 s by default; the endpoint answers at once
  unset AWS_PROFILE
}

prepare_stage() {
  # Sets STAGE_ARGS, stage, region, SLS_PROFILE and COORDINATOR for deploy/remove, after checking the credentials.
  [ $# -le 3 ] || usage
  STAGE_ARGS=("$@")
  if [ "${1:-}" = "local" ]; then
    ensure_venv requirements-local.txt
  else
    ensure_venv requirements-tools.txt
  fi
  # The stage's coordinator (serverless.yml params); deploying one the stage cannot run is refused before anything
  # starts.
  local deploying=()
  [ "$command" != "deploy" ] || deploying=(--deploy)
  COORDINATOR=$(.venv/bin/python -m sagatools.deployed.coordinator ${deploying[@]+"${deploying[@]}"} ${1:+"$1"}) ||
    exit $?
  if [ "${1:-}" = "local" ]; then
    [ "$command" != "deploy" ] || .venv/bin/python -m sagatools.deployed.local_commands start
    use_local_endpoint
  fi
  node_tools
  local chosen
  chosen=$(.venv/bin/python -m sagatools.deployed.stage_args --check-credentials "$@")
  read -r stage region profile <<<"$chosen"
  SLS_PROFILE=()
  [ "$profile" = "-" ] || [ "$stage" = "local" ] || SLS_PROFILE=(--aws-profile "$profile")
}

command="$1"
shift
case "$command" in
  test)
    ensure_venv requirements-dev.txt
    # The slow tier (pyproject.toml's marker: the local cloud end to end, the soak, the browser, another moto) is
    # left out of the default run, which CI runs and which stays within about 5 minutes on 2 cores.
    selected=(-m "not slow")
    if [ "${1:-}" = "all" ]; then
      selected=()
      shift
    fi
    if [ $# -ge 1 ] && [[ "$1" != -* ]]; then
      # One tier of tests/ on its own, while working (README "Tests while working"); extra arguments go to pytest.
      tier="$1"
      shift
      case "$tier" in
        # No network (pytest-socket), one process: a few seconds.
        unit)
          # shellcheck disable=SC2046 # one word per folder
          exec .venv/bin/python -m pytest -p no:xdist tests/unit $(app_tests) "$@"
          ;;
        embedded | deploy | e2e)
          [ "$tier" = "embedded" ] || node_tools # osls packages and deploys there
          exec .venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "tests/$tier" "$@"
          ;;
        *) echo "build.sh test: no tier $tier (unit, embedded, deploy, e2e; none for all of them)" >&2; exit 2 ;;
      esac
    fi
    node_tools
    lint
    .venv/bin/python -m sagatools.generate --check
    package_templates "${PACKAGED_STAGES[@]}"
    check_templates
    ensure_debian_package chromium chromium "the browser test"
    # Two workers (CI has 2 cores), whole modules each (their module-scoped stacks are built once), started
    # in the order tests/conftest.py gives (longest first), not xdist's most-tests-first.
    # shellcheck disable=SC2046 # one word per folder
    .venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder ${selected[@]+"${selected[@]}"} tests $(app_tests) "$@"
    # The engine's tests again, on a second app of the tests' own (tests/second_app.py), in a copy of the project
    # whose one setting names it: they name no app, so they pass unchanged.
    .venv/bin/python -m tests.second_app ${selected[@]+"${selected[@]}"}
    ;;
  generate)
    [ $# -le 1 ] || usage
    [ $# -eq 0 ] || [ "$1" = "--check" ] || usage
    ensure_venv requirements-tools.txt
    .venv/bin/python -m sagatools.generate "$@"
    ;;
  diagram)
    [ $# -eq 0 ] || usage
    ensure_venv requirements-tools.txt
    .venv/bin/python -m sagatools.view.diagram
    ;;
  screenshot)
    ensure_venv requirements-tools.txt
    ensure_debian_package chromium chromium "the browser test"
    rm -rf build/screenshot
    # The page's path comes from the run's own --json result (named after the file's saga id).
    page=$(./runtest.sh "$(app_dir)/samples/fail.json" --report build/screenshot --json 2>/dev/null |
      .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["report"])')
    .venv/bin/python -c 'import sys; from pathlib import Path; from sagatools.view.browser import screenshot; print(screenshot(Path(sys.argv[1]), Path("docs/rolled-back-saga.png"), 1300, 900))' "$page"
    ;;
  bench)
    ensure_venv requirements-dev.txt
    .venv/bin/python -m sagatools.bench
    ;;
  package)
    [ $# -le 1 ] || usage
    ensure_venv requirements-dev.txt
    node_tools
    if [ $# -eq 1 ]; then package_templates "$1"; else package_templates "${PACKAGED_STAGES[@]}"; fi
    ;;
  local)
    [ $# -eq 1 ] || usage
    ensure_venv requirements-local.txt >&2
    exec .venv/bin/python -m sagatools.deployed.local_commands "$1"
    ;;
  lint)
    ensure_venv requirements-dev.txt
    lint
    ;;
  lock)
    [ $# -eq 0 ] || usage
    ensure_venv requirements-dev.txt
    lock_requirements
    ;;
  deploy)
    prepare_stage "$@"
    echo "Deploying stage $stage to $region"
    LAYER=()
    if [ "$stage" != "local" ]; then
      # The Powertools release requirements.txt pins, as AWS publishes its layer (the local stage has none).
      layer_arn=$(.venv/bin/python -m sagatools.deployed.powertools_layer ${STAGE_ARGS[@]+"${STAGE_ARGS[@]}"})
      echo "Powertools layer: $layer_arn"
      LAYER=(--param="powertoolsLayer=$layer_arn")
    fi
    # The durable function's package (the engine, the app and the pinned durable execution SDK).
    [ "$COORDINATOR" != "durable" ] || .venv/bin/python -m sagatools.deployed.durable_package "$stage"
    # ${ARR[@]+"${ARR[@]}"}: an empty array is an unbound variable to bash 3.2 (macOS) under set -u.
    npx --no-install osls deploy --stage "$stage" --region "$region" ${SLS_PROFILE[@]+"${SLS_PROFILE[@]}"} \
      ${LAYER[@]+"${LAYER[@]}"}
    # A stage coordinated by the durable function has no state machine: its stack holds all it runs.
    [ "$COORDINATOR" = "durable" ] || ./deploy-stepfunc.sh ${STAGE_ARGS[@]+"${STAGE_ARGS[@]}"}
    .venv/bin/python -m sagatools.deployed.deploy describe ${STAGE_ARGS[@]+"${STAGE_ARGS[@]}"}
    ;;
  remove)
    # --force (anywhere): remove a protected stage (prod) without typing its name.
    FORCE=""
    POSITIONAL=()
    for arg in "$@"; do
      if [ "$arg" = "--force" ]; then FORCE="--force"; else POSITIONAL+=("$arg"); fi
    done
    prepare_stage ${POSITIONAL[@]+"${POSITIONAL[@]}"}
    .venv/bin/python -m sagatools.deployed.deploy prepare-remove ${STAGE_ARGS[@]+"${STAGE_ARGS[@]}"} $FORCE
    echo "Removing stage $stage from $region"
    .venv/bin/python -m sagatools.deployed.deploy remove-stepfunctions ${STAGE_ARGS[@]+"${STAGE_ARGS[@]}"}
    npx --no-install osls remove --stage "$stage" --region "$region" ${SLS_PROFILE[@]+"${SLS_PROFILE[@]}"}
    ;;
  *) usage ;;
esac
