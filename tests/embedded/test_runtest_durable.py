"""runtest.sh --coordinator durable: the same files, output, `--json` keys (and the durable operations), exit codes and
pages as the state machine's runs (on a deployed stage: tests/deploy/test_durable_stage.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from saga.catalogue import REQUESTS
from saga.keys import ID_FIELD
from sagatools.runtest.cli import main
from tests.helpers import LAST, book_step, cancel_step, rollback_states, saga_request


def run_main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, request: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(request))
    return str(path)


def test_durable_runs_give_the_same_results_exit_codes_and_pages(tmp_path):
    stuck = {book_step(LAST): "fail", cancel_step(LAST): "fail"}
    files = [
        write(tmp_path, "ok.json", saga_request("d-ok")),
        write(tmp_path, "fail.json", saga_request("d-fail", simulate={book_step(LAST): "fail"})),
        write(tmp_path, "stuck.json", saga_request("d-stuck", simulate=stuck)),
    ]
    reports = tmp_path / "reports"
    code, out, _ = run_main(*files, "--coordinator", "durable", "--json", "--report", str(reports))
    durable = json.loads(out)
    code_machine, out_machine, _ = run_main(*files, "--json", "--report", str(tmp_path / "machine"))
    machine = json.loads(out_machine)

    assert code == code_machine == 1  # a saga needs attention
    assert [r["outcome"] for r in durable] == ["COMMITTED", "ROLLED_BACK", "NEEDS_ATTENTION"]
    for by_function, by_machine in zip(durable, machine, strict=True):
        assert by_function.keys() == by_machine.keys() | {"durable_operations"}
        assert by_function[ID_FIELD] == by_machine[ID_FIELD]
        assert by_function["outcome"] == by_machine["outcome"]
        assert Path(by_function["report"]).is_file()
    assert durable[1]["states"] == rollback_states(LAST)
    assert durable[0]["durable_operations"] == 1 + len(REQUESTS)  # the start, and one per step


def test_a_repeated_saga_reports_its_one_execution(tmp_path):
    path = write(tmp_path, "ok.json", saga_request("d-twice"))
    code, out, _ = run_main(path, path, "--coordinator", "durable", "--json", "--report", str(tmp_path))
    first, second = json.loads(out)
    assert code == 0
    assert first["execution_arn"] == second["execution_arn"]
    assert (first["reused_execution"], second["reused_execution"]) == (False, True)


def test_a_coordinator_runtest_does_not_know_is_refused(tmp_path):
    path = write(tmp_path, "ok.json", saga_request("d-unknown"))
    assert run_main(path, "--coordinator", "airflow")[:2] == (2, "")
