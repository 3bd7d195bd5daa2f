"""A store on an object store (S3, GCS, Azure, memory) through obstore, behind the same calls as LocalStorage.

Publishing is one conditional PUT (`mode="create"`: If-None-Match on S3, GCS and Azure), so put-if-absent keeps its
meaning: exactly one writer wins each version. DuckDB reads local files only (httpfs is neither installed nor
needed): the data files a read needs (change, snapshot and compacted files, immutable under unique names) are
downloaded into a local cache (filecache.py) and verified against their SHA-256 once; a read whose files are all
cached makes no request for them. Records (small JSON files) are read from the store each time they are needed.
Staging files are local, in the cache directory.

Requests are counted per kind (`requests`), for the benchmarks and for tests of request economy.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import os
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import obstore
from obstore.exceptions import AlreadyExistsError

from .errors import StorageError, first_line
from .filecache import FileCache
from .storage import FileInfo, _unlink_quietly

IMMUTABLE_DIRS = ("/data/", "/snapshots/", "/compacted/")  # files under these names never change once written
DOWNLOAD_THREADS = 8


class ObjectStorage:
    def __init__(self, location: str, store, cache: FileCache):
        self.location = location  # the URL, as errors name the store
        self._store = store
        self.cache = cache
        self.local_root = cache.root
        self.requests: Counter = Counter()

    # --- reading ---------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """A local copy DuckDB can read: the cached file, downloaded now if it is not cached."""
        local = self.cache.path(path)
        if not local.exists():
            self._download(path)
        self.cache.touch(local)
        return str(local)

    def stored_path(self, url: str) -> str:
        """The store path of a cached copy `url` returned."""
        return Path(os.path.relpath(url, self.cache.root / "files")).as_posix()

    def prefetch(self, paths) -> None:
        """Download the files of `paths` that are not cached yet, in parallel (a read needs them all)."""
        missing = [p for p in paths if not self.cache.path(p).exists()]
        if len(missing) > 1:
            with ThreadPoolExecutor(min(DOWNLOAD_THREADS, len(missing))) as pool:
                list(pool.map(self._download, missing))
        elif missing:
            self._download(missing[0])

    def read(self, path: str) -> bytes:
        result = self._call("GET", obstore.get, path)
        return bytes(result.bytes())

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes start..end-1 of the object (one ranged GET)."""
        return bytes(self._call("GET", obstore.get_range, path, start=start, end=end))

    def exists(self, path: str) -> bool:
        try:
            self._call("HEAD", obstore.head, path)
        except FileNotFoundError:
            return False
        return True

    def size(self, path: str) -> int:
        return self.stat(path).size

    def stat(self, path: str) -> FileInfo:
        meta = self._call("HEAD", obstore.head, path)
        return _info(meta)

    def sha256(self, path: str) -> str:
        """Hex SHA-256 of the stored object (a cached copy counts only if its ETag is still the object's)."""
        info = self.stat(path)
        known = self.cache.digest(path, info.tag)
        if known is None:
            self._download(path)
            known = self.cache.digest(path, info.tag)
        if known is None:  # the object changed while it was downloaded: hash what is stored now
            return hashlib.sha256(self.read(path)).hexdigest()
        return known

    def holds_verified(self, path: str, size: int, sha256: str) -> bool:
        """Whether a cached copy of `path` with exactly this size and SHA-256 exists (a read then needs no request)."""
        return _immutable(path) and self.cache.holds(path, size, sha256)

    def list(self, prefix: str) -> builtins.list[str]:
        """Names of the objects directly under `prefix`, sorted; [] if there are none."""
        result = self._call("LIST", obstore.list_with_delimiter, prefix)
        return sorted(m["path"].rsplit("/", 1)[-1] for m in result["objects"])

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        result = self._call("LIST", obstore.list_with_delimiter, prefix)
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in result["common_prefixes"])

    # --- writing ---------------------------------------------------------------------------------------------

    def staging_file(self, suffix: str = "") -> str:
        return str(self.cache.staging() / f"{uuid.uuid4().hex}{suffix}")

    def delete_staged(self, staged: str) -> None:
        _unlink_quietly(staged)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        try:
            self._call("PUT", obstore.put, path, data, mode="create")
        except AlreadyExistsError:
            return False
        return True

    def put_staged_if_absent(self, path: str, staged: str, *, sync_directory: bool = True) -> bool:
        """Publish a local staged file; the staged file is consumed (kept as the cached copy if it was published).
        An object is durable once its PUT returns: sync_directory is accepted for LocalStorage's protocol only."""
        try:
            try:
                result = self._call("PUT", obstore.put, path, Path(staged), mode="create")
            except AlreadyExistsError:
                return False
            if _immutable(path):
                self.cache.adopt(path, staged, result.get("e_tag") or "")
            return True
        finally:
            _unlink_quietly(staged)

    def put(self, path: str, data: bytes) -> None:
        self._call("PUT", obstore.put, path, data)

    def put_staged(self, path: str, staged: str, *, sync_directory: bool = True) -> None:
        """Replace (or create) `path` with a local staged file (streamed from disk); the staged file is consumed."""
        try:
            self._call("PUT", obstore.put, path, Path(staged))
        finally:
            _unlink_quietly(staged)

    def sync_directories(self, paths) -> None:
        """Nothing to do: an object store has no directories, and each PUT is durable when it returns."""

    def delete(self, path: str) -> None:
        """Remove an object (a missing one is not an error) and its cached copy."""
        self._call("DELETE", obstore.delete, path)
        self.cache.forget(path)

    # --- plumbing --------------------------------------------------------------------------------------------

    def _download(self, path: str) -> None:
        result = self._call("GET", obstore.get, path)
        tag = result.meta.get("e_tag") or ""
        self.cache.store(path, bytes(result.bytes()), tag)

    def _call(self, kind: str, fn, path: str, *args, **kwargs):
        self.requests[kind] += 1
        try:
            return fn(self._store, path, *args, **kwargs)
        except AlreadyExistsError:
            raise
        except FileNotFoundError as e:
            if kind in ("GET", "HEAD"):
                raise  # no such object
            raise StorageError(self.location, f"{kind} {path}", first_line(e)) from None  # no such bucket
        except Exception as e:  # obstore's errors: unreachable endpoint, missing bucket, bad credentials, ...
            if isinstance(e, obstore.exceptions.BaseError) or isinstance(e, OSError):
                raise StorageError(self.location, f"{kind} {path}", first_line(e)) from None
            raise


def _info(meta) -> FileInfo:
    modified = meta["last_modified"]
    seconds = modified.timestamp() if isinstance(modified, dt.datetime) else float(modified)
    return FileInfo(int(meta["size"]), seconds, str(meta.get("e_tag") or f"{meta['size']}:{seconds}"))


def _immutable(path: str) -> bool:
    return any(d in f"/{path}" for d in IMMUTABLE_DIRS)
