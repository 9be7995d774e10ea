"""botocore's data files, read once: what every botocore session in the tools' process would read again.

Each session has its own loader, and a local run makes several (boto3's, moto's own for its regions and
its routers): each decoded endpoints.json (1.2 MB) and the service models again, and listed every
service's folder on disk (thousands of stat calls). Here a data file is decoded once per process, and
kept on disk between runs (sagatools.run_cache.py) under its path, size and time and
botocore's version; each caller still gets its own copy (botocore merges its extras into what it
loads). A listing of the services is made once per search path and kept on disk with the time of every
folder it depends on: it is used only while none of them changed. Neither changes what any loader returns.
"""

from __future__ import annotations

import os
import pickle
import time
from typing import Any

import botocore
from botocore import loaders

from sagatools.run_cache import DiskCache

_ORIGINAL_LOAD_FILE = loaders.JSONFileLoader.load_file
_ORIGINAL_LIST_AVAILABLE_SERVICES = loaders.Loader.list_available_services
_DISK = DiskCache("botocore-data")
_decoded: dict[tuple[str, int, int], bytes] = {}
_listings: dict[tuple[tuple[str, ...], str], list[str]] = {}
_folder_times: dict[str, int | None] = {}  # this process's stat of each folder a stored listing names
# A folder changed less than this long before a listing was made may change again within its clock tick
# (some file systems keep times in seconds): such a listing is not stored.
_SETTLED_SECONDS = 2.0


def load_file(self: loaders.JSONFileLoader, file_path: str) -> Any:
    # botocore tries the extensions in this order (.json, then .json.gz) and reads the first that exists.
    for extension in loaders._JSON_OPEN_METHODS:  # a seam (botocore-internal)
        path = file_path + extension
        try:
            stat = os.stat(path)
        except OSError:
            continue
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in _decoded:
            _decoded[key] = _DISK.get_or_make(
                (botocore.__version__, *map(str, key)),
                lambda: pickle.dumps(_ORIGINAL_LOAD_FILE(self, file_path), protocol=pickle.HIGHEST_PROTOCOL),
            )
        return pickle.loads(_decoded[key])  # noqa: S301 - bytes this process pickled or its own cache holds
    return None


def list_available_services(self: loaders.Loader, type_name: str) -> list[str]:
    key = (tuple(self.search_paths), type_name)
    if key not in _listings:
        _listings[key] = _stored_listing(self, type_name)
    return list(_listings[key])


def _stored_listing(loader: loaders.Loader, type_name: str) -> list[str]:
    """botocore's listing walks every service folder (four listings, about 70 ms of each start): one stored
    is used while each folder it depends on has the time it had when the listing was made."""
    key = ("services", botocore.__version__, type_name, *loader.search_paths)
    stored = _DISK.get(key)
    if isinstance(stored, tuple) and len(stored) == 2 and _unchanged(stored[1]):
        return list(stored[0])
    services = list(_ORIGINAL_LIST_AVAILABLE_SERVICES(loader, type_name))
    folders = _folders_listed(loader.search_paths)
    newest = max((mtime for mtime in folders.values() if mtime is not None), default=0)
    if newest < (time.time() - _SETTLED_SECONDS) * 1e9:
        _DISK.put(key, (services, folders))
    return services


def _folders_listed(search_paths: list[str]) -> dict[str, int | None]:
    """What the listing read: each search path (None where there is none), the folders in it (the
    services) and the folders in those (their API versions, whose files say which types they have)."""
    folders: dict[str, int | None] = {}
    for search_path in search_paths:
        folders[search_path] = _mtime(search_path)
        for service in _subfolders(search_path):
            folders[service.path] = service.stat().st_mtime_ns
            for version in _subfolders(service.path):
                folders[version.path] = version.stat().st_mtime_ns
    return folders


def _subfolders(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return [entry for entry in entries if entry.is_dir()]
    except OSError:
        return []


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _unchanged(folders: object) -> bool:
    if not isinstance(folders, dict):
        return False
    for path, mtime in folders.items():
        if path not in _folder_times:
            _folder_times[path] = _mtime(path)
        if _folder_times[path] != mtime:
            return False
    return True


def patches() -> list[tuple[object, str, object]]:
    """(owner, attribute, replacement) triples, for the embedded stack to apply and undo."""
    return [
        (loaders.JSONFileLoader, "load_file", load_file),
        (loaders.Loader, "list_available_services", list_available_services),
    ]


def install() -> None:
    """For the tools' process, before its first client: in place until the process ends."""
    for owner, name, replacement in patches():
        setattr(owner, name, replacement)
