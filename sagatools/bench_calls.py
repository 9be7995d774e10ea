"""./build.sh bench: the AWS API calls of the bench's process, and the DynamoDB calls each step makes.

`ApiCalls` counts and times every botocore call in this process (the runner's, the state machine's and the
handlers'), and hands each to an optional observer. `StepCalls` is such an observer: it attributes each DynamoDB
call to whoever made it, on the embedded stack, where one handler runs at a time on the Lambda thread
(`InProcessLambda.running_here`): a step's handler, to its own tables (the saga log, the records) or to its
provider's ledger; the state machine's own DynamoDB tasks (the attention records its Flag states write); the
runner's reads, which no saga pays for, are left out. `request_units` prices a call as DynamoDB bills it on demand.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.client

from sagatools.bench_aws import PRICES

if TYPE_CHECKING:
    from sagatools.emulation.embedded import EmbeddedStack

# A call's observer: (service, operation, params, reply or None when it raised).
Observer = Callable[[str, str, dict[str, Any], dict[str, Any] | None], None]

# Who made a DynamoDB call, besides a step's handler (which is named by its step).
STATE_MACHINE = "state machine"
# What a call was made to.
OWN, PROVIDER = "own tables", "provider's ledger"
# DynamoDB bills on demand by the request unit (Developer Guide, "Read/write capacity mode"; the on-demand pricing
# page): each started 1 KB of an item written is one write unit (a failed conditional write too; an update is sized
# by the larger of the item before and after), a transactional write two; each started 4 KB of an item read with
# strong consistency one read unit, eventually consistent half of one, transactional two; a write that puts the item
# in a global secondary index is also written there (the indexes here project every attribute).
WRITE_UNIT_BYTES, READ_UNIT_BYTES = 1024, 4096
# (table, key) -> the item as it is stored now, or None.
Stored = Callable[[str, dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Units:
    read: float = 0.0
    write: float = 0.0

    def __add__(self, other: Units) -> Units:
        return Units(self.read + other.read, self.write + other.write)

    @property
    def dollars(self) -> float:
        """What these units cost on demand."""
        return (
            self.read * PRICES["DynamoDB read request unit (on-demand)"]
            + self.write * PRICES["DynamoDB write request unit (on-demand)"]
        )


def write_units(size: int, transactional: bool = False) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES)) * (2 if transactional else 1)


def read_units(size: int, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units * 2.0 if transactional else units * (1.0 if consistent else 0.5)


@dataclass(frozen=True)
class Pricing:
    """What a call is priced from: each table's indexed attributes (the hash key of each global secondary index, which
    an item lands in when it has it), the stored items (`stored`: an update or read not carrying its item is sized by
    the item as it is stored once the saga has ended), and an item's size (`item_bytes`, as DynamoDB's guide counts)."""

    index_keys: dict[str, list[str]]
    stored: Stored
    item_bytes: Callable[[dict[str, Any]], int]

    def write(self, table: str, item: dict[str, Any], transactional: bool) -> int:
        size = self.item_bytes(item)
        indexes = sum(key in item for key in self.index_keys.get(table, []))
        return write_units(size, transactional) + indexes * write_units(size)

    def written(self, action: dict[str, Any]) -> dict[str, Any]:
        """The item a write leaves: a put's own, else the stored one (the larger of before and after, as a rule)."""
        if "Item" in action:
            return dict(action["Item"])
        return self.stored(action["TableName"], action["Key"]) or dict(action["Key"])

    def read(self, table: str, key: dict[str, Any], consistent: bool, transactional: bool = False) -> float:
        return read_units(self.item_bytes(self.stored(table, key) or key), consistent, transactional)


def request_units(operation: str, params: dict[str, Any], reply: dict[str, Any] | None, pricing: Pricing) -> Units:
    """The request units one DynamoDB call consumed (`reply`: its answer, None if it raised)."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return Units(write=pricing.write(params["TableName"], pricing.written(params), transactional=False))
    if operation == "TransactWriteItems":
        writes = 0
        for entry in params["TransactItems"]:
            ((_, action),) = entry.items()
            writes += pricing.write(action["TableName"], pricing.written(action), transactional=True)
        return Units(write=writes)
    if operation == "GetItem":
        return Units(read=pricing.read(params["TableName"], params["Key"], bool(params.get("ConsistentRead"))))
    if operation == "BatchGetItem":
        return Units(
            read=sum(
                pricing.read(table, key, bool(ask.get("ConsistentRead")))
                for table, ask in params["RequestItems"].items()
                for key in ask["Keys"]
            )
        )
    if operation == "TransactGetItems":
        return Units(
            read=sum(
                pricing.read(entry["Get"]["TableName"], entry["Get"]["Key"], True, transactional=True)
                for entry in params["TransactItems"]
            )
        )
    if operation in ("Query", "Scan"):
        # The items it returns, their sizes summed, in started 4 KB.
        size = sum(pricing.item_bytes(item) for item in (reply or {}).get("Items", []))
        return Units(read=read_units(size, bool(params.get("ConsistentRead"))))
    raise ValueError(f"the bench cannot price a DynamoDB {operation} yet")


class ApiCalls:
    """Counts and times every AWS API call made in this process (the runner's and the handlers'); `observe`, if
    given, sees each call with its reply."""

    def __init__(self, observe: Observer | None = None) -> None:
        self.count: collections.Counter[str] = collections.Counter()
        self.seconds: collections.defaultdict[str, float] = collections.defaultdict(float)
        self._original = botocore.client.BaseClient._make_api_call
        self._observe = observe

    def __enter__(self) -> ApiCalls:
        original, count, seconds, observe = self._original, self.count, self.seconds, self._observe

        def timed(client: Any, operation: str, params: dict[str, Any]) -> Any:
            started = time.perf_counter()
            reply = None
            try:
                reply = original(client, operation, params)
                return reply
            finally:
                count[operation] += 1
                seconds[operation] += time.perf_counter() - started
                if observe is not None:
                    observe(client.meta.service_model.service_name, operation, params, reply)

        botocore.client.BaseClient._make_api_call = timed
        return self

    def __exit__(self, *exc_info: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original


@dataclass
class CallerCalls:
    """The DynamoDB calls of one caller (a step, or the state machine) in one saga, by what they were made to."""

    calls: dict[str, collections.Counter[str]]  # OWN or PROVIDER -> operation -> calls
    units: dict[str, Units]  # OWN or PROVIDER -> request units

    @classmethod
    def empty(cls) -> CallerCalls:
        return cls({OWN: collections.Counter(), PROVIDER: collections.Counter()}, {OWN: Units(), PROVIDER: Units()})

    def total(self, target: str | None = None) -> Units:
        return sum((units for name, units in self.units.items() if target in (None, name)), Units())


@dataclass(frozen=True)
class Call:
    caller: str  # a step's name, or STATE_MACHINE
    target: str  # OWN or PROVIDER
    operation: str
    params: dict[str, Any]
    reply: dict[str, Any] | None


class StepCalls:
    """An `ApiCalls` observer: each DynamoDB call a saga's handlers and state machine make on `stack`, with its
    caller. `reset()` between sagas; once the saga has ended, `by_caller()` prices its calls."""

    def __init__(self, stack: EmbeddedStack) -> None:
        from sagatools.bench_aws import item_bytes

        self._stack = stack
        self._main = threading.current_thread()
        self._provider_tables = set(stack.settings.provider_tables.values())
        self._pricing = Pricing(
            {
                properties["TableName"]: [
                    next(key["AttributeName"] for key in index["KeySchema"] if key["KeyType"] == "HASH")
                    for index in properties.get("GlobalSecondaryIndexes", [])
                ]
                for properties in stack.config.create_table_requests()
            },
            self._stored,
            item_bytes,
        )
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def reset(self) -> None:
        with self._lock:
            self.calls = []

    def __call__(self, service: str, operation: str, params: dict[str, Any], reply: dict[str, Any] | None) -> None:
        if service != "dynamodb":
            return
        function = self._stack.lambdas.running_here()
        if function is not None:
            caller = function.step.name
        elif threading.current_thread() is self._main:
            return  # the runner's: reading the saga back is not part of it
        else:
            caller = STATE_MACHINE  # an execution's thread: the state machine's own DynamoDB tasks
        target = PROVIDER if _tables(operation, params) <= self._provider_tables else OWN
        with self._lock:
            self.calls.append(Call(caller, target, operation, params, reply))

    def by_caller(self) -> dict[str, CallerCalls]:
        """The saga's calls so far, priced, by caller in the order they first called."""
        found: dict[str, CallerCalls] = {}
        for call in self.calls:
            calls = found.setdefault(call.caller, CallerCalls.empty())
            calls.calls[call.target][call.operation] += 1
            calls.units[call.target] += request_units(call.operation, call.params, call.reply, self._pricing)
        return found

    def _stored(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._stack.dynamodb.get_item(TableName=table, Key=key).get("Item")
        return item


def _tables(operation: str, params: dict[str, Any]) -> set[str]:
    if "TableName" in params:
        return {params["TableName"]}
    if operation == "BatchGetItem":
        return set(params["RequestItems"])
    return {next(iter(entry.values()))["TableName"] for entry in params.get("TransactItems", [])}


def _calls_text(calls: collections.Counter[str]) -> str:
    return " + ".join(f"{count} {operation}" for operation, count in calls.items()) or "-"


def _units_text(units: Units) -> str:
    return f"{units.read:g} / {units.write:g}"


def step_calls_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The section on each step's DynamoDB calls. `rows`: per scenario, its "scenario", "callers" (step name or
    STATE_MACHINE -> CallerCalls), "invocations" (step name -> handler invocations) and "transitions_per_million"."""
    lines = [
        "## DynamoDB calls per step",
        "",
        "Each scenario run once on the embedded stack, every botocore call observed (counts are exact, not "
        "sampled): a DynamoDB call is the step's whose handler made it, to its own tables (the saga log and its "
        "records) or to its provider's ledger (`saga/providers.py`); the state machine's own DynamoDB tasks (the "
        "attention record a Flag state writes) are a row of their own; the runner's reads are left out. Request "
        "units as DynamoDB bills them on demand: each started 1 KB of an item written is 1 write unit (a failed "
        "conditional write too), 2 in a transaction, and the item is written again to each global secondary index "
        "it lands in; each started 4 KB read with strong consistency is 1 read unit, eventually consistent 0.5. "
        "A put is sized by its item, an update or a read by the item as the saga left it.",
        "",
        "| scenario | step | invocations | calls to its own tables | calls to its provider's ledger "
        "| own read / write units | provider read / write units |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for caller, calls in row["callers"].items():
            lines.append(
                f"| {row['scenario']} | {caller} | {row['invocations'].get(caller, '-')} "
                f"| {_calls_text(calls.calls[OWN])} | {_calls_text(calls.calls[PROVIDER])} "
                f"| {_units_text(calls.units[OWN])} | {_units_text(calls.units[PROVIDER])} |"
            )
    lines += [
        "",
        "Beside the transitions, per million sagas (prices: *AWS cost per saga* above):",
        "",
        "| scenario | billed transitions | transitions $ | DynamoDB calls (steps' own + providers' + state machine's) "
        "| DynamoDB $ | of which the providers' ledgers $ |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        callers: dict[str, CallerCalls] = row["callers"]
        steps = [calls for caller, calls in callers.items() if caller != STATE_MACHINE]
        own = sum(sum(calls.calls[OWN].values()) for calls in steps)
        provider = sum(sum(calls.calls[PROVIDER].values()) for calls in steps)
        machine = sum(sum(calls.calls[OWN].values()) for caller, calls in callers.items() if caller == STATE_MACHINE)
        total = sum((calls.total() for calls in callers.values()), Units())
        providers = sum((calls.total(PROVIDER) for calls in callers.values()), Units())
        lines.append(
            f"| {row['scenario']} | {row['transitions']} | {row['transitions_per_million']:,.2f} "
            f"| {own} + {provider} + {machine} | {total.dollars * 1e6:,.2f} | {providers.dollars * 1e6:,.2f} |"
        )
    success = rows[0]
    ledger_calls = sum(sum(calls.calls[PROVIDER].values()) for calls in success["callers"].values())
    ledgers = sum((calls.total(PROVIDER) for calls in success["callers"].values()), Units())
    lines += [
        "",
        f"The providers' ledgers add {ledger_calls} DynamoDB calls to a {success['scenario']} ({ledgers.read:g} read "
        f"and {ledgers.write:g} write units: ${ledgers.dollars * 1e6:,.2f} per million sagas, against "
        f"${success['transitions_per_million']:,.2f} for its transitions) and no billed transition: a step calls its "
        "provider inside its own Lambda invocation.",
        "",
    ]
    return lines
