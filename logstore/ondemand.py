"""Lazy clones: a local store whose data files stay at its origin until a read needs them (`clone(lazy=True)`).

A lazy clone holds every record of the tables it cloned (commit, snapshot, compaction records, checkpoints, tags)
but no data file. Its `remotes.json` names the remote the data files come from (`"lazy": "<remote>"`), and open()
then gives the store an OnDemandStorage: the storage of the directory, except that a data file (under `data/`,
`snapshots/` or `compacted/`) missing from it is fetched from the origin the first time anything asks for it,
checked against the size and SHA-256 its record gives (a file that does not match is refused with CorruptionError
and never stored), and published locally with put-if-absent. Everything else (records, hints, listings) is local.
Reads, SQL, verify (which fetches what it checks), push and pull work unchanged on top of it; pull into a lazy
clone copies records only. The origin is opened with its stored options and the environment's credentials.
"""

from __future__ import annotations

import builtins
import hashlib
import warnings
from typing import Any

from . import codec, layout
from .errors import CorruptionError
from .storage import FileInfo, LocalStorage

DATA_DIRS = (layout.DATA_DIR, layout.SNAPSHOT_DATA_DIR, layout.COMPACTED_DATA_DIR)


class OnDemandStorage(LocalStorage):
    """LocalStorage of a lazy clone: data files missing here are fetched from `origin` (a storage) on first use."""

    def __init__(self, root: Any, origin: Any) -> None:
        super().__init__(root)
        self.origin = origin

    # every call that looks at a file's content or metadata first brings a missing data file over

    def exists(self, path: str) -> bool:
        self._fetch(path, quiet=True)
        return super().exists(path)

    def stat(self, path: str) -> FileInfo:
        self._fetch(path)
        return super().stat(path)

    def size(self, path: str) -> int:
        self._fetch(path)
        return super().size(path)

    def read(self, path: str) -> bytes:
        self._fetch(path)
        return super().read(path)

    def read_range(self, path: str, start: int, end: int) -> bytes:
        self._fetch(path)
        return super().read_range(path, start, end)

    def sha256(self, path: str) -> str:
        self._fetch(path)
        return super().sha256(path)

    def url(self, path: str) -> str:
        self._fetch(path)
        return super().url(path)

    def prefetch(self, paths: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        missing = [p for p in paths if not LocalStorage.exists(self, p)]
        if missing:
            with ThreadPoolExecutor(min(8, len(missing))) as pool:
                builtins.list(pool.map(lambda p: self._fetch(p, quiet=True), missing))

    def _fetch(self, path: str, *, quiet: bool = False) -> None:
        """Bring the data file `path` over from the origin if it is missing here (nothing for other files)."""
        if not _is_data_file(path) or LocalStorage.exists(self, path):
            return
        expected = _expected(self, path)
        if expected is None:
            return  # no record lists it: not part of any version, nothing to fetch
        size, sha256 = expected
        try:
            data = bytes(self.origin.read(path))
        except FileNotFoundError:
            if quiet:
                return
            raise
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != size or digest != sha256:
            raise CorruptionError(path, None, f"file at the origin {self.origin.location} has {len(data)} bytes and sha256 {digest[:16]}..., its record says {size} bytes, {sha256[:16]}...; not fetched")
        LocalStorage.put_if_absent(self, path, data)  # another thread may have fetched it meanwhile: fine


def _is_data_file(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 4 and parts[0] == layout.TABLES_DIR and parts[2] in DATA_DIRS


def _expected(storage: LocalStorage, path: str) -> tuple[int, str] | None:
    """(size, SHA-256) the local records give the data file at `path` (tables/<t>/<dir>/<name>), None if none does."""
    _, table, directory, name = path.split("/")
    prefix = layout.table_dir(table)
    relative = layout.join(directory, name)
    try:
        if directory == layout.DATA_DIR:
            version = layout.file_version(name)
            if version is None:
                return None
            obj = codec.read(storage, layout.join(prefix, layout.log_record(version)), version=version, what="commit record")
            entries = obj.get("files") or []
        elif directory == layout.SNAPSHOT_DATA_DIR:
            version = layout.file_version(name)
            if version is None:
                return None
            obj = codec.read(storage, layout.join(prefix, layout.snapshot_record(version)), version=version, what="snapshot record")
            entries = [obj]
        else:
            block = layout.compacted_block(name)
            if block is None:
                return None
            obj = codec.read(storage, layout.join(prefix, layout.compaction_record(*block)), version=None, what="compaction record")
            entries = obj.get("files") or []
    except CorruptionError:
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("path") == relative:
            return int(entry["size"]), str(entry["sha256"])
    return None


def wrap(storage: Any, storage_options: dict[str, Any] | None = None) -> Any:
    """The storage a store at `storage` is used through: an OnDemandStorage if it is a lazy clone, else itself."""
    if not isinstance(storage, LocalStorage) or isinstance(storage, OnDemandStorage):
        return storage
    from .remote import Remotes
    from .storage import open_storage

    try:
        source = Remotes(storage).lazy()
    except CorruptionError as e:  # the store still opens; a lazy clone's missing files then read as missing
        warnings.warn(f"logstore: ignoring a damaged {layout.REMOTES}: {e}", RuntimeWarning, stacklevel=3)
        return storage
    if source is None:
        return storage
    origin = open_storage(source.url, storage_options={**source.options, **(storage_options or {})} or None)
    return OnDemandStorage(storage.root, origin)
