"""The saga engine's runtime: request models, errors, records, the saga log and its steps.

This package and `functions/` are what is deployed to Lambda; nothing here imports the tooling.
"""
