"""RecordTable, SagaLog and Settings on plain moto DynamoDB: the invariants are DynamoDB conditions."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from saga.catalogue import RESOURCES, ResourceNames, compensation_of
from saga.dynamodb_errors import data_access_error
from saga.errors import DataAccessError, TransientDataAccessError
from saga.keys import ID_FIELD
from saga.models import RecordStatus
from saga.records import RecordTable, RecordUnchanged, get_records
from saga.saga_log import LogEntry, LogEvent, SagaLog
from saga.settings import MisconfiguredFunction, Settings
from tests.helpers import BASE_REQUEST, LAST, book_step, cancel_step

# The first step's records, what its request stores, and the names of its request and compensation.
FIRST = RESOURCES[0]
DETAILS = BASE_REQUEST[FIRST]
BOOK, CANCEL = book_step(FIRST), cancel_step(FIRST)


def entry(step: str, event: LogEvent, at: str, attempt: int = 1, saga_id: str = "t-1") -> LogEntry:
    return LogEntry(saga_id=saga_id, step=step, event=event, at=at, attempt=attempt)


@pytest.fixture
def saga_log(settings, dynamodb) -> SagaLog:
    return SagaLog(settings.saga_log_table, dynamodb)


@pytest.fixture
def records(settings, dynamodb, saga_log) -> RecordTable:
    return RecordTable(FIRST, settings.records_table(FIRST), saga_log, dynamodb)


def test_confirm_writes_the_booking_and_its_log_end_together(records, saga_log):
    booking = records.confirm("t-1", DETAILS, entry(BOOK, LogEvent.END, "2026-01-01T00:00:01Z"))
    assert records.get("t-1") == booking
    assert booking.status is RecordStatus.CONFIRMED
    assert [(e.step, e.event) for e in saga_log.entries("t-1")] == [(BOOK, LogEvent.END)]


def test_a_second_confirm_changes_nothing_and_says_what_is_there(records, saga_log):
    first = records.confirm("t-1", DETAILS, entry(BOOK, LogEvent.END, "2026-01-01T00:00:01Z"))
    with pytest.raises(RecordUnchanged) as unchanged:
        records.confirm("t-1", {**DETAILS, "other": "details"}, entry(BOOK, LogEvent.END, "2026-01-01T00:00:02Z", 2))
    assert unchanged.value.existing == first
    assert len(saga_log.entries("t-1")) == 1  # the refused change wrote no log entry either


def test_cancel_without_a_booking_leaves_a_tombstone_that_refuses_a_late_confirm(records):
    records.cancel("t-1", entry(CANCEL, LogEvent.END, "2026-01-01T00:00:01Z"))
    tombstone = records.get("t-1")
    assert tombstone is not None
    assert tombstone.status is RecordStatus.CANCELLED
    assert tombstone.done_at is None
    with pytest.raises(RecordUnchanged) as unchanged:
        records.confirm("t-1", DETAILS, entry(BOOK, LogEvent.END, "2026-01-01T00:00:02Z"))
    assert unchanged.value.existing.status is RecordStatus.CANCELLED


def test_cancel_twice_changes_nothing_the_second_time(records):
    records.confirm("t-1", DETAILS, entry(BOOK, LogEvent.END, "2026-01-01T00:00:01Z"))
    records.cancel("t-1", entry(CANCEL, LogEvent.END, "2026-01-01T00:00:02Z"))
    with pytest.raises(RecordUnchanged):
        records.cancel("t-1", entry(CANCEL, LogEvent.END, "2026-01-01T00:00:03Z", 2))
    cancelled = records.get("t-1")
    assert cancelled is not None
    assert cancelled.undone_at == "2026-01-01T00:00:02Z"


def test_a_change_whose_log_entry_exists_is_not_written(records, saga_log):
    end = entry(BOOK, LogEvent.END, "2026-01-01T00:00:01Z")
    saga_log.append(end)
    with pytest.raises(DataAccessError):
        records.confirm("t-1", DETAILS, end)
    assert records.get("t-1") is None


def test_the_records_of_a_saga_come_back_per_resource(settings, dynamodb, saga_log, records):
    records.confirm("t-1", DETAILS, entry(BOOK, LogEvent.END, "2026-01-01T00:00:01Z"))
    repositories = [RecordTable(r, settings.records_table(r), saga_log, dynamodb) for r in RESOURCES]
    found = get_records(dynamodb, repositories, "t-1")
    assert {r: (b.status if b else None) for r, b in found.items()} == {
        RESOURCES[0]: RecordStatus.CONFIRMED,
        **dict.fromkeys(RESOURCES[1:]),
    }


def test_log_reads_back_in_write_order_start_before_end_at_the_same_instant(saga_log):
    at = "2026-01-01T00:00:01.000000Z"
    saga_log.append(entry(BOOK, LogEvent.END, at))
    saga_log.append(entry(BOOK, LogEvent.START, at))
    saga_log.append(entry(CANCEL, LogEvent.START, "2026-01-01T00:00:02.000000Z"))
    assert [(e.step, e.event) for e in saga_log.entries("t-1")] == [
        (BOOK, LogEvent.START),
        (BOOK, LogEvent.END),
        (CANCEL, LogEvent.START),
    ]


def test_a_log_entry_is_never_overwritten(saga_log):
    saga_log.append(entry(BOOK, LogEvent.START, "2026-01-01T00:00:01Z"))
    with pytest.raises(DataAccessError, match="ConditionalCheckFailed") as refused:
        saga_log.append(entry(BOOK, LogEvent.START, "2026-01-01T00:00:01Z"))
    assert not isinstance(refused.value, TransientDataAccessError)  # a refusal, not a passing fault


def cancelled(reason: str) -> dict:
    return {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": [{"Code": reason}]}


@pytest.mark.parametrize(
    ("response", "transient"),
    [
        ({"Error": {"Code": "ProvisionedThroughputExceededException"}}, True),
        ({"Error": {"Code": "ThrottlingException"}}, True),
        ({"Error": {"Code": "RequestLimitExceeded"}}, True),
        ({"Error": {"Code": "TransactionConflictException"}}, True),
        ({"Error": {"Code": "InternalServerError"}}, True),
        (
            {
                "Error": {"Code": "TransactionCanceledException"},
                "CancellationReasons": [{"Code": "TransactionConflict"}],
            },
            True,
        ),
        (
            {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": [{"Code": "ThrottlingError"}]},
            True,
        ),
        (
            {
                "Error": {"Code": "TransactionCanceledException"},
                "CancellationReasons": [{"Code": "ConditionalCheckFailed"}],
            },
            False,
        ),
        ({"Error": {"Code": "ResourceNotFoundException"}}, False),
        ({"Error": {"Code": "AccessDeniedException"}}, False),
        ({"Error": {"Code": "ValidationException"}}, False),
    ],
)
def test_passing_dynamodb_faults_are_told_apart_from_refusals(response, transient):
    error = data_access_error("writing", ClientError(response, "TransactWriteItems"))
    assert isinstance(error, TransientDataAccessError) is transient
    assert isinstance(error, DataAccessError)


def test_attention_records_are_read_apart_from_the_log(saga_log, dynamodb, settings):
    stuck = compensation_of(LAST)
    saga_log.append(entry(stuck.name, LogEvent.FAILED, "2026-01-01T00:00:01Z"))
    dynamodb.put_item(
        TableName=settings.saga_log_table,
        Item={
            ID_FIELD: {"S": "t-1"},
            "sk": {"S": stuck.attention_key},
            "step": {"S": stuck.name},
            "attention": {"S": "OPEN"},
            "at": {"S": "2026-01-01T00:00:02Z"},
        },
    )
    entries, attention = saga_log.read("t-1")
    assert [e.step for e in entries] == [stuck.name]
    assert [(a.step, a.at) for a in attention] == [(stuck.name, "2026-01-01T00:00:02Z")]


# Every table named, as a function's environment and as a stack's outputs name them.
TABLES = {resource: f"table-{n}" for n, resource in enumerate(RESOURCES)}
LEDGERS = {resource: f"ledger-{n}" for n, resource in enumerate(RESOURCES)}
ENVIRONMENT = {
    **{ResourceNames(r).table_variable: table for r, table in TABLES.items()},
    **{ResourceNames(r).provider_table_variable: table for r, table in LEDGERS.items()},
    "SAGA_LOG_TABLE": "l",
}
OUTPUTS = {
    **{ResourceNames(r).table_output: table for r, table in TABLES.items()},
    **{ResourceNames(r).provider_table_output: table for r, table in LEDGERS.items()},
    "SagaLogTableName": "l",
}


def test_settings_read_the_environment_and_the_stack_outputs_alike():
    environment, outputs = ENVIRONMENT, OUTPUTS
    assert Settings.read({**environment, "FAULT_INJECTION": "false"}) == Settings.read(
        {**outputs, "FaultInjection": "false"}
    )
    read = Settings.read({**outputs, "FaultInjection": "false"})
    assert (read.tables, read.provider_tables, read.missing_tables()) == (TABLES, LEDGERS, [])
    assert Settings.read({**environment, "FAULT_INJECTION": "true"}).fault_injection is True


@pytest.mark.parametrize("value", ["", "maybe", "on-ish"])
def test_settings_refuse_an_unclear_fault_injection_naming_it(value):
    environment = ENVIRONMENT
    with pytest.raises(MisconfiguredFunction, match="FAULT_INJECTION"):
        Settings.read({**environment, "FAULT_INJECTION": value})


def test_settings_name_every_missing_variable():
    with pytest.raises(MisconfiguredFunction, match=r"SAGA_LOG_TABLE"):
        Settings.read({"FAULT_INJECTION": "true"})
    # A function is given only its own resource's table: asking for another names the variable.
    own, *others = RESOURCES
    names = ResourceNames(own)
    settings = Settings.read(
        {
            "FAULT_INJECTION": "true",
            "SAGA_LOG_TABLE": "log",
            names.table_variable: "mine",
            names.provider_table_variable: "my ledger",
        }
    )
    assert (settings.records_table(own), settings.provider_table(own)) == ("mine", "my ledger")
    for other in others:
        with pytest.raises(MisconfiguredFunction, match=ResourceNames(other).table_variable):
            settings.records_table(other)
        with pytest.raises(MisconfiguredFunction, match=ResourceNames(other).provider_table_variable):
            settings.provider_table(other)
    assert settings.missing_tables() == [
        output
        for other in others
        for output in (ResourceNames(other).table_output, ResourceNames(other).provider_table_output)
    ]


def test_a_setting_that_is_missing_is_named_as_it_is_called_where_it_is_read():
    with pytest.raises(MisconfiguredFunction, match="SAGA_LOG_TABLE: Field required"):
        Settings.read({"FAULT_INJECTION": "true"})
    # From a stack's outputs: the output's name, not the function's variable
    with pytest.raises(MisconfiguredFunction, match="the output SagaLogTableName: Field required") as missing:
        Settings.read({"FaultInjection": "true"}, outputs=True)
    assert "SAGA_LOG_TABLE" not in str(missing.value)
    with pytest.raises(MisconfiguredFunction, match="the output FaultInjection: Input should be a valid boolean"):
        Settings.read({"SagaLogTableName": "log", "FaultInjection": "maybe"}, outputs=True)
