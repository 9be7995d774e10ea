"""The shell entry points as a user meets them: usage lines on bad arguments, one sentence without AWS."""

from __future__ import annotations

import os
import subprocess

import pytest

from saga.catalogue import REQUESTS
from saga.keys import ID_FIELD
from sagatools.working_tree import copy_working_tree
from tests.helpers import BASE_REQUEST, ROOT, SUCCESS_FILE

pytestmark = pytest.mark.slow  # each test runs a shell entry point end to end


def run(*command: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", **environment)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.parametrize(
    "command",
    [
        ["./build.sh"],
        ["./build.sh", "bogus"],
        ["./build.sh", "deploy", "a", "b", "c", "d"],
        ["./deploy-stepfunc.sh", "a", "b", "c", "d"],
        ["./deploy-stepfunc.sh", "--bogus"],
        ["./runtest.sh"],
        ["./attention.sh"],
        ["./attention.sh", "bogus"],
        ["./build.sh", "local", "restart"],
    ],
)
def test_bad_arguments_print_a_usage_line_and_exit_2(command):
    done = run(*command)
    assert done.returncode == 2
    assert any(line.startswith("usage: ") for line in done.stderr.splitlines())
    assert "Traceback" not in done.stderr


def test_attention_needs_a_stage_and_says_why():
    done = run("./attention.sh", "list")
    assert done.returncode == 2
    assert "--stage is required" in done.stderr
    assert "Traceback" not in done.stderr


def test_deploy_stepfunc_without_credentials_says_so_in_one_sentence():
    done = run("./deploy-stepfunc.sh", "dev", "eu-west-1")
    assert done.returncode == 1
    assert "Using stage dev, region eu-west-1, the default credentials chain." in done.stderr
    assert "No AWS credentials found" in done.stderr
    assert "Traceback" not in done.stderr


def test_deploy_stepfunc_takes_region_and_profile_from_the_environment():
    done = run("./deploy-stepfunc.sh", "--dry-run", AWS_REGION="ap-south-1", AWS_PROFILE="nobody")
    assert "Using stage dev, region ap-south-1, profile nobody." in done.stderr
    assert "AWS profile 'nobody' is not configured" in done.stderr
    assert done.returncode == 0  # a dry run renders with assumed ARNs when there is no stack to read
    assert f'"StartAt": "{REQUESTS[0].state}"' in done.stdout


PAGE = f"{BASE_REQUEST[ID_FIELD]}.html"  # the success sample's page


def runtest_in(folder, environment, project=ROOT):
    """`project`'s ./runtest.sh on a copy of the success request, run from `folder` with a path relative to it."""
    folder.mkdir(exist_ok=True)
    (folder / "request.json").write_text(SUCCESS_FILE.read_text())
    return subprocess.run(
        [str(project / "runtest.sh"), "request.json", "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environment,
    )


def test_runtest_runs_from_any_directory_with_paths_relative_to_it(tmp_path):
    # Without RUNTEST_DIR (which the tests set): the user's default
    done = runtest_in(tmp_path, {name: value for name, value in os.environ.items() if name != "RUNTEST_DIR"})
    assert done.returncode == 0, done.stderr
    assert '"outcome": "COMMITTED"' in done.stdout
    assert (tmp_path / ".runtest" / "reports" / PAGE).exists()


def test_runtest_dir_moves_what_a_run_writes_where_it_is_not_told(tmp_path):
    done = runtest_in(tmp_path, {**os.environ, "RUNTEST_DIR": str(tmp_path / "elsewhere")})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "elsewhere" / "reports" / PAGE).exists()
    assert (tmp_path / "elsewhere" / "handlers.log").exists()
    assert not (tmp_path / ".runtest").exists()


def test_runtest_loads_no_pydantic_plugin_an_installed_distribution_offers(tmp_path):
    # pydantic scans every distribution's entry points for plugins at its first model; the tools use none.
    site = tmp_path / "site"
    (site / "a_pydantic_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "a_pydantic_plugin-1.0.dist-info" / "METADATA").write_text("Name: a-pydantic-plugin\nVersion: 1.0\n")
    (site / "a_pydantic_plugin-1.0.dist-info" / "entry_points.txt").write_text("[pydantic]\nmarker = a_plugin:plugin\n")
    loaded = tmp_path / "loaded"
    (site / "a_plugin.py").write_text(f"import pathlib\npathlib.Path({str(loaded)!r}).touch()\nplugin = object()\n")
    environment = {**os.environ, "PYTHONPATH": str(site)}
    check = [str(ROOT / ".venv/bin/python"), "-c", "from pydantic.plugin._loader import get_plugins; get_plugins()"]
    subprocess.run(check, env=environment, check=True, timeout=60)
    assert loaded.exists()  # pydantic itself finds it
    loaded.unlink()
    done = runtest_in(tmp_path / "runs", environment)
    assert done.returncode == 0, done.stderr
    assert not loaded.exists()


def test_the_install_compiles_the_checkout_and_runtest_honours_pythondontwritebytecode(tmp_path):
    # Given a copy of the checkout whose modules the install step compiled (as pip compiles what it installs)
    copy = copy_working_tree(tmp_path / "project")
    subprocess.run(["bash", "-c", "source scripts/venv.sh && compile_checkout"], cwd=copy, check=True, timeout=120)
    compiled = {path.name.split(".")[0] for path in (copy / "saga").glob("__pycache__/*.pyc")}
    assert {"steps", "saga_log", "records"} <= compiled
    (results,) = (copy / "sagatools").glob("__pycache__/results.*.pyc")
    results.unlink()
    # When a saga runs where PYTHONDONTWRITEBYTECODE is set
    done = runtest_in(tmp_path / "runs", {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, project=copy)
    # Then it ran, and wrote no bytecode: the user's setting holds for the tools' own interpreter
    assert done.returncode == 0, done.stderr
    assert not results.exists()
