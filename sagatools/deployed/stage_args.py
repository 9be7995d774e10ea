"""Prints `STAGE REGION PROFILE` (PROFILE `-` for the default chain) as build.sh chooses them.

    python -m sagatools.deployed.stage_args [--check-credentials] [STAGE [REGION [PROFILE]]]

With --check-credentials it first asks STS who the credentials are, so a missing profile, missing
credentials or an unreachable region stop a deploy with one sentence instead of a CLI stack trace.
"""

from __future__ import annotations

import argparse
import sys

from botocore.exceptions import BotoCoreError, ClientError

from sagatools.cli import parsed_arguments
from sagatools.deployed.stage import Stage, StageError, explain
from sagatools.exit_codes import EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build.sh", allow_abbrev=False)
    parser.add_argument("stage", nargs="?")
    parser.add_argument("region", nargs="?")
    parser.add_argument("profile", nargs="?")
    parser.add_argument("--check-credentials", action="store_true", help="ask STS who the credentials are first")
    args = parsed_arguments(parser, argv)
    if isinstance(args, int):
        return args
    try:
        stage = Stage.choose(args.stage, args.region, args.profile)
        if args.check_credentials:
            identity = stage.client("sts").get_caller_identity()
            print(f"Using {stage.describe()}, account {identity['Account']}.", file=sys.stderr)
    except StageError as error:
        sys.exit(f"build.sh: {error}")
    except (BotoCoreError, ClientError) as error:
        sys.exit(f"build.sh: {explain(error, stage)}")
    print(stage.name, stage.region, stage.profile or "-")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
