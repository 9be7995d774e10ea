"""botocore's data files, read once: what every botocore session in the tools' process would read again.

Each session has its own loader, and a local run makes several (boto3's, moto's own for its regions and
its routers): each decoded endpoints.json (1.2 MB) and the service models again, and listed every
service's folder on disk (thousands of stat calls). Here a data file is decoded once per process, and
kept on disk between runs (sagatools/run_cache.py) under its content and botocore's version; each caller
still gets its own copy (botocore merges its extras into what it loads). A listing of the services is
kept on disk under the names in the folders it reads, found by one walk of each search path per process
(about 25 ms, against botocore's walk for every listing). Neither changes what any loader returns, and
neither trusts a file's time, which a restore (cp -p, rsync -a, tar) keeps along with other content.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import botocore
from botocore import loaders

from sagatools.run_cache import DiskCache, digest_of

_ORIGINAL_LOAD_FILE = loaders.JSONFileLoader.load_file
_ORIGINAL_LIST_AVAILABLE_SERVICES = loaders.Loader.list_available_services
_DISK = DiskCache("botocore-data")
_decoded: dict[tuple[str, str], bytes] = {}  # (extension, digest of the file) -> the decoded data, pickled
_listings: dict[tuple[tuple[str, ...], str], list[str]] = {}
_trees: dict[str, str] = {}  # a search path -> this process's digest of the names in it


def load_file(self: loaders.JSONFileLoader, file_path: str) -> Any:
    # botocore tries the extensions in this order (.json, then .json.gz) and reads the first that exists.
    for extension in loaders._JSON_OPEN_METHODS:  # a seam (botocore-internal)
        path = file_path + extension
        content = _content(path) if os.path.isfile(path) else None  # botocore passes over a folder too
        if content is None:
            continue
        key = (extension, content)
        data = _decoded.get(key)
        if data is None:
            stored = _DISK.get((botocore.__version__, *key))
            if isinstance(stored, bytes):
                data = _decoded[key] = stored
            else:
                data = _decode(self, file_path, path, key)
        return pickle.loads(data)  # noqa: S301 - bytes this process pickled or its own cache holds
    return None


def _content(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return digest_of(file.read())
    except OSError:
        return None


def _decode(self: loaders.JSONFileLoader, file_path: str, path: str, key: tuple[str, str]) -> bytes:
    """botocore's own decoding, pickled; kept only if the file did not change while it was decoded, so that
    what is kept under a content's digest was made from that content."""
    data = pickle.dumps(_ORIGINAL_LOAD_FILE(self, file_path), protocol=pickle.HIGHEST_PROTOCOL)
    if _content(path) == key[1]:
        _decoded[key] = data
        _DISK.put((botocore.__version__, *key), data)
    return data


def list_available_services(self: loaders.Loader, type_name: str) -> list[str]:
    key = (tuple(self.search_paths), type_name)
    if key not in _listings:
        _listings[key] = _stored_listing(self, type_name)
    return list(_listings[key])


def _stored_listing(loader: loaders.Loader, type_name: str) -> list[str]:
    """botocore's listing walks every service folder, for each loader and type: one stored under the names
    in the folders it reads is that listing."""
    names = [_names_in(path) for path in loader.search_paths]
    key = ("services", botocore.__version__, type(loader.file_loader).__qualname__, type_name, *names)
    stored = _DISK.get(key)
    if isinstance(stored, list) and all(isinstance(name, str) for name in stored):
        return stored
    services = list(_ORIGINAL_LIST_AVAILABLE_SERVICES(loader, type_name))
    if names == [_names_in(path, again=True) for path in loader.search_paths]:  # unchanged while listed
        _DISK.put(key, services)
    return services


def _names_in(search_path: str, again: bool = False) -> str:
    """A digest of all a listing reads in a search path: the folders in it (the services), the folders in
    those (their API versions) and the data files in each version (its types), as os.path.isdir/isfile see
    them (links followed). Other entries cannot name a service, whatever their time or content."""
    if search_path in _trees and not again:
        return _trees[search_path]
    extensions = tuple(loaders._JSON_OPEN_METHODS)  # a seam (botocore-internal), as load_file's
    lines = [search_path]
    for service in _entries(search_path, os.DirEntry.is_dir):
        for version in _entries(service.path, os.DirEntry.is_dir):
            files = _entries(version.path, lambda entry: entry.name.endswith(extensions) and entry.is_file())
            lines.append(f"{service.name}/{version.name}/\0" + "\0".join(entry.name for entry in files))
    _trees[search_path] = digest_of("\n".join(lines).encode("utf-8", "surrogateescape"))
    return _trees[search_path]


def _entries(path: str, wanted: Callable[[os.DirEntry[str]], bool]) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return sorted((entry for entry in entries if wanted(entry)), key=lambda entry: entry.name)
    except OSError:  # not there (an absent search path lists nothing), or not readable
        return []


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
