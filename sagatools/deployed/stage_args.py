"""Prints `STAGE REGION PROFILE` (PROFILE `-` for the default chain) as build.sh chooses them.

With --check-credentials it first asks STS who the credentials are, so a missing profile, missing
credentials or an unreachable region stop a deploy with one sentence instead of a CLI stack trace.
"""

import sys

from botocore.exceptions import BotoCoreError, ClientError

from sagatools.deployed.stage import Stage, StageError, explain

if __name__ == "__main__":
    arguments = sys.argv[1:]
    check = "--check-credentials" in arguments
    positional = [argument for argument in arguments if argument != "--check-credentials"]
    try:
        stage = Stage.choose(*([*positional, None, None, None])[:3])
    except StageError as error:
        sys.exit(f"build.sh: {error}")
    if check:
        try:
            identity = stage.client("sts").get_caller_identity()
        except StageError as error:
            sys.exit(f"build.sh: {error}")
        except (BotoCoreError, ClientError) as error:
            sys.exit(f"build.sh: {explain(error, stage)}")
        print(f"Using {stage.describe()}, account {identity['Account']}.", file=sys.stderr)
    print(stage.name, stage.region, stage.profile or "-")
