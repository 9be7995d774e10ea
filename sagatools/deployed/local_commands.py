"""./build.sh local start|stop|status|url: the local endpoint's commands and what they print.

python -m sagatools.deployed.local_commands start|stop|status|url
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from typing import TextIO

from sagatools.cli import parsed_arguments
from sagatools.deployed.local_endpoint import (
    STATE_DIR,
    EndpointNotRunning,
    credentials_file,
    read_state,
    running_endpoint,
    start,
    stop,
)
from sagatools.deployed.local_stages import deployed_stages
from sagatools.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from sagatools.fake_credentials import EndpointCredentials


def status(out: TextIO) -> int:
    endpoint = read_state()
    if endpoint is None:
        print("local endpoint: not running (start it with ./build.sh local start)", file=out)
        return EXIT_OK
    uptime = int(time.time() - endpoint.started_at)
    answers = endpoint.answers()
    busy = "" if answers else " (busy: it did not answer a probe within 2 s)"
    print(f"local endpoint: running at {endpoint.url}{busy}", file=out)
    print(f"  pid       {endpoint.pid}", file=out)
    print(f"  uptime    {uptime // 3600}h {uptime % 3600 // 60}m {uptime % 60}s", file=out)
    print(f"  handlers  {endpoint.python}", file=out)
    # not asked of a busy one: it would keep status waiting
    stages = deployed_stages(endpoint.url, EndpointCredentials.read(credentials_file())) if answers else None
    listed = "(it did not answer in time)" if stages is None else ", ".join(stages) or "none deployed, in any region"
    print(f"  stages    {listed}", file=out)
    print(f"  state     {STATE_DIR}", file=out)
    return EXIT_OK


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(prog="./build.sh local", allow_abbrev=False)
    parser.add_argument("command", choices=["start", "stop", "status", "url"])
    with contextlib.redirect_stderr(err):
        args = parsed_arguments(parser, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    try:
        return _command(args.command, out, err)
    except BrokenPipeError:  # `status | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _command(command: str, out: TextIO, err: TextIO) -> int:
    try:
        if command == "start":
            start(out, err)
        elif command == "stop":
            print("local endpoint stopped" if stop(err) else "local endpoint: not running", file=err)
        elif command == "status":
            return status(out)
        else:
            print(running_endpoint().url, file=out)
    except EndpointNotRunning as error:
        print(f"local endpoint: {error}", file=err)
        return EXIT_USAGE
    except subprocess.CalledProcessError as error:
        print(f"local endpoint: preparing the handlers' runtime failed ({error})", file=err)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
