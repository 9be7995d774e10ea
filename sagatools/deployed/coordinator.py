"""Which coordinator a stage deploys (serverless.yml: params, coordinator), checked before anything is deployed.

    python -m sagatools.deployed.coordinator [--deploy] [STAGE]    prints stepfunctions or durable

The local cloud (moto) cannot run a Lambda durable function: deploying a local stage whose coordinator is the
durable function is refused here, in one sentence (exit 2), before its endpoint starts or anything is deployed.
"""

from __future__ import annotations

import sys

from sagatools.deployed.local_stages import LOCAL_STAGE
from sagatools.deployed.stage import DEFAULT_STAGE
from sagatools.exit_codes import EXIT_OK, EXIT_USAGE
from sagatools.serverless_config import DURABLE, load_service_config


def refusal(stage: str, coordinator: str) -> str | None:
    """Why `stage` cannot be deployed with `coordinator`, in one sentence, or None."""
    if stage == LOCAL_STAGE and coordinator == DURABLE:
        return (
            f"build.sh: the local cloud cannot run a Lambda durable function, so stage {stage} cannot use the durable"
            " coordinator (serverless.yml params); deploy it to AWS or run it with ./runtest.sh --coordinator durable."
        )
    return None


def main(argv: list[str]) -> int:
    deploying = argv[:1] == ["--deploy"]
    stages = argv[1:] if deploying else argv
    stage = stages[0] if stages else DEFAULT_STAGE
    try:
        coordinator = load_service_config(stage).coordinator
    except ValueError as error:
        print(f"build.sh: {error}", file=sys.stderr)
        return EXIT_USAGE
    refused = refusal(stage, coordinator) if deploying else None
    if refused:
        print(refused, file=sys.stderr)
        return EXIT_USAGE
    print(coordinator)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
