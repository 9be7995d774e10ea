"""Records the trip's execution histories the renderer's tests read (trip/tests/test_replays.py):
python -m trip.tests.record_histories, with the trip served (saga/definition.py: APP = "trip").

Each scenario runs once on the embedded stack; its GetExecutionHistory events and the runner's report are saved
as JSON under trip/tests/data/histories/, beside the state machine they ran on (booking-saga.asl.json), so the
renderer is tested on real histories of the trip whatever app the engine serves later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
DIRECTORY = HERE / "data" / "histories"
DEFINITION = DIRECTORY / "booking-saga.asl.json"
SUCCESS = HERE.parent / "samples" / "success.json"
# The trip's faults: a refusal at each step, a compensation retried, a compensation stuck.
SCENARIOS: dict[str, dict[str, str] | None] = {
    "success": None,
    "rollback-hotel": {"book_hotel": "fail"},
    "rollback-flight": {"book_flight": "fail"},
    "rollback-car": {"book_car": "fail"},
    "retried-compensation": {"book_car": "fail", "cancel_hotel": "transient:2"},
    "stuck-compensation": {"book_car": "fail", "cancel_flight": "fail"},
}


def request(name: str, simulate: dict[str, str] | None) -> dict[str, Any]:
    """The trip's success sample under the scenario's id, with its faults."""
    trip: dict[str, Any] = json.loads(SUCCESS.read_text())
    trip["trip_id"] = f"rec-{name}"
    if simulate is not None:
        trip["simulate"] = simulate
    return trip


def main() -> None:
    from saga.definition import APP

    if APP != "trip":
        raise SystemExit(f'the engine serves {APP}: name the trip in saga/definition.py (APP = "trip") to record it')
    # The tooling, once the served app is known to be the trip (its state machine, its handlers).
    from saga.models import parse_request
    from sagatools.asl import load_definition
    from sagatools.emulation.embedded import EmbeddedStack
    from sagatools.request_files import RequestFile
    from sagatools.results import SagaReader
    from sagatools.runtest.runner import SagaRunner
    from sagatools.view.html_page import history_json

    DIRECTORY.mkdir(parents=True, exist_ok=True)
    DEFINITION.write_text(json.dumps(load_definition(), indent=2) + "\n")
    with EmbeddedStack() as stack:
        runner = SagaRunner(
            stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.005, 60
        )
        for name, simulate in SCENARIOS.items():
            trip = RequestFile(f"{name}.json", parse_request(request(name, simulate)))
            (report,) = runner.run([trip])
            events = json.loads(history_json(runner.histories[report.execution_arn]))
            document = {"report": report.model_dump(mode="json"), "events": events}
            # Stack traces name files relative to the project: nothing recorded holds this machine's paths.
            text = json.dumps(document, indent=1).replace(json.dumps(f"{PROJECT}/")[1:-1], "")
            (DIRECTORY / f"{name}.json").write_text(text + "\n")
            print(f"recorded {name}: {report.outcome}")


if __name__ == "__main__":
    main()
