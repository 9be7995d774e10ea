"""Prints `STAGE REGION PROFILE` (PROFILE `-` for the default chain) as build.sh chooses them."""

import sys

from sagatools.stage import Stage

if __name__ == "__main__":
    arguments = ([*sys.argv[1:], None, None, None])[:3]
    stage = Stage.choose(*arguments)
    print(stage.name, stage.region, stage.profile or "-")
