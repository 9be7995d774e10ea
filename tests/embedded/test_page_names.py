"""Report pages never share a name: a saga whose id reads like another saga's resolution keeps its own page,
and `attention.sh show` links each execution to its own."""

from __future__ import annotations

import json
import time

from saga.catalogue import COMPENSATIONS
from saga.keys import ID_FIELD
from sagatools.asl import RESOLVE_ASL_PATH, load_definition
from sagatools.attention.stage_view import resolution_name
from sagatools.cli import report_dir
from sagatools.emulation.environment import EMBEDDED_STAGE
from sagatools.executions import ExecutionWatcher
from sagatools.results import Outcome, build_report, resolution_outcome_of
from sagatools.view.html_page import write_page
from tests.helpers import LAST, book_step, embedded_stage_view, saga_request


def test_a_saga_named_like_another_sagas_resolution_keeps_its_own_page(stack, run_saga, reader, monkeypatch, tmp_path):
    # Given saga X, stuck and then resolved by X-resolve-1, and another saga whose id is X-resolve-1
    monkeypatch.setenv("RUNTEST_DIR", str(tmp_path))  # where runtest.sh and attention.sh put pages unless told
    request = saga_request("t-named", simulate={book_step(LAST): "fail", COMPENSATIONS[0].name: "fail"})
    assert run_saga(request).outcome is Outcome.NEEDS_ATTENTION
    name = resolution_name(request[ID_FIELD], 1)
    again = {k: v for k, v in request.items() if k != "simulate"}
    document = json.dumps({"request": again, "requested_by": "test"})
    machine = stack.resolution_state_machine_arn
    arn = stack.stepfunctions.start_execution(stateMachineArn=machine, name=name, input=document)["executionArn"]
    watcher = ExecutionWatcher(stack.stepfunctions, machine, 0.005)
    description = watcher.wait({arn: request[ID_FIELD]}, time.monotonic() + 60)[arn]
    resolution = build_report(name, request[ID_FIELD], description, [], reader, False, resolution_outcome_of)
    namesake = run_saga(saga_request(name))
    assert namesake.outcome is Outcome.COMMITTED
    # When runtest.sh writes the namesake's page and attention.sh the resolution's, into the same folder
    saga_history = ExecutionWatcher(stack.stepfunctions, stack.state_machine_arn, 0.005).history(namesake.execution_arn)
    saga_page = write_page(report_dir(), load_definition(), saga_history, namesake)
    resolution_page = write_page(
        report_dir(),
        load_definition(RESOLVE_ASL_PATH),
        watcher.history(arn),
        resolution.model_copy(update={"saga_id": name}),
        "Resolution",
    )
    # Then each has a page of its own, and `attention.sh show X` links X's resolution to the resolution's
    assert saga_page != resolution_page
    assert f"<h1>Saga {name} " in saga_page.read_text(encoding="utf-8")
    assert f"<h1>Resolution {name} " in resolution_page.read_text(encoding="utf-8")
    view = embedded_stage_view(stack, stage_name=EMBEDDED_STAGE)
    links = {execution.name: execution.report for execution in view.saga(request[ID_FIELD]).executions}
    assert links[name] == str(resolution_page)
