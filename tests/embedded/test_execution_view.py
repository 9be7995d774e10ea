"""The execution report: histories of the served app's saga, run on the embedded stack, coloured right, the
page in real headless Chromium, and the README's diagram kept equal to the ASL.

The histories are made here, one saga per scenario, so the view is tested on whichever app is served."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saga.catalogue import COMPENSATIONS, REQUESTS, RESOURCES, compensation_of, request_of
from saga.definition import SAGA
from saga.models import parse_request
from sagatools.asl import MACHINES, load_definition
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.request_files import RequestFile
from sagatools.results import SagaReader, SagaResult
from sagatools.runtest.runner import SagaRunner
from sagatools.view.browser import rendered_dom, screenshot
from sagatools.view.diagram import README, diagram_in_readme, readme_block
from sagatools.view.graph import COLOURS, Shown, state_views
from sagatools.view.html_page import history_json, page_html, write_page
from tests.helpers import LAST, ROOT, browser_or_skip, rollback_states, saga_request

DEFINITION = load_definition()
OK, RETRIED, CAUGHT, FAILED, NOT = (Shown.SUCCEEDED, Shown.RETRIED, Shown.CAUGHT, Shown.FAILED, Shown.NOT_ENTERED)
FIRST = RESOURCES[0]
# The compensation left stuck: one that has another to run after it (the second-last to run), where there is one.
STUCK = COMPENSATIONS[max(len(COMPENSATIONS) - 2, 0)]
AFTER_STUCK = COMPENSATIONS[COMPENSATIONS.index(STUCK) + 1 :]
RETRIED_TIMES = 2

# Each scenario's faults: success, a refusal at each step, a compensation retried, a compensation stuck.
SCENARIOS: dict[str, dict[str, str] | None] = {
    "success": None,
    **{f"rollback-{resource}": {request_of(resource).name: "fail"} for resource in RESOURCES},
    "retried-compensation": {request_of(LAST).name: "fail", compensation_of(FIRST).name: f"transient:{RETRIED_TIMES}"},
    "stuck-compensation": {request_of(LAST).name: "fail", STUCK.name: "fail"},
}


def rollback_at(resource: str) -> dict[str, Shown]:
    """A refusal at `resource`: the requests before it done, it caught, its compensation and every earlier
    one done, RolledBack failed; nothing later entered."""
    failed_at = RESOURCES.index(resource)
    shown: dict[str, Shown] = {SAGA.done_state: NOT, "NeedsAttention": NOT, "RolledBack": FAILED}
    for index, step in enumerate(REQUESTS):
        shown[step.state] = OK if index < failed_at else CAUGHT if index == failed_at else NOT
        shown[compensation_of(step.resource).state] = OK if index <= failed_at else NOT
    return shown


def stuck() -> dict[str, Shown]:
    """A compensation stuck in a rollback at the last step: those before it done, it caught and flagged, the ones
    after it run in their after-stuck states, and the saga needs attention."""
    shown = {STUCK.state: CAUGHT, STUCK.stuck_state: OK, "NeedsAttention": FAILED, "RolledBack": NOT}
    for step in COMPENSATIONS[: COMPENSATIONS.index(STUCK)]:
        shown[step.state] = OK
    for step in AFTER_STUCK:
        shown[step.after_stuck_state] = OK
        shown[step.state] = NOT
    if STUCK.after_stuck_state:
        shown[STUCK.after_stuck_state] = NOT
    return shown


EXPECTED: dict[str, dict[str, Shown]] = {
    "success": {
        **{step.state: OK for step in REQUESTS},
        SAGA.done_state: OK,
        **{step.state: NOT for step in COMPENSATIONS},
        "RolledBack": NOT,
    },
    **{f"rollback-{resource}": rollback_at(resource) for resource in RESOURCES},
    "retried-compensation": {
        request_of(LAST).state: CAUGHT,
        compensation_of(FIRST).state: RETRIED,
        "RolledBack": FAILED,
    },
    "stuck-compensation": stuck(),
}


@pytest.fixture(scope="module")
def histories() -> Iterator[dict[str, tuple[list[dict[str, Any]], SagaResult]]]:
    """Every scenario run once: its history (as a page is made from it) and its report, by scenario."""
    with EmbeddedStack() as stack:
        runner = SagaRunner(
            stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.005, 120
        )
        requests = []
        for name, simulate in SCENARIOS.items():
            request = saga_request(f"view-{name}", simulate=simulate)
            requests.append(RequestFile(f"{name}.json", parse_request(request)))
        reports = runner.run(requests)
        yield {
            name: (json.loads(history_json(runner.histories[report.execution_arn])), report)
            for name, report in zip(SCENARIOS, reports, strict=True)
        }


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_history_colours_each_state_by_what_happened(histories, scenario):
    events, report = histories[scenario]
    views = state_views(DEFINITION, events)
    assert set(views) == set(DEFINITION["States"])
    assert {name: views[name].shown for name in EXPECTED[scenario]} == EXPECTED[scenario]
    entered = {name for name, view in views.items() if view.shown is not NOT}
    assert entered == set(report.states)


def test_retries_are_counted_per_state(histories):
    views = state_views(DEFINITION, histories["retried-compensation"][0])
    assert views[compensation_of(FIRST).state].retries == RETRIED_TIMES
    stuck = state_views(DEFINITION, histories["stuck-compensation"][0])[STUCK.state]
    assert (stuck.retries, stuck.error) == (STUCK.retry.max_attempts, SAGA.errors.compensation_failed)


def test_page_draws_every_state_and_highlights_the_path_taken(histories):
    events, report = histories[f"rollback-{LAST}"]
    page = page_html(DEFINITION, events, report)
    assert set(re.findall(r'data-state="(\w+)"', page)) == set(DEFINITION["States"])
    taken = re.findall(r'class="edge [a-z]+ taken" data-from="(\w+)" data-to="(\w+)"', page)
    # each request to the next, the last one's refusal to its compensation, each compensation to the one before
    path = rollback_states(LAST)
    assert taken == list(itertools.pairwise(path))
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.slow
def test_report_in_headless_chromium_shows_the_failed_and_compensated_states(histories, tmp_path):
    browser_or_skip()
    events, report = histories[f"rollback-{LAST}"]
    page = write_page(tmp_path, DEFINITION, events, report)
    dom = rendered_dom(page)
    # the rendered DOM holds the graph: every state of the ASL, each with its status and colour
    drawn = dict(re.findall(r'<g class="state [a-z-]+" data-state="(\w+)" data-status="([a-z-]+)"', dom))
    assert set(drawn) == set(DEFINITION["States"]), "the page is blank or lost states"
    refused, undone = request_of(LAST).state, compensation_of(LAST).state
    assert drawn[refused] == "caught"
    assert [drawn[step.state] for step in COMPENSATIONS] == ["succeeded"] * len(COMPENSATIONS)
    assert drawn["RolledBack"] == "failed"
    assert drawn[SAGA.done_state] == "not-entered"
    found = re.search(rf'data-state="{refused}".*?<rect [^>]*fill="(#\w+)" stroke="(#\w+)"', dom, re.DOTALL)
    assert (found.group(2), found.group(1)) == COLOURS[Shown.CAUGHT]
    found = re.search(rf'data-state="{undone}".*?<rect [^>]*fill="(#\w+)" stroke="(#\w+)"', dom, re.DOTALL)
    assert (found.group(2), found.group(1)) == COLOURS[Shown.SUCCEEDED]
    assert "ROLLED_BACK" in dom
    assert "SagaRolledBack" in dom
    # and a picture of it, in the test's own folder
    png = screenshot(page, tmp_path / "rolled-back-saga.png", 1300, 900)
    assert png.stat().st_size > 30_000, "the screenshot is (nearly) blank"


@pytest.mark.parametrize("machine", MACHINES, ids=[machine.suffix for machine in MACHINES])
def test_readme_diagram_matches_the_asl(machine):
    current = diagram_in_readme(README.read_text(), machine)
    assert current is not None, "README.md lost a generated diagram block"
    assert current == readme_block(load_definition(machine.asl_path), machine), (
        "README diagram is stale: run ./build.sh generate"
    )


def test_readme_screenshot_exists():
    assert Path(ROOT / "docs" / "rolled-back-saga.png").stat().st_size > 30_000
