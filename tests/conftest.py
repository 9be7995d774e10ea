"""Fixtures: the embedded stack (moto started before any client exists), a saga runner."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    # Imported where a fixture needs them: the unit tier starts without moto's Step Functions.
    from sagatools.emulation.embedded import EmbeddedStack
    from sagatools.results import SagaReader, SagaResult

_OWNER = "_RUNTEST_TESTS_FOLDER_OWNER"  # the pid of the process that made the folder, and removes it


def pytest_configure(config: pytest.Config) -> None:
    # The run cache (sagatools/run_cache.py) of the tests is theirs, not the user's .runtest/cache, and so
    # are the pages and handler logs a run writes where it is not told (RUNTEST_DIR, sagatools/cli.py):
    # one folder for the whole session, its workers and the scripts they start (they inherit it).
    if "RUNTEST_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="runtest-tests-")
        os.environ["RUNTEST_CACHE_DIR"] = os.path.join(folder, "cache")
        os.environ["RUNTEST_DIR"] = os.path.join(folder, "output")
        # hypothesis keeps its example database and constants there too, not in the checkout's .hypothesis/.
        os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(folder, "hypothesis")
        os.environ[_OWNER] = str(os.getpid())


# The order modules start in, by how long they took (./build.sh test runs them whole, a module at a time
# per worker, in this order: --dist loadfile --no-loadscope-reorder). The single ~100 s end-to-end test
# goes first on one worker, with a module of many quick tests queued behind it so that worker takes no
# more until it is done; the other worker starts the next longest, and the rest follow longest first. Left
# to itself, xdist starts modules with the most tests first and the ~100 s one last, alone.
STARTING_ORDER = (
    "tests/e2e/test_local_cloud.py",
    "tests/e2e/test_local_faults.py",
    "tests/unit/test_request_model.py",
    "tests/e2e/test_runtest_hostile.py",
    "tests/embedded/test_soak.py",
    "tests/embedded/test_fault_matrix.py",
    "tests/embedded/test_saga.py",
    "tests/deploy/test_deploy.py",
    "tests/deploy/test_make_it_yours.py",
    "tests/embedded/test_resolution.py",
)


UNIT_TIER = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if UNIT_TIER in item.path.parents:
            # The unit tier never reaches the network (pytest-socket): moto in process, nothing else.
            item.add_marker(pytest.mark.disable_socket)

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.partition("::")[0]
        return STARTING_ORDER.index(module) if module in STARTING_ORDER else len(STARTING_ORDER)

    items.sort(key=rank)  # stable: the modules not named, and the tests within each, keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    # Every module is imported by now (moto's thousands of classes among them) and lives to the end: keep the
    # cyclic collector from walking it again at every collection, as the tools do (sagatools/cli.py).
    gc.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get(_OWNER) == str(os.getpid()):
        shutil.rmtree(os.path.dirname(os.environ["RUNTEST_CACHE_DIR"]), ignore_errors=True)


@pytest.fixture
def stack() -> Iterator[EmbeddedStack]:
    from sagatools.emulation.embedded import EmbeddedStack

    with EmbeddedStack() as embedded:
        yield embedded


@pytest.fixture
def run_sagas(stack: EmbeddedStack) -> Callable[..., list[SagaResult]]:
    """Runs requests concurrently through the real ASL on the embedded stack, as runtest.sh does."""
    from saga.keys import ID_FIELD
    from saga.models import parse_request
    from sagatools.request_files import RequestFile
    from sagatools.results import SagaReader
    from sagatools.runtest.runner import SagaRunner

    def run(*requests: dict[str, Any]) -> list[SagaResult]:
        runner = SagaRunner(
            stack.stepfunctions,
            stack.state_machine_arn,
            SagaReader(stack.settings, stack.dynamodb),
            poll_seconds=0.005,
            timeout_seconds=120,
        )
        return runner.run([RequestFile(f"{r[ID_FIELD]}.json", parse_request(r)) for r in requests])

    return run


@pytest.fixture
def run_saga(run_sagas: Callable[..., list[SagaResult]]) -> Callable[[dict[str, Any]], SagaResult]:
    return lambda request: run_sagas(request)[0]


@pytest.fixture
def reader(stack: EmbeddedStack) -> SagaReader:
    from sagatools.results import SagaReader

    return SagaReader(stack.settings, stack.dynamodb)
