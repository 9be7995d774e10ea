"""The Powertools layer a stage deploys: the release requirements.txt pins, its ARN from AWS's public SSM
parameter, so the Powertools on Lambda is the Powertools the tests run.

    python -m sagatools.deployed.powertools_layer [STAGE [REGION [PROFILE]]]    prints the layer ARN

AWS publishes each release's ARN at /aws/service/powertools/python/<architecture>/<runtime>/<version>;
it has skipped some releases, so a missing one is one sentence naming the path, never another layer.
"""

from __future__ import annotations

import re
import sys

from botocore.exceptions import BotoCoreError, ClientError

from sagatools.deployed.stage import Stage, StageError, explain
from sagatools.project import PROJECT_ROOT
from sagatools.serverless_config import load_service_config

REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
_PIN = re.compile(r"^aws-lambda-powertools(?:\[[^\]]*\])?==([0-9][0-9A-Za-z.]*)\s*(?:#.*)?$", re.MULTILINE)


def pinned_version() -> str:
    """The Powertools version requirements.txt pins (exactly, with ==): the one source of it."""
    found = _PIN.findall(REQUIREMENTS.read_text(encoding="utf-8"))
    if len(found) != 1:
        raise StageError("requirements.txt must pin aws-lambda-powertools exactly once, with ==.")
    version: str = found[0]
    return version


def parameter_path(version: str, architecture: str, runtime: str) -> str:
    return f"/aws/service/powertools/python/{architecture}/{runtime}/{version}"


def layer_arn(stage: Stage) -> str:
    config = load_service_config(stage.name)
    path = parameter_path(pinned_version(), config.architecture, config.runtime)
    try:
        value: str = stage.client("ssm").get_parameter(Name=path)["Parameter"]["Value"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterNotFound":
            raise StageError(
                f"AWS publishes no Powertools layer at {path} in {stage.region}: pin a released version in "
                "requirements.txt."
            ) from None
        raise StageError(explain(error, stage)) from None
    except BotoCoreError as error:
        raise StageError(explain(error, stage)) from None
    return value


if __name__ == "__main__":
    try:
        chosen = Stage.choose(*([*sys.argv[1:], None, None, None])[:3])
        print(layer_arn(chosen))
    except StageError as error:
        sys.exit(f"build.sh: {error}")
