"""Every step through its handler, on plain moto DynamoDB: the request and the compensation of each resource."""

from __future__ import annotations

import pytest

from saga.definition import SAGA
from saga.errors import (
    AlreadyCompensated,
    CompensationFailed,
    CrashAfterWrite,
    DataAccessError,
    InvalidRequest,
    StepRefused,
    TransientProviderError,
)
from saga.models import parse_step_invocation
from saga.saga_log import LogEntry, LogEvent
from tests.helpers import RESOURCES, book_step, cancel_step, saga_request

pytestmark = pytest.mark.parametrize("resource", RESOURCES)


def log_events(reader, saga_id: str) -> list[tuple[str, str, int]]:
    return [(entry.step, entry.event.value, entry.attempt) for entry in reader.log(saga_id)]


def test_book_confirms_and_logs_start_and_end(resource, invoke_step, reader):
    # Given a new saga / When the resource's request runs
    result = invoke_step(book_step(resource), saga_request("t-book"))
    # Then it is CONFIRMED and the log holds START then END of attempt 1
    assert result["status"] == "CONFIRMED"
    assert result["already_done"] is False
    assert reader.records("t-book")[resource] == "CONFIRMED"
    assert log_events(reader, "t-book") == [(book_step(resource), "START", 1), (book_step(resource), "END", 1)]


def test_book_twice_returns_the_existing_booking(resource, invoke_step, reader):
    first = invoke_step(book_step(resource), saga_request("t-twice"))
    second = invoke_step(book_step(resource), saga_request("t-twice"), retry_count=1)
    assert second["already_done"] is True
    assert second["reference"] == first["reference"]
    assert reader.records("t-twice")[resource] == "CONFIRMED"
    assert [event for _, event, _ in log_events(reader, "t-twice")] == ["START", "END", "START", "END"]


def test_cancel_twice_is_idempotent(resource, invoke_step, reader):
    invoke_step(book_step(resource), saga_request("t-cancel2"))
    first = invoke_step(cancel_step(resource), saga_request("t-cancel2"))
    second = invoke_step(cancel_step(resource), saga_request("t-cancel2"), retry_count=1)
    assert (first["already_done"], second["already_done"]) == (False, True)
    assert reader.records("t-cancel2")[resource] == "CANCELLED"


def test_cancel_before_book_prevents_late_booking(resource, invoke_step, reader):
    # Given a cancel that arrives before its booking: it leaves a CANCELLED tombstone
    invoke_step(cancel_step(resource), saga_request("t-late"))
    assert reader.records("t-late")[resource] == "CANCELLED"
    # When the late request arrives / Then it is refused, in the app's words, and the record stays CANCELLED
    with pytest.raises(AlreadyCompensated) as refused:
        invoke_step(book_step(resource), saga_request("t-late"))
    assert type(refused.value).__name__ == SAGA.errors.already_compensated
    assert reader.records("t-late")[resource] == "CANCELLED"
    assert log_events(reader, "t-late")[-1] == (book_step(resource), "FAILED", 1)


def test_book_after_cancel_of_a_booking_stays_cancelled(resource, invoke_step, reader):
    invoke_step(book_step(resource), saga_request("t-replay"))
    invoke_step(cancel_step(resource), saga_request("t-replay"))
    with pytest.raises(AlreadyCompensated):
        invoke_step(book_step(resource), saga_request("t-replay"), retry_count=1)
    assert reader.records("t-replay")[resource] == "CANCELLED"


def test_crash_after_write_commits_the_booking_and_its_end(resource, invoke_step, reader):
    request = saga_request("t-crash", simulate={book_step(resource): "crash_after_write"})
    with pytest.raises(CrashAfterWrite):
        invoke_step(book_step(resource), request)
    assert reader.records("t-crash")[resource] == "CONFIRMED"
    assert log_events(reader, "t-crash") == [(book_step(resource), "START", 1), (book_step(resource), "END", 1)]


def test_refused_booking_writes_no_booking_but_logs_the_attempt(resource, invoke_step, reader):
    request = saga_request("t-refused", simulate={book_step(resource): "fail"})
    with pytest.raises(StepRefused) as refused:
        invoke_step(book_step(resource), request)
    assert type(refused.value).__name__ == SAGA.errors.refused
    assert reader.records("t-refused")[resource] is None
    assert log_events(reader, "t-refused") == [(book_step(resource), "START", 1), (book_step(resource), "FAILED", 1)]


def test_transient_fault_fails_the_first_attempts_only(resource, invoke_step, reader):
    request = saga_request("t-transient", simulate={cancel_step(resource): "transient:2"})
    for retry_count in (0, 1):
        with pytest.raises(TransientProviderError):
            invoke_step(cancel_step(resource), request, retry_count=retry_count)
    assert invoke_step(cancel_step(resource), request, retry_count=2)["status"] == "CANCELLED"
    assert [(e, a) for _, e, a in log_events(reader, "t-transient")] == [
        ("START", 1),
        ("FAILED", 1),
        ("START", 2),
        ("FAILED", 2),
        ("START", 3),
        ("END", 3),
    ]


def test_stuck_cancel_never_succeeds(resource, invoke_step, reader):
    request = saga_request("t-stuck", simulate={cancel_step(resource): "fail"})
    for retry_count in range(7):
        with pytest.raises(CompensationFailed) as failed:
            invoke_step(cancel_step(resource), request, retry_count=retry_count)
        assert type(failed.value).__name__ == SAGA.errors.compensation_failed
    assert reader.records("t-stuck")[resource] is None


def test_invalid_request_is_refused_before_any_write(resource, invoke_step, settings, dynamodb):
    # Given a request whose first section breaks a rule (every step validates the whole request)
    request = saga_request("t-invalid")
    first = SAGA.steps[0].resource
    request[first]["unexpected"] = 1
    with pytest.raises(InvalidRequest, match=rf"{first}\.unexpected") as refused:
        invoke_step(book_step(resource), request)
    assert type(refused.value).__name__ == SAGA.errors.invalid_request
    for table in (settings.saga_log_table, settings.records_table(resource)):
        assert dynamodb.scan(TableName=table)["Count"] == 0


def test_log_end_is_written_with_its_booking_in_one_transaction(resource, reader):
    # Given a booking whose log END cannot be written (its key is taken): the transaction is cancelled
    invocation = parse_step_invocation({"request": saga_request("t-atomic"), "retry_count": 0})
    end = LogEntry(
        saga_id="t-atomic", step=book_step(resource), event=LogEvent.END, at="2026-01-01T00:00:00.000000Z", attempt=1
    )
    reader.saga_log.append(end)
    repository = next(r for r in reader.repositories if r.resource == resource)
    # When the booking is committed together with that same END / Then neither is written
    with pytest.raises(DataAccessError):
        repository.confirm("t-atomic", invocation.request.details_for(resource), end)
    assert reader.records("t-atomic")[resource] is None
