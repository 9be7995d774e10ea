"""botocore's data files, read once: what every botocore session in the tools' process would read again.

Each session has its own loader, and a local run makes several (boto3's, moto's own for its regions and
its routers): each decoded endpoints.json (1.2 MB) and the service models again, and listed every
service's folder on disk (thousands of stat calls). Here a data file is decoded once per process, and
kept on disk between runs (sagatools.run_cache.py) under its path, size and time and
botocore's version; each caller still gets its own copy (botocore merges its extras into what it
loads). A folder listing is made once per search path. Neither changes what any loader returns.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import botocore
from botocore import loaders

from sagatools.run_cache import DiskCache

_ORIGINAL_LOAD_FILE = loaders.JSONFileLoader.load_file
_ORIGINAL_LIST_AVAILABLE_SERVICES = loaders.Loader.list_available_services
_DISK = DiskCache("botocore-data")
_decoded: dict[tuple[str, int, int], bytes] = {}
_listings: dict[tuple[tuple[str, ...], str], list[str]] = {}


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
        _listings[key] = list(_ORIGINAL_LIST_AVAILABLE_SERVICES(self, type_name))
    return list(_listings[key])


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
