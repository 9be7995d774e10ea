"""attention.sh's command line: its arguments, which stage, and what each command prints (see
sagatools/attention/__init__.py for the commands and exit codes)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, cast

from botocore.exceptions import BotoCoreError, ClientError

from saga.keys import ID_FIELD, NOUN, NOUNS
from saga.request_fields import SAGA_ID_PATTERN, SAGA_ID_RULE
from sagatools.attention.printing import print_list, print_saga
from sagatools.attention.resolver import Resolver, SagaBusy, close_records
from sagatools.attention.stage_view import StageView, UnknownSaga
from sagatools.cli import (
    Delivery,
    Terminated,
    UsageError,
    parsed_arguments,
    prepare_report_directory,
    report_dir,
    taking_signals,
)
from sagatools.deployed.stage import Stage, StageError, explain
from sagatools.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SAGA_FAILED,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from sagatools.results import Outcome
from sagatools.terminal_text import shown


def arguments_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attention.sh", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "show", "resolve", "close"):
        command = commands.add_parser(name, allow_abbrev=False)
        if name == "show":
            command.add_argument("sagas", nargs=1, metavar=ID_FIELD.upper())
        elif name == "close":
            command.add_argument("sagas", nargs=1, metavar=ID_FIELD.upper())
            command.add_argument("--reason", required=True, help="why the records are closed without a resolution")
        elif name == "resolve":
            command.add_argument("sagas", nargs="+", metavar=ID_FIELD.upper())
            command.add_argument("--keep-faults", action="store_true", help="keep the request's simulated faults")
            command.add_argument(
                "--roll-back", action="store_true", help=f"undo the whole {NOUN}, even one left to finish forward"
            )
            command.add_argument("--report", default=str(report_dir()), metavar="DIR", help="where the pages go")
        else:
            command.add_argument("--all", action="store_true", help="resolved records too")
        command.add_argument("--stage", help="the deployed stage (required)")
        command.add_argument("--region")
        command.add_argument("--profile")
        command.add_argument("--json", action="store_true", help="print only JSON on stdout")
    return parser


def main(
    argv: list[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    before_start: Callable[[], object] | None = None,
    open_view: Callable[[Stage], StageView] = StageView.open,
) -> int:
    """`before_start`: as the runner's (sagatools/entry.py hands Ctrl-C over there). `open_view`: how the
    stage is reached (the tests hand it the embedded stack's)."""
    err = stderr or sys.stderr
    delivery = Delivery(stdout if stdout is not None else sys.stdout)
    try:
        with taking_signals(before_start):
            code = _main(sys.argv[1:] if argv is None else argv, cast("TextIO", delivery), err, open_view)
        delivery.flush()
        if delivery.failure is not None:
            print(f"attention: the results could not be written to stdout ({delivery.failure})", file=err)
            return EXIT_NOT_DELIVERED
        return code
    except KeyboardInterrupt:
        print("attention: interrupted", file=err)
        return EXIT_INTERRUPTED
    except Terminated:
        print("attention: terminated", file=err)
        return EXIT_TERMINATED


def _main(argv: list[str], out: TextIO, err: TextIO, open_view: Callable[[Stage], StageView]) -> int:
    args = parsed_arguments(arguments_parser(), argv)
    if isinstance(args, int):
        return args
    if not args.stage or not args.stage.strip():
        print(
            "attention: --stage is required: the embedded stack keeps nothing after a runtest.sh run, so only a "
            f"deployed stage (./build.sh deploy local, for one on this machine) has {NOUNS} to look after",
            file=err,
        )
        return EXIT_USAGE
    for saga_id in getattr(args, "sagas", []):
        if not SAGA_ID_PATTERN.fullmatch(saga_id):
            print(f"attention: {ID_FIELD} '{shown(saga_id)}': {SAGA_ID_RULE}", file=err)
            return EXIT_USAGE
    stage: Stage | None = None
    try:
        stage = Stage.choose(args.stage, args.region, args.profile)
        view = open_view(stage)
        if args.command == "list":
            records = view.records(include_resolved=args.all)
            if args.json:
                print(json.dumps([record.model_dump(mode="json") for record in records], indent=2), file=out)
            else:
                print_list(records, args.all, out)
            return EXIT_OK
        if args.command == "show":
            saga = view.saga(args.sagas[0])
            if args.json:
                print(saga.model_dump_json(indent=2), file=out)
            else:
                print_saga(saga, out)
            return EXIT_OK
        if args.command == "close":
            if not args.reason.strip() or not args.reason.isprintable():
                raise UsageError("--reason: say why, in printable text")
            closed = close_records(view, args.sagas[0], args.reason)
            if args.json:
                print(closed.model_dump_json(indent=2, exclude={"saga_log"}), file=out)
            else:
                print_saga(closed.model_copy(update={"saga_log": []}), out)
            return EXIT_OK
        report_dir = Path(args.report)
        prepare_report_directory(report_dir)
        resolver = Resolver(view, args.keep_faults, report_dir, out, err, args.roll_back)
        views = resolver.resolve(args.sagas, human=not args.json)
    except SagaBusy as error:
        print(f"attention: {error}", file=err)
        return EXIT_REFUSED
    except UnknownSaga as error:
        print(f"attention: {error}", file=err)
        return EXIT_USAGE
    except StageError as error:
        print(f"attention: {error}", file=err)
        return EXIT_USAGE
    except (BotoCoreError, ClientError) as error:
        print(f"attention: {explain(error, stage) if stage else error}", file=err)
        return EXIT_USAGE
    except UsageError as error:
        print(f"attention: {error}", file=err)
        return EXIT_USAGE
    documents = [view.model_dump(mode="json", exclude={"saga_log"}) for view in views]
    if args.json:
        print(json.dumps(documents if len(views) > 1 else documents[0], indent=2), file=out)
    else:
        for saga in views:
            print_saga(saga.model_copy(update={"saga_log": []}), out)
    if any(v.outcome == Outcome.NEEDS_ATTENTION.value for v in views):
        return EXIT_SAGA_FAILED
    return EXIT_REFUSED if resolver.not_as_asked else EXIT_OK
