"""What runtest.sh and attention.sh share as command-line programs: where their output goes, argument
errors, the errors that end a run before anything starts, stdout guarded against a reader that goes
away, SIGTERM handled as Ctrl-C. Their exit codes are in sagatools/exit_codes.py."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from sagatools.exit_codes import EXIT_OK, EXIT_USAGE
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from sagatools.view.terminal import ProgressObserver


def output_dir() -> Path:
    """Where a run's handler log and pages go unless told: `.runtest/` of the current directory, or
    $RUNTEST_DIR (the tests set it, so they never write into the user's own)."""
    return Path(os.environ.get("RUNTEST_DIR") or ".runtest")


def report_dir() -> Path:
    return output_dir() / "reports"


def parsed_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code when argparse has answered itself: 2 after its usage
    line (bad arguments), 0 after --help."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code else EXIT_OK


def human_output(out: TextIO) -> ProgressObserver:
    """The live progress and summaries a person reads (runtest.sh, attention.sh resolve)."""
    from sagatools.view import terminal  # rich: imported only where a person reads the output

    return terminal.human_output(out)


class UsageError(Exception):
    """Bad arguments or bad request files: reported in one message each, exit 2."""


class Terminated(BaseException):
    """SIGTERM arrived: handled like Ctrl-C (a BaseException, so no `except Exception` swallows it)."""


class Delivery(io.TextIOBase):
    """stdout as the results are written to it: a closed pipe or a full disk is remembered, not raised,
    so the sagas still run (their pages are written) and the exit status says what was not delivered."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failure: str | None = None

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                self._stream.write(text)
            except (OSError, ValueError) as error:
                self._fail(error)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self._stream.flush()
            except (OSError, ValueError) as error:
                self._fail(error)

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    def _fail(self, error: Exception) -> None:
        self.failure = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        # Nothing more will reach this stream: point the descriptor at /dev/null so the interpreter's
        # own flush at exit does not fail again on it.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)


def stream_open(stream: TextIO | None) -> bool:
    if stream is None:
        return False
    try:
        os.fstat(stream.fileno())
    except io.UnsupportedOperation:  # an in-memory stream (it is an OSError too: first)
        return not stream.closed
    except (OSError, ValueError):
        return False
    return True


def prepare_report_directory(directory: Path) -> None:
    """The pages' directory exists and takes a new file, or UsageError before anything runs."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--report {shown(str(directory))}: not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".runtest-check-"):
            pass
    except OSError as error:
        raise UsageError(
            f"--report {shown(str(directory))}: cannot write pages there ({error.strerror or error})"
        ) from None


def on_sigterm(_signal: int, _frame: FrameType | None) -> None:
    raise Terminated


def say(stream: TextIO, text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(text, file=stream, flush=True)


@contextlib.contextmanager
def taking_signals(before_start: Callable[[], object] | None) -> Iterator[None]:
    """For a tool's main(): SIGTERM raises Terminated while it runs (restored after), and `before_start`
    (the entry point handing Ctrl-C over, sagatools/entry.py) runs inside the caller's handling of both."""
    previous = None
    reporting = sys.unraisablehook
    sys.unraisablehook = _signal_again_if_lost(reporting)
    try:
        with contextlib.suppress(ValueError):  # only the main thread can take signals
            previous = signal.signal(signal.SIGTERM, on_sigterm)
        if before_start is not None:
            before_start()
        yield
    except RuntimeError as error:
        # A signal that lands while a class is being made (an import) reaches us wrapped: Python reports
        # any exception of a descriptor's __set_name__ as a RuntimeError caused by it.
        if isinstance(error.__cause__, (KeyboardInterrupt, Terminated)):
            raise error.__cause__ from None
        raise
    finally:
        sys.unraisablehook = reporting
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _signal_again_if_lost(reporting: Callable[[Any], object]) -> Callable[[Any], None]:
    """An unraisable-exception hook for a tool's run. Ctrl-C or SIGTERM that lands while a finalizer runs (a pipe's
    __del__ closing it) cannot leave the finalizer: Python prints it as "Exception ignored … Traceback" and drops
    it. This one sends the signal again instead, so it ends the run a moment later, in one line as ever; anything
    else is reported as before."""

    def hook(unraisable: Any) -> None:
        lost = unraisable.exc_value
        number = signal.SIGINT if isinstance(lost, KeyboardInterrupt) else signal.SIGTERM
        if not isinstance(lost, (KeyboardInterrupt, Terminated)):
            reporting(unraisable)
            return
        # Sent from another thread once this hook has returned: its handler, run inside the hook, would be lost too.
        again = threading.Timer(0.01, signal.raise_signal, (number,))
        again.daemon = True
        again.start()

    return hook
