"""A stage chooses its coordinator with one setting (serverless.yml params: coordinator); the local cloud, which
cannot run a durable function, refuses the durable one in one sentence before anything starts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sagatools.deployed.local_stages import LOCAL_STAGE
from sagatools.serverless_config import DURABLE, load_service_config
from sagatools.working_tree import copy_working_tree

pytestmark = pytest.mark.slow  # runs ./build.sh in a copy of the project

LOCAL_PARAMS = f"  {LOCAL_STAGE}:\n"


@pytest.fixture(scope="module")
def durable_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project whose local stage says: the durable function coordinates me."""
    copy = copy_working_tree(tmp_path_factory.mktemp("durable-local") / "project")
    template = copy / "serverless.yml"
    text = template.read_text()
    assert text.count(LOCAL_PARAMS) == 1
    template.write_text(text.replace(LOCAL_PARAMS, f"{LOCAL_PARAMS}    coordinator: {DURABLE}\n"))
    assert load_service_config(LOCAL_STAGE, template).coordinator == DURABLE  # the one setting took
    return copy


def test_deploying_the_durable_coordinator_to_the_local_cloud_is_refused_in_one_sentence(durable_local):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        ["./build.sh", "deploy", LOCAL_STAGE],
        cwd=durable_local,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr  # as the other usage errors
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "local cloud cannot run a Lambda durable function" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    # Refused before anything started: no endpoint, no stage, no package.
    assert not (durable_local / ".runtest" / "local").exists()
    assert not (durable_local / ".serverless").exists()
    assert "Deploying" not in done.stdout
