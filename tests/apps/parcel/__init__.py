"""The parcel: a small saga of the tests' own, unlike the trip in every way the engine lets an app differ.

Two steps and no pivot; its own id field (parcel_id), noun, records and done state; a verb pair per step
(buy/refund the postage, hire/dismiss a courier); the engine's own error names. tests/second_app.py runs
the engine's tests on it, in a copy of the project whose one setting names it.
"""
