"""The booking saga's domain: request models, errors, bookings, the saga log and its steps.

This package and `functions/` are what is deployed to Lambda; nothing here imports the tooling.
"""
