"""The bench's sagas, shared by its measurements (bench.py) and its cost per coordinator (bench_coordinators.py): the
app's success sample under a new id, with the faults a scenario simulates."""

from __future__ import annotations

import copy
import json
from typing import Any

from saga.catalogue import COMPENSATIONS, REQUESTS
from saga.keys import ID_FIELD
from saga.models import parse_request
from sagatools.bench_aws import rollback_scenario
from sagatools.project import app_folder
from sagatools.request_files import RequestFile

BASE_REQUEST = json.loads((app_folder() / "samples" / "success.json").read_text(encoding="utf-8"))
# A compensation stuck behind a refusal at the last step: the last request fails, and the compensation of the step
# before it (or of the only one) keeps failing.
_LAST, _STUCK = REQUESTS[-1], COMPENSATIONS[min(1, len(COMPENSATIONS) - 1)]
STUCK_SCENARIO = f"stuck compensation ({_LAST.resource} fails, {_STUCK.name} stuck)"
STUCK_FAULTS = {_LAST.name: "fail", _STUCK.name: "fail"}
ROLLBACK_AT_LAST = rollback_scenario(_LAST.resource)


def request(saga_id: str, simulate: dict[str, str] | None, **fields: Any) -> RequestFile:
    """The success sample as saga `saga_id`, with `simulate` and any other top-level `fields` (recovery)."""
    data = copy.deepcopy(BASE_REQUEST)
    data.update(fields)
    data[ID_FIELD] = saga_id
    if simulate:
        data["simulate"] = simulate
    return RequestFile(f"{saga_id}.json", parse_request(data))
