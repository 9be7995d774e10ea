"""The local endpoint's process: local_server.py's main, or one sentence when the installed moto does not fit it.

local_server.py imports moto's server and the internals it changes as it loads: on a moto where those moved,
the import itself fails, and this says so in one line (in server.log, which `start` reports), never a
traceback.
"""

import contextlib
import os
import sys

from sagatools.emulation.changes import MADE_FOR, installed_moto


def main() -> int:
    try:
        from sagatools.emulation import local_server
    except ImportError as error:
        print(
            f"local endpoint: with moto {installed_moto()}, the endpoint does not start ({error}): it needs moto"
            f" {MADE_FOR}, as requirements-tools.txt pins it",
            file=sys.stderr,
        )
        return 2
    return local_server.main()


if __name__ == "__main__":
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    # Everything is closed and the lock released: the interpreter's teardown of moto's state (about half a
    # second) would only keep `stop` waiting.
    os._exit(code)
