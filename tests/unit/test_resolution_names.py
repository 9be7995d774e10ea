"""A resolution's execution name: <saga_id>-resolve-<n>, within the coordinator's bound on an execution's name."""

from __future__ import annotations

from sagatools.attention.coordinators import DurableFunction, StateMachines
from sagatools.attention.stage_view import resolution_name


def test_a_resolution_is_named_after_its_saga_and_its_number():
    assert resolution_name("trip-0001", 3) == "trip-0001-resolve-3"
    assert resolution_name("trip-0001", 3, DurableFunction.name_limit) == "trip-0001-resolve-3"


def test_every_saga_ids_resolution_fits_a_state_machines_name_unchanged():
    longest = "t" * 64  # a saga id's bound
    assert resolution_name(longest, 999, StateMachines.name_limit) == f"{longest}-resolve-999"


def test_a_long_saga_ids_resolution_fits_the_durable_functions_names_and_stays_its_own():
    first, second = "a" * 50 + "-first-of-them", "a" * 50 + "-other-of-them"  # 64 characters, one long prefix
    limit = DurableFunction.name_limit
    names = [resolution_name(saga_id, number, limit) for saga_id in (first, second) for number in (1, 12)]
    assert all(len(name) <= limit for name in names)
    assert len(set(names)) == len(names)  # two sagas' resolutions never share a name
    assert names[0].startswith(first[:40])
    assert names[0].endswith("-resolve-1")
    assert resolution_name(first, 1, limit) == names[0]  # found again by the same name
