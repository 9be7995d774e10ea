"""The AWS part of ./build.sh bench: what a saga costs and how many per second the default quotas allow.

Counted from executions on the embedded stack (their histories, saga logs and items); prices and quotas
are written here with where each comes from, since nothing here can fetch them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from saga.catalogue import REQUESTS
from saga.keys import ID_FIELD
from saga.providers import LEDGER_KEY
from saga.saga_log import LogEvent
from saga.spec import step_key
from sagatools.executions import execution_history

if TYPE_CHECKING:
    from sagatools.bench_calls import Units
    from sagatools.emulation.embedded import EmbeddedStack
    from sagatools.results import SagaResult

# Every price the bench uses, and only here: us-east-1 list prices from AWS's pricing pages (Step Functions, Lambda,
# DynamoDB on-demand, CloudWatch), as this project wrote them down on PRICES_AS_OF, not fetched (no network here):
# check the pages before relying on them. DynamoDB's on-demand request prices are those since its cut of 2024-11-01.
PRICES_AS_OF = "2026-11-26"
PRICES = {
    "state transition (Standard)": 0.025 / 1000,
    # Lambda durable functions (Lambda's pricing page, since their launch in December 2025): each durable operation.
    "durable operation (Lambda durable functions)": 8.00 / 1_000_000,
    "Lambda request": 0.20 / 1_000_000,
    "Lambda GB-second (arm64)": 0.0000133334,
    "DynamoDB write request unit (on-demand)": 0.625 / 1_000_000,
    "DynamoDB read request unit (on-demand)": 0.125 / 1_000_000,
    "CloudWatch Logs ingestion, per GB": 0.50,
    "DynamoDB storage, per GB-month": 0.25,
    "DynamoDB PITR, per GB-month": 0.20,
}
LAMBDA_MEMORY_GB = 0.25  # serverless.yml: memorySize 256
ASSUMED_AWS_INVOCATION_MS = 50  # a handler's two DynamoDB calls over the network on AWS; locally they are in-process
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # DynamoDB bills 100 bytes of indexing overhead per stored item


@dataclass(frozen=True)
class Region:
    """Default quotas of one group of regions, each figure with its source."""

    name: str
    start_execution_refill: float  # Step Functions Developer Guide, Quotas, API action throttling (Standard)
    state_transition_refill: float  # Step Functions Developer Guide, Quotas, state throttling (Standard)


# Step Functions Developer Guide, "Quotas": Standard workflows, per account and region.
#   StartExecution: bucket 1,300, refill 300/s in us-east-1, us-west-2, eu-west-1; 800 / 150 elsewhere.
#   StateTransition: bucket 5,000, refill 1,500/s in those three; 800 / 500 elsewhere.
#   New accounts have reduced state transition quotas, raised automatically with use.
REGIONS = [
    Region("us-east-1, us-west-2, eu-west-1", 300, 1500),
    Region("other regions", 150, 500),
]
# Lambda Developer Guide, "Lambda quotas": 1,000 concurrent executions per region by default; new
# accounts have reduced concurrency (by how much is not published: check Service Quotas).
LAMBDA_CONCURRENCY = 1000
# DynamoDB Developer Guide, "Service quotas": an on-demand table serves up to 40,000 write request units/s
# (table and its GSIs together); "Initial throughput for on-demand capacity mode": a new on-demand table
# serves up to 4,000 at once, and on-demand throttles past double the previous peak within 30 minutes.
TABLE_MAX_WRU = 40000
NEW_TABLE_WRU = 4000


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return len(str(inner).lstrip("-").replace(".", "")) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_bytes(item) for name, item in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_bytes(item) for item in inner)
    return len(str(inner).encode())


def item_bytes(item: dict[str, Any]) -> int:
    """An item's stored size as DynamoDB's guide counts it: names and values, plus the indexing overhead."""
    return DYNAMODB_ITEM_OVERHEAD_BYTES + sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


LAST_STEP = REQUESTS[-1].resource.replace("_", " ")


def stored_bytes(stack: EmbeddedStack, saga_id: str) -> int:
    settings = stack.settings
    total = 0
    for table in (*settings.tables.values(), settings.saga_log_table):
        items = stack.dynamodb.query(
            TableName=table,
            KeyConditionExpression="#id = :id",
            ExpressionAttributeNames={"#id": ID_FIELD},
            ExpressionAttributeValues={":id": {"S": saga_id}},
        )["Items"]
        total += sum(item_bytes(item) for item in items)
    # Each provider's ledger holds the saga's reservations under the step's key, one per provider asked (a step that
    # names its provider has a key per provider, which begins with the step's): a scan of the bench's small ledgers.
    for resource, table in settings.provider_tables.items():
        pages = stack.dynamodb.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="begins_with(#key, :key)",
            ExpressionAttributeNames={"#key": LEDGER_KEY},
            ExpressionAttributeValues={":key": {"S": step_key(saga_id, resource)}},
        )
        total += sum(item_bytes(item) for page in pages for item in page["Items"])
    return total


def lambda_dollars(invocations: int, step_attempts: int) -> float:
    """What Lambda bills for `invocations` requests whose step attempts each take the assumed time on AWS."""
    seconds = step_attempts * ASSUMED_AWS_INVOCATION_MS / 1000
    return invocations * PRICES["Lambda request"] + seconds * LAMBDA_MEMORY_GB * PRICES["Lambda GB-second (arm64)"]


def cost_of(stack: EmbeddedStack, report: SagaResult, dynamodb: Units) -> dict[str, Any]:
    """What a saga costs; `dynamodb`: the request units its handlers and state machine consumed, as observed
    (sagatools/bench_calls.py)."""
    events = execution_history(stack.stepfunctions, report.execution_arn)
    invocations = sum(event["type"] == "LambdaFunctionScheduled" for event in events)
    # The saga log table's write units (for its capacity): a plain PutItem of a small item is 1; the END committed
    # in a transaction is 2 (replayed ENDs are plain puts); an attention record is written to the table and to
    # its attention-index (a GSI write).
    log_units = sum(
        2 if entry.event is LogEvent.END and not (entry.detail or "").startswith("already") else 1
        for entry in report.saga_log
    )
    log_units += 2 * len(report.needs_attention)
    transitions = report.billed_transitions * PRICES["state transition (Standard)"]
    dollars = transitions + lambda_dollars(invocations, invocations) + dynamodb.dollars
    # The ALL-level log with execution data carries each history event with its input and output.
    log_bytes = sum(len(json.dumps(event, default=str)) for event in events)
    return {
        "transitions": report.billed_transitions,
        "invocations": invocations,
        "wru": dynamodb.write,
        "rru": dynamodb.read,
        "log_wru": log_units,
        "per_million": dollars * 1e6,
        "transitions_per_million": transitions * 1e6,
        "dynamodb_per_million": dynamodb.dollars * 1e6,
        "log_bytes": log_bytes,
        "stored_bytes": stored_bytes(stack, report.saga_id),
    }


def prices_text() -> str:
    """The prices a saga's bill is made of, in words (from PRICES)."""
    return (
        f"us-east-1 list prices as this project wrote them down on {PRICES_AS_OF} (not fetched: check the AWS pricing"
        f" pages before relying on them): Step Functions Standard ${PRICES['state transition (Standard)'] * 1000:g}"
        f" per 1,000 state transitions; Lambda ${PRICES['Lambda request'] * 1e6:.2f} per million requests and"
        f" ${PRICES['Lambda GB-second (arm64)']:.10f} per GB-second on arm64 ({LAMBDA_MEMORY_GB * 1024:.0f} MB, an"
        f" assumed {ASSUMED_AWS_INVOCATION_MS} ms per invocation); DynamoDB on-demand"
        f" ${PRICES['DynamoDB write request unit (on-demand)'] * 1e6:.3f} per million write request units and"
        f" ${PRICES['DynamoDB read request unit (on-demand)'] * 1e6:.3f} per million read request units"
    )


def rollback_scenario(resource: str) -> str:
    return f"rollback at {resource.replace('_', ' ')}"


def success_and_rollback(costs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two rows the capacity and safeguard figures are drawn from: a success and a rollback at
    the last step (the dearest rollback)."""
    by_scenario = {row["scenario"]: row for row in costs}
    return by_scenario["success"], by_scenario[rollback_scenario(REQUESTS[-1].resource)]


def capacity(costs: list[dict[str, Any]]) -> list[str]:
    """Sustainable sagas/s under each default quota, on paper, and which binds first."""
    success, rollback = success_and_rollback(costs)
    lines = []
    for region in REGIONS:
        for label, mix in (("success only", [success]), (f"half roll back at the {LAST_STEP}", [success, rollback])):
            transitions = statistics.mean(c["transitions"] for c in mix)
            invocations = statistics.mean(c["invocations"] for c in mix)
            log_wru = statistics.mean(c["log_wru"] for c in mix)
            limits = {
                "StartExecution": region.start_execution_refill,
                "state transitions": region.state_transition_refill / transitions,
                "Lambda concurrency": LAMBDA_CONCURRENCY / (invocations * ASSUMED_AWS_INVOCATION_MS / 1000),
                "saga log, new table": NEW_TABLE_WRU / log_wru,
                "saga log, table maximum": TABLE_MAX_WRU / log_wru,
            }
            binding = min(limits, key=limits.__getitem__)
            lines.append(
                f"| {region.name} | {label} | "
                + " | ".join(f"{value:,.0f}" for value in limits.values())
                + f" | {binding} |"
            )
    return lines


def cost_markdown(costs: list[dict[str, Any]]) -> list[str]:
    success, rollback = success_and_rollback(costs)
    gb = 1e9
    lines = [
        "## AWS cost per saga",
        "",
        "Counted from each execution's history, and from the DynamoDB calls its handlers and its state machine "
        "made (observed: *DynamoDB calls per step* below gives them step by step); transitions are billed ones "
        f"(every state entered, plus one per retry of a task). Prices: {prices_text()}. Free tiers are not included.",
        "",
        "| scenario | transitions | Lambda invocations | DynamoDB read units | DynamoDB write units "
        "| $ per million sagas |",
        "|---|---|---|---|---|---|",
        *[
            f"| {c['scenario']} | {c['transitions']} | {c['invocations']} | {c['rru']:g} | {c['wru']:g} "
            f"| {c['per_million']:,.2f} |"
            for c in costs
        ],
        "",
        "The designs we studied use 4-7 transitions on success and 6-8 on a failure at the last step; this one "
        f"uses {success['transitions']} and {rollback['transitions']}. Transitions dominate the bill: at $25 per "
        f"million transitions, the {success['transitions']} of a success are ${success['transitions'] * 25:,} of "
        "every million sagas.",
        "",
        "### What the template's safeguards add",
        "",
        "The execution log (level ALL with execution data) is measured as the JSON of each history event; "
        "stored bytes are every item a saga leaves in its tables and its providers' ledgers, sized as DynamoDB's "
        "guide counts them "
        f"(names and values, plus {DYNAMODB_ITEM_OVERHEAD_BYTES} bytes per item). CloudWatch Logs ingestion "
        f"${PRICES['CloudWatch Logs ingestion, per GB']:.2f} per GB (vended-log tiers lower it at volume); DynamoDB "
        f"storage ${PRICES['DynamoDB storage, per GB-month']:.2f} and continuous backups (PITR) "
        f"${PRICES['DynamoDB PITR, per GB-month']:.2f} per GB-month.",
        "",
        "| scenario | execution log bytes | log ingestion $ per million sagas | stored bytes "
        "| storage + PITR $ per month per million sagas kept |",
        "|---|---|---|---|---|",
        *[
            f"| {c['scenario']} | {c['log_bytes']:,} | "
            f"{c['log_bytes'] * 1e6 / gb * PRICES['CloudWatch Logs ingestion, per GB']:,.2f} | "
            f"{c['stored_bytes']:,} | "
            f"{c['stored_bytes'] * 1e6 / gb * (PRICES['DynamoDB storage, per GB-month'] + PRICES['DynamoDB PITR, per GB-month']):,.2f} |"  # noqa: E501
            for c in costs
        ],
        "",
        "- The ALL-level log is the largest extra: about "
        f"{success['log_bytes'] * 1e6 / gb * PRICES['CloudWatch Logs ingestion, per GB'] / success['per_million']:.0%}"
        " on top of a success's bill. Level ERROR keeps only failures; dropping execution data keeps the "
        "events but not the sagas' contents (and their personal data) out of the logs.",
        "- PITR and storage grow with what is kept, not with traffic: a million kept sagas hold "
        f"{success['stored_bytes'] * 1e6 / gb:.1f}-{rollback['stored_bytes'] * 1e6 / gb:.1f} GB. PITR's "
        "35-day window is not a retention policy: expire old sagas (a TTL) if the tables should stay small.",
        "- Encryption with the AWS-managed key (aws/dynamodb, what `SSEEnabled: true` selects): no key fee; "
        "KMS bills its requests ($0.03 per 10,000). DynamoDB caches the decrypted table key per connection and "
        "asks KMS again only for a new connection or after five minutes of inactivity (AWS KMS Developer Guide, "
        "*How Amazon DynamoDB uses AWS KMS*): about one request per table a new Lambda environment touches, "
        "not one per item, so 10,000 new environments a day (each touching two tables) cost about $1.80 a "
        "month. The AWS-owned key (the default without SSESpecification) costs nothing but gives no key "
        "policy to read and no CloudTrail record of its use.",
        "- X-Ray: $5.00 per million traces recorded; the default sampling rule records the first request each "
        "second and 5% of the rest, so at volume about $0.25 per million sagas.",
        "",
    ]
    return lines


def capacity_markdown(costs: list[dict[str, Any]]) -> list[str]:
    success, rollback = success_and_rollback(costs)
    large = REGIONS[0]
    crossover = large.state_transition_refill / large.start_execution_refill
    ten_x = 10 * large.start_execution_refill
    rollback_mix_log_wru = statistics.mean([success["log_wru"], rollback["log_wru"]])
    return [
        "## Capacity on AWS, on paper",
        "",
        "Default quotas per account and region for Standard workflows, as the AWS guides give them (read from "
        "the guides' published sources, not from a live account: the Service Quotas console shows an account's "
        "own): *AWS Step Functions Developer Guide, Quotas*: StartExecution bucket 1,300 and refill 300/s, "
        "StateTransition bucket 5,000 and refill 1,500/s in us-east-1, us-west-2 and eu-west-1; 800/150 and "
        "800/500 in all other regions; new accounts start with reduced state-transition quotas. *AWS Lambda "
        "Developer Guide, Lambda quotas*: 1,000 concurrent executions per region; new accounts start with "
        "reduced concurrency. *Amazon DynamoDB Developer Guide, Service quotas* and *Initial throughput for "
        "on-demand capacity mode*: 40,000 write request units/s per on-demand table (with its indexes); a new "
        "on-demand table serves 4,000 at once and throttles past double its previous peak within 30 minutes. "
        "Sustainable sagas/s under each limit (the buckets absorb bursts above it):",
        "",
        "| regions | mix | StartExecution | state transitions | Lambda concurrency (1,000) "
        "| saga log, new table | saga log, table maximum | binds first |",
        "|---|---|---|---|---|---|---|---|",
        *capacity(costs),
        "",
        f"In the three large regions StartExecution ({large.start_execution_refill:,.0f}/s) binds first for "
        f"successes, but the state-transition refill ({large.state_transition_refill:,.0f}/s) binds first once "
        f"a saga bills more than {crossover:g} transitions on average: a mix in which over a third of the sagas roll "
        f"back at the {LAST_STEP} ({success['transitions']} and {rollback['transitions']} transitions). Elsewhere "
        "transitions bind first for every mix. On a new account Step Functions and Lambda both start lower "
        "than these rows: check Service Quotas before a load test. A new saga-log table serves "
        f"{NEW_TABLE_WRU / rollback_mix_log_wru:,.0f} sagas/s of the rollback mix, barely above what Step "
        "Functions allows: on-demand throttles past double its previous peak, so ramp a new table up over "
        "30 minutes (or create it provisioned and switch) before a load test; meanwhile the steps retry "
        "throttled writes as transient. At 10x, raise StartExecution and the transition refill (to "
        f"{ten_x:,.0f}/s and {ten_x * success['transitions']:,.0f}-{ten_x * rollback['transitions']:,.0f}/s); Lambda's "
        f"{LAMBDA_CONCURRENCY:,} concurrency still holds at an assumed {ASSUMED_AWS_INVOCATION_MS} ms per step. "
        "At 100x every limit must be raised, the saga log passes one table's 40,000 WRU/s (shard it by saga id "
        "across tables), and Express workflows, billed by duration instead of transitions, are worth pricing.",
        "",
        "`./runtest.sh --stage` itself is bound by the read APIs' quotas (large regions, bucket/refill per s: "
        "DescribeExecution 300/15, GetExecutionHistory 400/20, ListExecutions 200/5): it describes each saga "
        "once before starting (a saga id that already ran must have run the same request), lists running "
        "executions once per poll round, and describes and reads the history of each saga once it has ended. "
        "So past about 150 sagas a batch is paced by DescribeExecution's 15/s: 1,000 sagas take about two "
        "minutes of reads. Its clients retry throttled calls in the SDK's adaptive mode (12 attempts), which "
        "slows the client to the rate the account allows instead of failing the run.",
        "",
    ]
