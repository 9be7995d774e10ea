"""runtest.sh's entry point: Ctrl-C and SIGTERM end the run cleanly from its first instant.

The runner's imports (boto3, pydantic, moto) take a second or two; a signal in that time must not print
a traceback either, so the handlers are in place before them. Nothing has started then: exit at once.
"""

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType


def _leave(word: str, code: int) -> Callable[[int, FrameType | None], None]:
    def handler(_signal: int, _frame: FrameType | None) -> None:
        os.write(2, f"runtest: {word}\n".encode())
        os._exit(code)

    return handler


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _leave("interrupted", 130))
    signal.signal(signal.SIGTERM, _leave("terminated", 143))
    from sagatools.runner import main

    # From here the runner handles them itself (KeyboardInterrupt, and its own SIGTERM handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(main())
