"""botocore's data, read once (sagatools/botocore_data.py): every loader still gets what botocore would
give it, and a copy of its own."""

from __future__ import annotations

import os
import time
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
    monkeypatch.setattr(botocore_data, "_trees", {})


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


def a_new_process() -> None:
    """What a process that starts after this one has in memory: nothing."""
    botocore_data._decoded.clear()
    botocore_data._listings.clear()
    botocore_data._trees.clear()


def models(root: Path, *files: str) -> Path:
    """A search path holding `files` (service/version/type.json), every folder dated an hour ago."""
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    hour_ago = time.time() - 3600
    for folder in [root, *(path for path in root.rglob("*") if path.is_dir())]:
        os.utime(folder, (hour_ago, hour_ago))
    return root


def listed(search_path: Path, type_name: str = "service-2") -> list[str]:
    return botocore_data.list_available_services(loaders.Loader(extra_search_paths=[str(search_path)]), type_name)


def test_a_listing_stored_by_an_earlier_run_is_used_without_listing_again(tmp_path, monkeypatch) -> None:
    search_path = models(tmp_path / "models", "kept/2020-01-01/service-2.json")
    first = listed(search_path)
    assert "kept" in first
    a_new_process()

    def walked(*_: object) -> None:
        raise AssertionError("botocore listed the services again")

    monkeypatch.setattr(botocore_data, "_ORIGINAL_LIST_AVAILABLE_SERVICES", walked)
    assert listed(search_path) == first


@pytest.mark.parametrize(
    "change",
    [
        "a new service",
        "a new version of a service",
        "a type added to a version",
        "a service removed",
        "the search path created",
    ],
)
def test_a_stored_listing_is_not_used_once_a_folder_it_read_changed(change: str, tmp_path) -> None:
    root = tmp_path / "models"
    if change == "the search path created":
        assert "born" not in listed(root)  # no such folder yet: listed, and stored as absent
    else:
        models(root, "old/2020-01-01/service-2.json", "other/2020-01-01/paginators-1.json")
        assert listed(root).count("old") == 1
    a_new_process()
    if change == "a new service" or change == "the search path created":
        (root / "born/2021-01-01").mkdir(parents=True)
        (root / "born/2021-01-01/service-2.json").write_text("{}")
        assert "born" in listed(root)
    elif change == "a new version of a service":
        (root / "other/2021-01-01").mkdir()
        (root / "other/2021-01-01/service-2.json").write_text("{}")
        assert "other" in listed(root)
    elif change == "a type added to a version":
        (root / "other/2020-01-01/service-2.json").write_text("{}")
        assert "other" in listed(root)
    else:
        for name in ("old/2020-01-01/service-2.json", "old/2020-01-01", "old"):
            (root / name).unlink() if name.endswith(".json") else (root / name).rmdir()
        assert "old" not in listed(root)


def test_a_listing_is_not_used_once_its_folders_hold_other_names_under_their_old_times(tmp_path) -> None:
    # Given a listing stored for a search path whose folders are dated an hour ago
    root = models(tmp_path / "models", "old/2020-01-01/service-2.json")
    assert "born" not in listed(root)
    stat = root.stat()
    a_new_process()
    # When a service is added and the search path given its old time back (as a restore by tar does)
    (root / "born/2021-01-01").mkdir(parents=True)
    (root / "born/2021-01-01/service-2.json").write_text("{}")
    os.utime(root, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # Then the listing is made again, with the new service
    assert "born" in listed(root)


def test_a_data_file_restored_with_its_old_time_but_other_content_is_decoded_again(tmp_path) -> None:
    # Given a data file decoded once, so that the run cache holds it
    search_path = models(tmp_path / "models", "kept/2020-01-01/service-2.json")
    path = search_path / "kept/2020-01-01/service-2.json"
    path.write_text('{"v": 1}')
    stat = path.stat()
    assert botocore_data.load_file(loaders.JSONFileLoader(), str(path.with_suffix(""))) == {"v": 1}
    a_new_process()
    # When other content of the same size is restored with the old time (cp -p, rsync -a, tar)
    path.write_text('{"v": 2}')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # Then what is read is the new content
    assert botocore_data.load_file(loaders.JSONFileLoader(), str(path.with_suffix(""))) == {"v": 2}
