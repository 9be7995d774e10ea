"""The first code runtest.sh and attention.sh run: Ctrl-C and SIGTERM end them cleanly from the first
instant to the last.

The scripts start the interpreter with both signals blocked (`env --block-signal`), so one sent while it
starts stays pending: the handlers are installed first, then the signals are unblocked, and a pending
one ends the command at once, in one line. The tool's imports (boto3, pydantic, moto) take a second or
two, and nothing has started then. Inside the tool's `main()` the tool handles them itself (Ctrl-C as
KeyboardInterrupt, SIGTERM as `Terminated`). Once it returns, the process ends without the interpreter's
teardown of moto's state (about half a second, and one more window for a traceback).

Any locale and any TZ: what the terminal's encoding cannot show is escaped (\\u674e), never an error that
loses the results; a zone the libraries cannot use (TZ=XYZ+24:30 is legal POSIX, 24.5 hours from UTC) is
ignored and times are shown in UTC.
"""

import codecs
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import NoReturn

from sagatools.exit_codes import EXIT_INTERRUPTED, EXIT_NOT_DELIVERED, EXIT_TERMINATED

SIGNALS = {signal.SIGINT: ("interrupted", EXIT_INTERRUPTED), signal.SIGTERM: ("terminated", EXIT_TERMINATED)}


ESCAPES = "sagatools.json_escapes"  # the error handler below, by its registered name


def _json_escapes(error: UnicodeError) -> tuple[str, int]:
    """What an encoding cannot write, as JSON writes it: \\u674e (a UTF-16 pair past U+FFFF). Readable on a
    terminal, and JSON text stays valid JSON (backslashreplace would write \\xf3, which JSON refuses)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    units = error.object[error.start : error.end].encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)), error.end


def usable_stdio() -> None:
    """stdout and stderr escape what their encoding cannot write: an ISO-8859-1 terminal shows a name in
    Chinese as \\u674e instead of the run ending in UnicodeEncodeError and its results lost."""
    codecs.register_error(ESCAPES, _json_escapes)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # None: started with that descriptor closed
        if reconfigure is not None:
            reconfigure(errors=ESCAPES)


def usable_time_zone() -> None:
    """TZ set to UTC (for this process and what it starts) when the local zone is one datetime refuses:
    dateutil's tzlocal(), which botocore gives every timestamp it reads, would raise on each of them."""
    try:
        offsets = (time.timezone, time.altzone, time.localtime().tm_gmtoff)
        usable = all(abs(offset) < 24 * 3600 for offset in offsets)  # a tzinfo's offset is under a day
    except (OverflowError, OSError, ValueError):
        usable = False
    if not usable:
        os.environ["TZ"] = "UTC"
        time.tzset()


def run_guarded(tool: str, load_main: Callable[[], Callable[..., int]]) -> NoReturn:
    """Run `tool`'s main (imported by `load_main`, under the guard) and end the process with its code."""
    # pydantic looks for plugins in every installed distribution's entry points when the first model is made
    # (about 10 ms over .venv's 80-odd); the tools use none. PYDANTIC_DISABLE_PLUGINS is pydantic's own switch.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

    def leave(number: int, _frame: object) -> None:
        word, code = SIGNALS[signal.Signals(number)]
        os.write(2, f"{tool}: {word}\n".encode())
        os._exit(code)

    for number in SIGNALS:
        signal.signal(number, leave)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(SIGNALS))
    usable_stdio()
    usable_time_zone()

    import logging

    main = load_main()
    code = main(before_start=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    for number in SIGNALS:
        signal.signal(number, leave)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with that descriptor closed
                stream.flush()
        except (OSError, ValueError):
            code = code or EXIT_NOT_DELIVERED  # output the tool could not hand over is a failure to deliver, as ever
    os._exit(code)
