"""Every figure the README and its pages in docs/ state, checked: limits and policies against the code that
sets them, and the states a saga enters against real runs on the embedded stack. A figure the documentation
drops or rewords fails here until its check is moved with it. And the README stays short, and every link
between these pages leads somewhere."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import get_args

import pytest
from pydantic import StringConstraints

from saga.catalogue import REQUESTS, RETRIABLES, compensation_of
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.request_fields import MAX_ALTERNATIVES, SAGA_ID_PATTERN, Text
from saga.spec import COMPENSATION_RETRY, FORWARD_DEADLINE_SECONDS, FORWARD_RETRY, REQUEST_RETRY
from sagatools import exit_codes, request_files
from sagatools.bench_aws import PRICES, rollback_scenario
from sagatools.deployed.stage import LOCAL_CLIENT_CONFIG
from sagatools.emulation.embedded import TIMEOUT_SCALE
from sagatools.emulation.execution_environment import INIT_LIMIT_SECONDS
from sagatools.emulation.warm_lambda import ENVIRONMENTS_PER_FUNCTION, LOG_ROTATE_BYTES
from sagatools.executions import ExecutionWatcher
from sagatools.results import Outcome, build_report, resolution_outcome_of
from sagatools.runtest.cli import arguments_parser
from sagatools.runtest.shards import SAGAS_PER_SHARD, shard_count
from sagatools.runtest.stacks import STAGE_GRACE_SECONDS
from sagatools.view.terminal import COMPACT_ABOVE
from tests.embedded.test_fault_matrix import CASES, FORWARD_CASES
from tests.embedded.test_soak import DUPLICATES, SOAK_SAGAS
from tests.helpers import APP_DIR, ROOT, book_step, cancel_step, saga_request

# The hand-written documentation: the README and its pages (BENCHMARKS.md is written by ./build.sh bench).
PAGES = [ROOT / "README.md", *sorted(path for path in (ROOT / "docs").glob("*.md") if path.name != "BENCHMARKS.md")]
# Each page on one line: a figure may wrap anywhere (pages are kept apart: a figure never spans two).
TEXTS = {path: " ".join(path.read_text(encoding="utf-8").split()) for path in PAGES}
# The README fits in 300 lines with the three-step trip saga, whose generated diagrams take 114 of them. The
# hand-written part is held to the rest, so a saga with more steps grows only its diagrams.
HAND_WRITTEN_LINES = 300 - 114
# The README shows one app's definition and states its figures (states entered, billed transitions, its
# examples): they are checked against runs when that app is the one served, and the engine's figures always.
README_APP = f'SAGA = SagaSpec( name="{SAGA.name}"' in TEXTS[ROOT / "README.md"]  # its definition's block
documented_app = pytest.mark.skipif(
    not README_APP, reason="the README's figures are of another app than the served one"
)
TEXT = next(rule for rule in get_args(Text)[1:] if isinstance(rule, StringConstraints))  # a request's strings


def stated(pattern: str) -> tuple[str, ...]:
    """The groups of the one sentence of the documentation matching `pattern` (whitespace as one space)."""
    found = [match for text in TEXTS.values() for match in re.findall(pattern, text)]
    assert len(found) == 1, f"the README or one page of docs/ should state this once: {pattern}"
    return found[0] if isinstance(found[0], tuple) else (found[0],)


LIMITS = {
    r"at most (\d+) problems shown per file": (request_files.MAX_PROBLEMS_SHOWN,),
    r"regular file of at most (\d+) MB": (request_files.MAX_FILE_BYTES // 2**20,),
    r"nested at most (\d+) levels, numbers at most (\d+) digits": (
        request_files.MAX_DEPTH,
        request_files.MAX_NUMBER_DIGITS,
    ),
    r"a batch of more than (\d+) trips shows, instead of each trip.s summary, one line per trip": (COMPACT_ABOVE,),
    r"A batch of (\d+) trips or more on the embedded stack runs on every core": (
        next(n for n in range(1, 1000) if shard_count(n, cores=2) > 1),
    ),
    r"one process per core with at least (\d+) trips each": (SAGAS_PER_SHARD,),
    r"`--timeout SECONDS` \(default (\d+),": (int(arguments_parser().get_default("timeout")),),
    r"`\w+_id` (\d+)\u2013(\d+) of": tuple(map(int, re.findall(r"\{(\d+),(\d+)\}", SAGA_ID_PATTERN.pattern)[0])),
    r"up to (\d+) other company names": (MAX_ALTERNATIVES,),
    r"strings (\d+)\u2013(\d+) characters": (TEXT.min_length, TEXT.max_length),
    r"a whole number from (\d+) to (\d+) \(default (\d+)\)": (
        FORWARD_DEADLINE_SECONDS[0],
        FORWARD_DEADLINE_SECONDS[2],
        FORWARD_DEADLINE_SECONDS[1],
    ),
    r"`TransientDataAccessError` \((\d+) retries, (\d+) s \u00d7 2\u207f backoff, at most (\d+) s": (
        REQUEST_RETRY.max_attempts,
        REQUEST_RETRY.interval_seconds,
        REQUEST_RETRY.max_delay_seconds,
    ),
    r"\*\*Stuck compensations\*\*: retried (\d+) times": (COMPENSATION_RETRY.max_attempts,),
    r"retried slowly: (\d+) s, doubling, at most (\d+) min between attempts": (
        FORWARD_RETRY.interval_seconds,
        FORWARD_RETRY.max_delay_seconds // 60,
    ),
    r"`transient:(\d+)` commits \(the \d+th attempt starts at (\d+) s\) and `transient:(\d+)` needs attention "
    r"\(the \d+th would start at (\d+) s\)": (
        # The last that fits into the default deadline, and the first that does not.
        last_in := max(n for n in range(1, 30) if FORWARD_RETRY.waited(n) <= FORWARD_DEADLINE_SECONDS[1]),
        int(FORWARD_RETRY.waited(last_in)),
        last_in + 1,
        int(FORWARD_RETRY.waited(last_in + 1)),
    ),
    r"`tests/embedded/test_soak.py`: (\d+) trips with seeded random faults at once, (\d+) of them duplicates": (
        SOAK_SAGAS,
        DUPLICATES,
    ),
    r"task timeouts are scaled (\d+)x": (TIMEOUT_SCALE,),
    r"\((\d+) s to connect, (\d+) s to answer, (\d+) attempts\)": (
        LOCAL_CLIENT_CONFIG.connect_timeout,
        LOCAL_CLIENT_CONFIG.read_timeout,
        LOCAL_CLIENT_CONFIG.retries["max_attempts"],
    ),
    r"ends at most (\d+) s after its `--timeout`": (int(STAGE_GRACE_SECONDS),),
    r"up to (\d+) at once per function": (ENVIRONMENTS_PER_FUNCTION,),
    r"\(the Init phase\) has its own (\d+) s limit": (INIT_LIMIT_SECONDS,),
    r"a function's log is rotated past (\d+) MB": (LOG_ROTATE_BYTES // 2**20,),
    r"Exit status: \*\*(\d+)\*\* every saga ended .{0,60}?\*\*(\d+)\*\* any .{0,100}?\*\*(\d+)\*\* usage errors"
    r".{0,120}?\*\*(\d+)\*\* the sagas ran .{0,200}?\*\*(\d+)\*\* interrupted by Ctrl-C, \*\*(\d+)\*\* terminated": (
        exit_codes.EXIT_OK,
        exit_codes.EXIT_SAGA_FAILED,
        exit_codes.EXIT_USAGE,
        exit_codes.EXIT_NOT_DELIVERED,
        exit_codes.EXIT_INTERRUPTED,
        exit_codes.EXIT_TERMINATED,
    ),
    r"exit codes (\d+) / (\d+) / (\d+) / (\d+) / (\d+) / (\d+)\.": (
        exit_codes.EXIT_OK,
        exit_codes.EXIT_FAILED,
        exit_codes.EXIT_USAGE,
        exit_codes.EXIT_NOT_DELIVERED,
        exit_codes.EXIT_INTERRUPTED,
        exit_codes.EXIT_TERMINATED,
    ),
}


@pytest.mark.parametrize("pattern", LIMITS, ids=[pattern[:48] for pattern in LIMITS])
def test_a_limit_or_policy_the_readme_states_is_the_one_the_code_sets(pattern):
    assert tuple(map(int, stated(pattern))) == LIMITS[pattern]


@documented_app
def test_the_fault_matrix_is_as_large_as_the_docs_say():
    # Its size follows from the steps: the figures stated are the documented app's.
    pattern = (
        r"\{refused, crash after write, late, transient:1, transient:5\} x every compensation x \{transient:1, "
        r"transient:5, stuck\}, (\d+) sagas, and (\d+) more in forward recovery"
    )
    assert tuple(map(int, stated(pattern))) == (len(CASES), len(FORWARD_CASES))


@documented_app
def test_the_readme_prices_each_coordinator_as_the_bench_measured():
    # "Choosing a coordinator": a success and a rollback at the last step, as docs/BENCHMARKS.md's cost per
    # coordinator (written by ./build.sh bench) has them, at the prices bench_aws.PRICES holds.
    found = stated(
        r"\| \$(\d+) / \$(\d+): (\d+) / (\d+) transitions at \$(\d+) per million \| \$(\d+) / \$(\d+): (\d+) / (\d+)"
        r" operations at \$(\d+) per million \|"
    )
    table = (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8").split("## Cost per coordinator", 1)[1]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 8:
            rows[cells[0]] = cells
    success, rollback = rows["success"], rows[rollback_scenario(REQUESTS[-1].resource)]
    measured = (
        round(float(success[4])),
        round(float(rollback[4])),
        int(success[2]),
        int(rollback[2]),
        round(PRICES["state transition (Standard)"] * 1_000_000),
        round(float(success[7])),
        round(float(rollback[7])),
        int(success[5]),
        int(rollback[5]),
        round(PRICES["durable operation (Lambda durable functions)"] * 1_000_000),
    )
    assert tuple(map(int, found)) == measured


@documented_app
def test_the_forward_example_the_docs_name_has_the_faults_they_state():
    (last,) = (step for step in REQUESTS if step.spec.alternatives_for)
    (retried,) = stated(rf"`forward-retried-{last.resource}` \((\d+) passing faults, commits\)")
    example = json.loads((APP_DIR / "examples" / f"forward-retried-{last.resource}.json").read_text())
    assert example["simulate"][last.name] == f"transient:{retried}"


@documented_app
def test_the_readme_counts_states_as_the_sagas_enter_them(run_saga):
    # The counts of "Failure semantics", each one the run of a request on the real ASL.
    first, middle, last = (step.resource for step in REQUESTS)
    counts = stated(
        rf"States entered \(`transitions` in `--json`\): (\d+) on success, (\d+) for a failure at the {last} step "
        rf"\((\d+) at the {first} step, (\d+) at the {middle} step\)"
    )
    success, at_last, at_first, at_middle = map(int, counts)
    assert stated(r"the normal saga path is unchanged \((\d+) transitions on success\)") == (str(success),)
    assert run_saga(saga_request("fig-success")).transitions == success
    for resource, expected in ((first, at_first), (middle, at_middle), (last, at_last)):
        refused = run_saga(saga_request(f"fig-refused-{resource}", simulate={book_step(resource): "fail"}))
        assert (refused.outcome, refused.transitions) == (Outcome.ROLLED_BACK, expected), resource
    # With n steps, a success enters n + 1 states and a rollback at the last step 2n + 1.
    assert stated(r"a success enters n \+ (\d+) states and a rollback at the last step 2n \+ (\d+)") == ("1", "1")
    assert (success, at_last) == (len(SAGA.steps) + 1, 2 * len(SAGA.steps) + 1)
    # A stuck compensation adds one state (its record); the middle step's: states and billed transitions.
    assert stated(r"a stuck compensation adds (one) state for its record") == ("one",)
    states, billed, retries = map(
        int,
        stated(
            rf"a stuck compensation at the {middle} step is (\d+) states and (\d+) billed transitions"
            r" \(its (\d+) retries\)"
        ),
    )
    stuck = run_saga(saga_request("fig-stuck", simulate={book_step(last): "fail", cancel_step(middle): "fail"}))
    assert stuck.outcome is Outcome.NEEDS_ATTENTION
    assert (stuck.transitions, stuck.billed_transitions) == (states, billed) == (at_last + 1, at_last + 1 + retries)
    assert retries == compensation_of(middle).retry.max_attempts


@documented_app
def test_the_readme_counts_forward_recovery_as_it_runs(run_saga):
    last = REQUESTS[-1].resource
    lost_states, lost_billed, alternative_states = map(
        int,
        stated(
            rf"a lost response at the {last} commits in (\d+) states and its retry \((\d+) billed transitions\);"
            r" a refusal taken by an alternative in (\d+)"
        ),
    )
    assert stated(rf"`forward-lost-response-{last}` \(commits, (\d+) billed\)") == (str(lost_billed),)
    forward = {"mode": "forward", "deadline_seconds": FORWARD_DEADLINE_SECONDS[1]}
    lost = run_saga(saga_request("fig-lost", simulate={book_step(last): "crash_after_write"}, recovery=forward))
    assert (lost.outcome, lost.transitions, lost.billed_transitions) == (Outcome.COMMITTED, lost_states, lost_billed)
    request = saga_request("fig-alternative", simulate={book_step(last): "fail:1"}, recovery=forward)
    request[last]["alternatives"] = ["Another Provider Co"]
    taken = run_saga(request)
    assert (taken.outcome, taken.transitions) == (Outcome.COMMITTED, alternative_states)


def _resolve(stack, reader, request: dict, name: str, direction: str) -> int:
    document = {"request": request, "requested_by": "test", "direction": direction}
    arn = stack.stepfunctions.start_execution(
        stateMachineArn=stack.resolution_state_machine_arn, name=name, input=json.dumps(document)
    )["executionArn"]
    watcher = ExecutionWatcher(stack.stepfunctions, stack.resolution_state_machine_arn, 0.005)
    description = watcher.wait({arn: request[ID_FIELD]}, time.monotonic() + 120)[arn]
    report = build_report(
        name, request[ID_FIELD], description, watcher.history(arn), reader, False, resolution_outcome_of
    )
    assert report.outcome is Outcome.RESOLVED
    return report.transitions


@documented_app
def test_the_readme_counts_a_resolutions_states_as_it_runs(stack, run_saga, reader):
    first, last = REQUESTS[0].resource, REQUESTS[-1].resource
    backward, forward = map(
        int,
        stated(
            rf"A resolution that succeeds enters (\d+) states .{{0,120}}? one that finishes a {SAGA.noun} forward"
            r" enters (\d+)"
        ),
    )
    stuck = saga_request("fig-resolve", simulate={book_step(last): "fail", cancel_step(first): "fail"})
    assert run_saga(stuck).outcome is Outcome.NEEDS_ATTENTION
    assert _resolve(stack, reader, saga_request("fig-resolve"), "fig-resolve-resolve-1", "backward") == backward
    assert RETRIABLES, "the forward count needs a step past the pivot"
    recovery = {"mode": "forward", "deadline_seconds": FORWARD_DEADLINE_SECONDS[0]}
    unfinished = saga_request("fig-finish", simulate={book_step(last): "transient:20"}, recovery=recovery)
    assert run_saga(unfinished).outcome is Outcome.NEEDS_ATTENTION
    again = saga_request("fig-finish", recovery=recovery)
    assert _resolve(stack, reader, again, "fig-finish-resolve-1", "forward") == forward


def hand_written(lines: list[str]) -> list[str]:
    """The lines of the README outside its generated diagrams and their markers."""
    kept, generating = [], False
    for line in lines:
        if generating:
            generating = not re.fullmatch(r"<!-- .* end -->", line)
        elif "generated by ./build.sh generate -->" in line:
            generating = True
        else:
            kept.append(line)
    return kept


def test_the_readme_starts_with_the_saga_and_stays_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    written = len(hand_written(lines))
    assert written <= HAND_WRITTEN_LINES, f"README.md has {written} hand-written lines: move detail to docs/"
    assert next(line for line in lines if line.startswith("## ")) == "## The saga"
    first_screen = "\n".join(lines[:40])
    assert "./runtest.sh test-booking-fail.json" in first_screen
    assert "./build.sh test" in first_screen


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings (code blocks left out)."""
    found, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if line.startswith("#") and not fenced:
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_link_of_the_documentation_leads_somewhere(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which is not there"
        if anchor:
            assert anchor in anchors(linked), f"{page.name} links to {target}: no such heading"
