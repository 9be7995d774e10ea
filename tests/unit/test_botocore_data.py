"""botocore's data, read once (sagatools/botocore_data.py): every loader still gets what botocore would
give it, and a copy of its own."""

from __future__ import annotations

from pathlib import Path

import botocore
import pytest
from botocore import loaders

from sagatools import botocore_data

DATA = Path(botocore.__file__).parent / "data"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(botocore_data, "_decoded", {})
    monkeypatch.setattr(botocore_data, "_listings", {})


@pytest.mark.parametrize("name", ["endpoints", "dynamodb/2012-08-10/service-2", "lambda/2015-03-31/service-2"])
def test_a_data_file_reads_as_botocore_reads_it_each_time_a_copy(name: str) -> None:
    path = str(DATA / name)
    expected = botocore_data._ORIGINAL_LOAD_FILE(loaders.JSONFileLoader(), path)
    first = botocore_data.load_file(loaders.JSONFileLoader(), path)
    botocore_data._decoded.clear()  # the next one comes from the disk cache
    second = botocore_data.load_file(loaders.JSONFileLoader(), path)
    assert first == second == expected
    assert type(first) is type(expected)  # botocore's OrderedDict, not a plain dict
    first["added by one caller"] = True
    assert "added by one caller" not in botocore_data.load_file(loaders.JSONFileLoader(), path)


def test_a_file_that_is_not_there_is_none_as_before() -> None:
    assert botocore_data.load_file(loaders.JSONFileLoader(), str(DATA / "no-such-service")) is None


def test_the_services_listed_are_botocores_list() -> None:
    loader = loaders.create_loader()
    expected = botocore_data._ORIGINAL_LIST_AVAILABLE_SERVICES(loaders.create_loader(), "service-2")
    assert botocore_data.list_available_services(loader, "service-2") == expected
    assert botocore_data.list_available_services(loaders.create_loader(), type_name="service-2") == expected
    assert "dynamodb" in expected
