"""What a saga definition is made of: its steps, in order, and only what really differs between them.

A definition (saga/definition.py) names the resources and their request sections; every other name
(book_x, BookX, bookX, X_TABLE, ATTENTION#cancel_x …) follows from it by the conventions in
saga/catalogue.py. Nothing here names a step of any particular saga.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from saga import errors

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import BaseModel

    from saga.providers import SimulatedProvider

# A task of the state machine can fail like this whatever the step does: Lambda's own faults and
# timeouts. Every step is idempotent, so retrying any of them is safe.
LAMBDA_FAULTS: tuple[str, ...] = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    # The execution environment died under the attempt (killed, out of memory): the attempt may or may
    # not have done its work, and every step is idempotent, so it is retried like a passing fault.
    "Runtime.ExitError",
)
LAMBDA_TIMEOUTS: tuple[str, ...] = ("Sandbox.Timedout", "Lambda.ClientExecutionTimeoutException")


@dataclass(frozen=True)
class RetryPolicy:
    """One ASL Retry rule: which errors are retried, how often and how far apart."""

    errors: tuple[str, ...]
    max_attempts: int  # retries after the first attempt
    interval_seconds: int = 1
    backoff_rate: float = 2.0
    max_delay_seconds: int = 8
    # Full jitter spreads the retries of many sagas apart; a policy whose waits make a clock (forward
    # recovery's deadline) waits exactly its schedule instead.
    jitter: bool = True

    @property
    def attempts(self) -> int:
        """Attempts in all: the first and every retry."""
        return self.max_attempts + 1

    def delay(self, retry: int) -> float:
        """The wait before retry number `retry` + 1 (0 is the first retry), without jitter."""
        return float(min(self.interval_seconds * self.backoff_rate**retry, self.max_delay_seconds))

    def waited(self, retries: int) -> float:
        """The waits before the first `retries` retries, in all, without jitter."""
        return sum(self.delay(retry) for retry in range(retries))

    def asl(self) -> dict[str, object]:
        return {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": "FULL" if self.jitter else "NONE",
        }


# A request retries passing faults only: anything else is a refusal, and the saga rolls back.
REQUEST_RETRY = RetryPolicy(
    errors=("TransientProviderError", *LAMBDA_FAULTS, "TransientDataAccessError", *LAMBDA_TIMEOUTS),
    max_attempts=3,
)
# A compensation must end up done: it retries whatever fails, until the retries run out and the
# saga is flagged for an operator.
COMPENSATION_RETRY = RetryPolicy(
    errors=(
        "CompensationFailed",
        "TransientProviderError",
        "DataAccessError",
        "States.Timeout",
        *LAMBDA_FAULTS,
        "Lambda.Unknown",
        "TransientDataAccessError",
        *LAMBDA_TIMEOUTS,
    ),
    max_attempts=5,
)

# Forward recovery's deadline (seconds after the pivot), as a request may set it: (least, default, most).
FORWARD_DEADLINE_SECONDS = (60, 3600, 86400)


def _retries_within(seconds: float, interval: int, rate: float, most: int) -> int:
    """How many retries a schedule fits into `seconds` (and one more, so the deadline, not the count, ends it)."""
    retries, waited = 0, 0.0
    while waited <= seconds:
        waited += min(interval * rate**retries, most)
        retries += 1
    return retries


# Past the pivot, in forward recovery: a passing fault or a lost response is retried slowly, until the
# step succeeds or the deadline passes (the step itself checks the deadline, on this schedule).
FORWARD_RETRY = RetryPolicy(
    errors=("ForwardRetryableError",),
    max_attempts=_retries_within(FORWARD_DEADLINE_SECONDS[2], 30, 2.0, 900),
    interval_seconds=30,
    backoff_rate=2.0,
    max_delay_seconds=900,
    jitter=False,
)


class StepKind(StrEnum):
    """Where a step stands in forward recovery (Garcia-Molina & Salem; Richardson's saga steps)."""

    COMPENSATABLE = "compensatable"  # undone on a rollback
    PIVOT = "pivot"  # the point of no return: once it succeeded, a forward saga finishes instead of undoing
    RETRIABLE = "retriable"  # after the pivot: retried, or done another way, until it succeeds


# Past participles the common rules do not make, of verbs a saga's steps often use.
_IRREGULAR = {"do": "done", "undo": "undone", "buy": "bought", "pay": "paid", "send": "sent", "sell": "sold"}


def _done(verb: str) -> str:
    """A verb's past participle by the common rules (reserved, charged, cancelled, carried); another irregular
    one is given (Verbs.request_done, Verbs.compensation_done)."""
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb.endswith("e"):
        return f"{verb}d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return f"{verb[:-1]}ied"
    vowels = [letter for letter in verb if letter in "aeiou"]
    short = len(vowels) == 1 and verb[-1] not in "aeiouwxy" and verb[-2:-1] in "aeiou"  # ship, drop
    if short or (verb.endswith("l") and verb[-2:-1] in "aeiou" and verb[-3:-2] not in "aeiou"):
        return f"{verb}{verb[-1]}ed"
    return f"{verb}ed"


@dataclass(frozen=True)
class Verbs:
    """The words a step's names are made of: book_x, cancel_x, FlagXCancellationStuck. A saga has one set;
    a step may have its own (reserve/release, charge/refund): request, compensation and the compensation's
    noun (`Verbs("charge", "refund", "refund")`), and, where the common rule does not make them, what each
    has done (`request_done="shipped"`), as the saga log and messages say it ("already booked")."""

    request: str = "do"
    compensation: str = "undo"
    compensation_noun: str = "undoing"
    request_done: str | None = None
    compensation_done: str | None = None

    @property
    def requested(self) -> str:
        """What the request has done: booked."""
        return self.request_done or _done(self.request)

    @property
    def compensated(self) -> str:
        """What the compensation has done: cancelled."""
        return self.compensation_done or _done(self.compensation)


# What the engine stores beside a saga's id in its items (the records, the saga log, its attention records and
# claims) and the request's own fields: the id field cannot take one of these names.
RECORD_ATTRIBUTES = frozenset(
    {
        *("sk", "recovery", "simulate", "resource", "status", "reference", "details", "provider"),
        *("step", "event", "at", "attempt", "execution_id", "detail", "attention", "kind", "error", "cause"),
        *("attempts", "resolved_at", "resolved_by", "execution", "version"),
    }
)
# The errors whose names are the engine's own: an app's ErrorNames cannot take them (nor Step Functions' own).
# Every class of saga/errors.py but the four an app renames (ErrorNames' defaults).
_RENAMED = {errors.InvalidRequest, errors.StepRefused, errors.AlreadyCompensated, errors.CompensationFailed}
ENGINE_ERRORS = frozenset(
    error.__name__
    for error in vars(errors).values()
    if isinstance(error, type) and issubclass(error, Exception) and error not in _RENAMED
)


@dataclass(frozen=True)
class ErrorNames:
    """The names the state machine knows four of the steps' errors by (its Retry and Catch rules, the
    execution history). These defaults are the engine's; an app may rename them in its own words."""

    invalid_request: str = "InvalidRequest"  # the request broke a rule of its model: refused, nothing undone
    refused: str = "StepRefused"  # the provider said no: the saga rolls back
    already_compensated: str = "AlreadyCompensated"  # a late request found its compensation's tombstone
    compensation_failed: str = "CompensationFailed"  # a compensation did not complete: retried, then flagged

    def __post_init__(self) -> None:
        names = list(vars(self).values())
        for name in names:
            if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
                raise ValueError(f"error name {name!r}: a PascalCase class name")
        if len(set(names)) != len(names):
            raise ValueError(f"every error needs its own name: {names}")
        if taken := sorted(set(names) & ENGINE_ERRORS):
            raise ValueError(f"error names {taken} are the engine's own errors: name yours otherwise")


@dataclass(frozen=True)
class StepCall:
    """What a step's action or compensation (the app's code) is given, the same on every retry of the step."""

    saga_id: str  # the saga's id (the request's id field, SagaSpec.id_field)
    resource: str  # the step's resource
    section: dict[str, Any]  # the step's section of the request, as validated by its model
    # The provider asked this time, for a step that names its provider (`alternatives_for`): the request's own
    # or, past the pivot, one of its alternatives.
    provider: str | None = None
    # The fault injected into this call for a simulated provider (saga/providers.py: "late"); a real client
    # ignores it.
    simulate: str | None = None

    @property
    def key(self) -> str:
        """One key per step of a saga (its idempotency key), derived from the saga's id and the step, and from the
        provider asked where the step names one: an alternative provider gets a key of its own."""
        return step_key(self.saga_id, self.resource, self.provider)


def step_key(saga_id: str, resource: str, provider: str | None = None) -> str:
    """`<saga id>/<resource>`, or `<saga id>/<resource>/<provider>` for a step that names its provider."""
    return f"{saga_id}/{resource}" + (f"/{provider}" if provider else "")


# A step's own work, as the app writes it. The action returns the reference its provider gives the record;
# the compensation undoes it. The engine around them logs, records, retries and injects faults.
StepAction = Callable[[StepCall], str]
StepCompensation = Callable[[StepCall], None]


@dataclass(frozen=True)
class StepWork:
    """A step's own work, as the app writes it: the action (returns the reference the provider gives the
    record) and the compensation (undoes it)."""

    action: StepAction
    compensation: StepCompensation
    # The simulated provider the work calls (saga/providers.py), whose ledger `--json` reads as `providers`; None
    # for work that calls a real provider (the saga cannot read its ledger).
    simulated: SimulatedProvider | None = None


_RESOURCE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_VERB = re.compile(r"[a-z]+")


def _check_verbs(verbs: Verbs, owner: str) -> None:
    words = {
        "request": verbs.request,
        "compensation": verbs.compensation,
        "compensation_noun": verbs.compensation_noun,
        "request_done": verbs.requested,
        "compensation_done": verbs.compensated,
    }
    for role, word in words.items():
        if not _VERB.fullmatch(word):
            raise ValueError(f"{owner}: verb {role} {word!r}: use lower-case letters only")
    if verbs.request == verbs.compensation:
        raise ValueError(f"{owner}: the request and the compensation need different verbs ({verbs.request!r})")


@dataclass(frozen=True)
class StepSpec:
    """One step of a saga: a resource, booked by a request and undone by its compensation."""

    resource: str  # snake_case: names the step, its table, its request section
    request: type[BaseModel]  # the request's section for this resource, stored with the record
    kind: StepKind = StepKind.COMPENSATABLE
    # The field of its section that names the provider, when the section also lists `alternatives`
    # (other providers, tried in order when one refuses, in forward recovery).
    alternatives_for: str | None = None
    request_retry: RetryPolicy = REQUEST_RETRY
    compensation_retry: RetryPolicy = COMPENSATION_RETRY
    forward_retry: RetryPolicy = FORWARD_RETRY
    # Its own verbs, where the saga's do not fit it (None: the saga's).
    verbs: Verbs | None = None
    # Its own work (None: the saga's record of the step is all there is to it).
    work: StepWork | None = None

    def __post_init__(self) -> None:
        if self.verbs is not None:
            _check_verbs(self.verbs, f"step {self.resource}")
        if not _RESOURCE.fullmatch(self.resource):
            raise ValueError(f"resource {self.resource!r}: use snake_case (letters, digits and _)")
        if self.alternatives_for is not None:
            fields = self.request.model_fields
            if self.alternatives_for not in fields or "alternatives" not in fields:
                raise ValueError(
                    f"step {self.resource}: its section needs the field {self.alternatives_for!r} and 'alternatives'"
                )
            if self.kind is not StepKind.RETRIABLE:
                raise ValueError(f"step {self.resource}: alternatives are for a retriable step")
        simulated = self.work.simulated if self.work else None
        if simulated is not None and simulated.resource != self.resource:
            raise ValueError(f"step {self.resource}: its work's simulated provider serves {simulated.resource!r}")


@dataclass(frozen=True)
class SagaSpec:
    """A saga: its name, its steps in the order the requests run (compensations run in reverse), and the
    words it is told in. The defaults are the engine's own; an app declares its domain's."""

    name: str  # the state machine is <service>-<stage>-<name>
    steps: tuple[StepSpec, ...]
    # Sections of the request that belong to no step, required like the steps' own.
    sections: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    verbs: Verbs = field(default_factory=Verbs)
    # The request's id field: the key of every table, the execution's name, the key in `--json`.
    id_field: str = "saga_id"
    # What one saga is called in messages, pages and `attention.sh` ("order": "order 42 needs attention").
    noun: str = "saga"
    # The state a saga that did every step ends in (its ASL Succeed state), and what a step's records are
    # called: each step's table is <service>-<stage>-<resource>-<records>, and `--json` lists them under it.
    done_state: str = "Done"
    records: str = "records"
    errors: ErrorNames = field(default_factory=ErrorNames)

    @property
    def record(self) -> str:
        """What one of its records is called (records' singular): booking."""
        return f"{self.records[:-3]}y" if self.records.endswith("ies") else self.records.removesuffix("s")

    @property
    def nouns(self) -> str:
        """The noun's plural, as messages use it."""
        return f"{self.noun}es" if self.noun.endswith(("s", "x", "ch", "sh")) else f"{self.noun}s"

    def __post_init__(self) -> None:
        _check_verbs(self.verbs, f"saga {self.name}")
        if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", self.id_field):
            raise ValueError(f"saga {self.name}: id_field {self.id_field!r}: use snake_case (letters, digits and _)")
        if not re.fullmatch(r"[a-z][a-z ]*[a-z]|[a-z]", self.noun):
            raise ValueError(f"saga {self.name}: noun {self.noun!r}: lower-case words, as a message uses them")
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", self.done_state) or self.done_state in {
            "RolledBack",
            "NeedsAttention",
        }:
            raise ValueError(f"saga {self.name}: done_state {self.done_state!r}: a PascalCase state name of its own")
        if not re.fullmatch(r"[a-z][a-z0-9]*", self.records) or self.records == "provider":
            raise ValueError(
                f"saga {self.name}: records {self.records!r}: lower-case letters and digits (a plural noun; not"
                " 'provider', which names each step's provider's ledger)"
            )
        resources = [step.resource for step in self.steps]
        if not resources:
            raise ValueError("a saga needs at least one step")
        if len(set(resources)) != len(resources):
            raise ValueError(f"every step needs its own resource: {resources}")
        if clash := set(resources) & {*self.sections, self.id_field, "recovery", "simulate"}:
            raise ValueError(f"a request section cannot be named like a step or a field: {sorted(clash)}")
        if self.id_field in {*self.sections, *RECORD_ATTRIBUTES}:
            raise ValueError(
                f"saga {self.name}: id_field {self.id_field!r} is already the name of a section or of an attribute the"
                " engine stores beside it"
            )
        kinds = [step.kind for step in self.steps]
        order = list(StepKind)  # compensatable, pivot, retriable: the order the steps must come in
        in_order = [order.index(kind) for kind in kinds] == sorted(order.index(kind) for kind in kinds)
        pivots = kinds.count(StepKind.PIVOT)
        if not in_order or pivots > 1 or (StepKind.RETRIABLE in kinds and not pivots):
            raise ValueError(
                "step kinds: compensatable steps, then at most one pivot, then retriable steps (only after a pivot):"
                f" {[kind.value for kind in kinds]}"
            )

    @property
    def pivot(self) -> StepSpec | None:
        """The point of no return, if the saga has one (then it can recover forward)."""
        return next((step for step in self.steps if step.kind is StepKind.PIVOT), None)
