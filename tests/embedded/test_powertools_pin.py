"""One Powertools version: requirements.txt pins it, the tests and the local runtime run it, and the deploy
asks AWS for that release's layer. A test here fails as soon as the two could drift apart."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest

from sagatools.deployed.powertools_layer import layer_arn, parameter_path, pinned_version
from sagatools.deployed.stage import Stage, StageError
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.emulation.environment import REGION
from sagatools.serverless_config import SERVERLESS_YML, load_service_config
from tests.helpers import ROOT


def test_the_tests_run_the_pinned_powertools():
    assert version("aws-lambda-powertools") == pinned_version()


def test_serverless_yml_names_no_release_of_its_own():
    # The only layer versions written in serverless.yml are the offline stand-ins (1), one per coordinator's
    # runtime, never a release.
    versions = re.findall(r"AWSLambdaPowertoolsPythonV3-([a-z0-9_]+)-arm64:(\d+)", SERVERLESS_YML.read_text())
    assert sorted(versions) == [("python312", "1"), ("python313", "1")]


def test_the_deploy_asks_for_the_pinned_release_on_the_functions_platform():
    config = load_service_config("dev")
    assert (config.runtime, config.architecture) == ("python3.12", "arm64")
    assert parameter_path(pinned_version(), config.architecture, config.runtime) == (
        f"/aws/service/powertools/python/arm64/python3.12/{pinned_version()}"
    )
    assert "sagatools.deployed.powertools_layer" in (ROOT / "build.sh").read_text()
    # A stage the durable function coordinates runs python3.13: it asks for that runtime's layer.
    durable = load_service_config("durable")
    assert parameter_path(pinned_version(), durable.architecture, durable.runtime) == (
        f"/aws/service/powertools/python/arm64/python3.13/{pinned_version()}"
    )


def test_a_release_aws_has_not_published_is_one_sentence_naming_its_path():
    with EmbeddedStack(stage="dev", create_state_machine=False), pytest.raises(StageError) as refused:
        layer_arn(Stage.choose("dev", REGION, None))
    assert f"/aws/service/powertools/python/arm64/python3.12/{pinned_version()}" in str(refused.value)
    assert "\n" not in str(refused.value)  # one sentence, not a traceback
