"""runtest.sh's command line: its arguments, the order of a run (check everything, run, write pages),
and what it prints (live progress and summaries, or --json) with its exit status (sagatools/runtest/)."""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from saga.keys import ID_FIELD, NOUN, NOUNS
from sagatools.cli import (
    Delivery,
    Terminated,
    UsageError,
    human_output,
    parsed_arguments,
    prepare_report_directory,
    report_dir,
    say,
    stream_open,
    taking_signals,
)
from sagatools.deployed.stage import Stage, StageError
from sagatools.emulation.changes import MotoUnsupported
from sagatools.exit_codes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    EXIT_SAGA_FAILED,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from sagatools.request_files import RequestFileError, load_request_files
from sagatools.results import Outcome, SagaResult
from sagatools.runtest.shards import ShardError
from sagatools.runtest.stacks import RunResult, run_embedded, run_on_stage
from sagatools.terminal_text import shown, shown_lines
from sagatools.view.html_page import write_page

if TYPE_CHECKING:
    from collections.abc import Callable

SHOW_REPORT_PATHS = 5  # beyond this many pages, name the folder
COORDINATORS = ("stepfunctions", "durable")


def exit_code(reports: list[SagaResult]) -> int:
    clean = {Outcome.COMMITTED, Outcome.ROLLED_BACK}
    return EXIT_OK if all(report.outcome in clean for report in reports) else EXIT_SAGA_FAILED


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive, finite number of seconds")
    return seconds


def _name(option: str) -> Callable[[str], str]:
    def named(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{option} needs a name, not an empty string")
        return text

    return named


def arguments_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runtest.sh",
        description="Run sagas on the embedded stack (default) or on a deployed stage.",
        allow_abbrev=False,  # --js is not --json: every option is spelled out
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=f"{NOUN} request JSON file(s)")
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")
    parser.add_argument(
        "--stage", type=_name("--stage"), help="run on this deployed stage instead of the embedded stack"
    )
    parser.add_argument("--region", type=_name("--region"), help="AWS region of the stage")
    parser.add_argument("--profile", type=_name("--profile"), help="AWS profile to use")
    parser.add_argument(
        "--coordinator",
        choices=COORDINATORS,
        help=f"what coordinates the {NOUNS}: on the embedded stack the state machine (stepfunctions, the default) or"
        " the durable function (durable); with --stage, the stage's own (its stack says which), so this only checks it",
    )
    parser.add_argument("--logs", action="store_true", help="show the handlers' JSON logs on stderr")
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=600.0,
        help=f"seconds to wait for the {NOUNS}, from the start (600)",
    )
    parser.add_argument(
        "--report",
        default=str(report_dir()),
        metavar="DIR",
        help=f"write one HTML page per execution into this directory ({report_dir()})",
    )
    return parser


def main(
    argv: list[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    before_start: Callable[[], object] | None = None,
) -> int:
    """`before_start` runs inside the handling of KeyboardInterrupt and Terminated, before anything else:
    the entry point hands Ctrl-C over to the runner there, so no signal falls between two handlers."""
    err = stderr or sys.stderr or io.StringIO()
    try:
        with taking_signals(before_start):
            return _main(sys.argv[1:] if argv is None else argv, stdout if stdout is not None else sys.stdout, err)
    except KeyboardInterrupt:
        # Started executions go on (on a stage) or end with the process (embedded).
        say(err, "runtest: interrupted")
        return EXIT_INTERRUPTED
    except Terminated:
        say(err, "runtest: terminated")
        return EXIT_TERMINATED


def _main(argv: list[str], raw_out: TextIO | None, err: TextIO) -> int:
    args = parsed_arguments(arguments_parser(), argv)
    if isinstance(args, int):
        return args
    if not stream_open(raw_out):
        say(err, "runtest: stdout is closed, so no result could be delivered; nothing was run")
        return EXIT_NOT_DELIVERED
    assert raw_out is not None
    out = cast("TextIO", Delivery(raw_out))
    report_dir = Path(args.report)
    human = None
    try:
        if args.stage is None and (args.region or args.profile):
            raise UsageError("--region and --profile go with --stage (the embedded stack needs neither)")
        prepare_report_directory(report_dir)
        sagas = load_request_files(args.files)
        human = None if args.json else human_output(out)
        if args.stage is None and args.coordinator == "durable":
            # Only a durable run needs it: the default run's start-up stays as docs/BENCHMARKS.md measures it.
            from sagatools.runtest.durable import run_durable

            result = run_durable(sagas, human, args.logs, args.timeout, err)
        elif args.stage is None:
            result = run_embedded(sagas, human, args.logs, args.timeout, err)
        else:
            stage = Stage.choose(args.stage, args.region, args.profile)
            say(err, f"runtest: running on {stage.describe()}")
            result = run_on_stage(sagas, stage, human, args.timeout, args.coordinator)
    except (UsageError, StageError, RequestFileError, MotoUnsupported) as error:
        say(err, "\n".join(f"runtest: {line}" for line in shown_lines(str(error)).splitlines()))
        return EXIT_USAGE
    except ShardError as error:
        say(err, f"runtest: {error}")
        return EXIT_FAILED
    finally:
        if human is not None:
            human.close()
    pages = write_pages(result, report_dir, err)
    if args.json:
        documents = [
            {**report.model_dump(mode="json"), "report": str(pages[report.execution_arn] or "")}
            for report in result.reports
        ]
        print(json.dumps(documents if len(args.files) > 1 else documents[0], indent=2), file=out)
        say(err, f"runtest: execution reports in {shown(str(report_dir))}/")
    else:
        assert human is not None
        human.summaries(result.reports)
        unique = [page for page in dict.fromkeys(pages.values()) if page is not None]
        if len(unique) <= SHOW_REPORT_PATHS:
            for path in unique:
                print(f"report: {shown(str(path))}", file=out)
        else:
            print(f"reports: {len(unique)} pages in {shown(str(report_dir))}/ (one per {ID_FIELD})", file=out)
    out.flush()
    failure = cast("Delivery", out).failure
    if failure is not None:
        say(
            err,
            f"runtest: the results could not be written to stdout ({failure}); {len(result.reports)} "
            f"{NOUN if len(result.reports) == 1 else NOUNS} ran, their pages are in {shown(str(report_dir))}/",
        )
        return EXIT_NOT_DELIVERED
    return exit_code(result.reports)


def write_pages(result: RunResult, directory: Path, err: TextIO) -> dict[str, Path | None]:
    """One HTML page per execution this run started, by execution ARN; a page that cannot be written is a
    warning, never a lost result (None)."""
    pages: dict[str, Path | None] = {}
    for report in result.reports:
        if report.execution_arn in pages:
            continue
        if report.outcome is Outcome.CONFLICT:
            # Not this run's execution: its page (under the same saga id) belongs to the run that started it.
            pages[report.execution_arn] = None
            continue
        try:
            pages[report.execution_arn] = write_page(
                directory, result.definition, result.histories[report.execution_arn], report
            )
        except OSError as error:
            pages[report.execution_arn] = None
            say(err, f"runtest: warning: the page of {report.saga_id} was not written ({error.strerror or error})")
    return pages


if __name__ == "__main__":
    sys.exit(main())
