"""Which coordinator a stage has (serverless.yml params: coordinator), what that gives its functions, and the
durable function's package."""

from __future__ import annotations

import zipfile

from saga.catalogue import STEPS
from sagatools.deployed.coordinator import refusal
from sagatools.deployed.durable_package import SDK, write_package
from sagatools.generate.template import DURABLE_HANDLER, durable_function
from sagatools.serverless_config import DURABLE, STEPFUNCTIONS, load_service_config


def test_the_state_machines_coordinate_every_stage_but_the_one_that_chose_the_durable_function():
    for stage in ("dev", "prod", "local", "any-other"):
        config = load_service_config(stage)
        assert config.coordinator == STEPFUNCTIONS, stage
        assert sorted(config.functions) == sorted(step.function for step in STEPS), stage
        assert config.runtime == "python3.12", stage
    durable = load_service_config("durable")
    assert durable.coordinator == DURABLE
    assert list(durable.functions) == [durable_function()]
    assert durable.functions[durable_function()].handler == DURABLE_HANDLER
    assert durable.runtime == "python3.13"
    # the same tables as a stage on the state machines
    assert sorted(durable.tables) == sorted(load_service_config("dev").tables)


def test_only_the_local_cloud_refuses_the_durable_coordinator_and_says_why_in_one_sentence():
    refused = refusal("local", DURABLE)
    assert refused is not None
    assert "cannot run a Lambda durable function" in refused
    assert "\n" not in refused
    assert refused.count(". ") == 0  # one sentence
    assert refused.endswith(".")
    assert refusal("local", STEPFUNCTIONS) is None
    assert refusal("dev", DURABLE) is None


def test_the_durable_package_is_the_same_bytes_each_time_and_holds_the_sdk(tmp_path):
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    write_package(first)
    write_package(second)
    # osls publishes a new version when the package's hash changes: an unchanged project must not look changed
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
    assert f"{SDK.replace('-', '_')}/__init__.py" in names
    assert f"{DURABLE_HANDLER.rpartition('.')[0]}.py" in names
    assert names == sorted(names)
    assert not list(tmp_path.glob(".durable-*"))  # no staging file left behind
