"""Records the execution histories the renderer's tests read: python -m tests.record_histories.

Each scenario runs once on the embedded stack; its GetExecutionHistory events and the runner's report
are saved as JSON under tests/data/histories/, so the renderer is tested on real histories.
"""

from __future__ import annotations

import json
from pathlib import Path

from saga.models import parse_request
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.results import SagaReader
from sagatools.runtest.runner import SagaRunner
from sagatools.request_files import RequestFile
from sagatools.view.html_page import history_json
from tests.helpers import saga_request

DIRECTORY = Path(__file__).parent / "data" / "histories"
SCENARIOS = {
    "success": None,
    "rollback-hotel": {"book_hotel": "fail"},
    "rollback-flight": {"book_flight": "fail"},
    "rollback-car": {"book_car": "fail"},
    "retried-compensation": {"book_car": "fail", "cancel_hotel": "transient:2"},
    "stuck-compensation": {"book_car": "fail", "cancel_flight": "fail"},
}


def main() -> None:
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    with EmbeddedStack() as stack:
        runner = SagaRunner(
            stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.005, 60
        )
        for name, simulate in SCENARIOS.items():
            trip = RequestFile(f"{name}.json", parse_request(saga_request(f"rec-{name}", simulate=simulate)))
            (report,) = runner.run([trip])
            events = json.loads(history_json(runner.histories[report.execution_arn]))
            document = {"report": report.model_dump(mode="json"), "events": events}
            (DIRECTORY / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n")
            print(f"recorded {name}: {report.outcome}")


if __name__ == "__main__":
    main()
