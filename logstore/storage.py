"""The one door to files: read, list, put-if-absent and delete.

Paths are '/'-separated and relative to the store root. Every write publishes a complete file under its final
name at once, or not at all: the bytes go to a private staging file first, are fsynced, and are then linked to the
final name, which fails if that name exists. An object store slots in behind the same five calls. One more, `put`,
replaces a file atomically: it serves hints only (the head hint), never records.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError, first_line
from .layout import STAGING_DIR


@dataclass(frozen=True)
class FileInfo:
    """What `stat` tells of a stored file: its size, when it was last written (seconds since the epoch, by the
    store's clock), and a tag that changes whenever its content may have (an object's ETag; a local file's inode and
    times), so that a check of its content can be remembered until the tag changes."""

    size: int
    modified: float
    tag: str


class LocalStorage:
    """Storage on a local filesystem."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.local_root = self.root  # the one directory DuckDB reads files under (storage.url points into it)
        self.location = str(self.root)  # how errors name the store
        self._below = self.location.rstrip("/") + "/"

    def _full(self, path: str) -> Path:
        return self.root / path

    def _text(self, path: str) -> str:
        """str(self._full(path)), without pathlib's cost (a few microseconds per call, and a read plan or commit
        makes dozens) for the clean relative paths the store uses; anything else goes through pathlib."""
        if not path or path[0] in "/." or path[-1] == "/" or "//" in path or "/." in path:
            return str(self._full(path))
        return self._below + path

    def url(self, path: str) -> str:
        """Where a reader such as DuckDB finds the file."""
        return self._text(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(self._text(path))

    def prefetch(self, paths) -> None:
        """Nothing to fetch: files are local."""

    def stored_path(self, url: str) -> str:
        """The store path of a file `url` returned."""
        return Path(os.path.relpath(url, self.root)).as_posix()

    def holds_verified(self, path: str, size: int, sha256: str) -> bool:
        """Never: a local file can change in place, so it is checked by stat and a hash cache (integrity.py)."""
        return False

    def read(self, path: str) -> bytes:
        """The file's bytes; FileNotFoundError if it does not exist."""
        with open(self._text(path), "rb") as f:
            return f.read()

    def size(self, path: str) -> int:
        return os.stat(self._text(path)).st_size

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes start..end-1 of the file; FileNotFoundError if it does not exist."""
        with open(self._full(path), "rb") as f:
            f.seek(start)
            return f.read(max(end - start, 0))

    def read_small(self, path: str, limit: int) -> bytes | None:
        """The whole file in one open and one read if it holds at most `limit` bytes, else None; FileNotFoundError
        if it does not exist. (Local disk only, for blobs: a checkout's per-file fast path, blobs.Blobs.whole; a lazy
        clone's OnDemandStorage inherits it unchanged, as it fetches data files but never blobs.)"""
        fd = os.open(self._text(path), os.O_RDONLY | os.O_CLOEXEC)
        try:
            expected = os.fstat(fd).st_size
            if expected > limit:
                return None
            data = os.read(fd, expected + 1)
            while len(data) <= expected and (more := os.read(fd, expected + 1 - len(data))):  # a short read
                data += more
            return data if len(data) <= limit else None
        finally:
            os.close(fd)

    def list(self, prefix: str) -> builtins.list[str]:
        """Names of the files directly inside the directory `prefix`, sorted; [] if it does not exist."""
        try:
            return sorted(e.name for e in os.scandir(self._full(prefix)) if e.is_file())
        except FileNotFoundError:
            return []

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        try:
            return sorted(e.name for e in os.scandir(self._full(prefix)) if e.is_dir())
        except FileNotFoundError:
            return []

    def staging_file(self, suffix: str = "") -> str:
        """A fresh local path to write a file into before publishing it with put_staged_if_absent."""
        staging = self.root / STAGING_DIR
        staging.mkdir(exist_ok=True)
        return str(staging / f"{uuid.uuid4().hex}{suffix}")

    def sha256(self, path: str) -> str:
        """Hex SHA-256 of the file's bytes, streamed; FileNotFoundError if it does not exist."""
        with open(self._full(path), "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    def stat(self, path: str) -> FileInfo:
        """FileNotFoundError if there is no such file."""
        st = os.stat(self._text(path))
        return FileInfo(st.st_size, st.st_mtime, f"{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}")

    def delete_staged(self, staged: str) -> None:
        """Remove a staging file that will not be published."""
        _unlink_quietly(staged)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Publish `data` under `path` unless a file is already there. True if this call published it."""
        staged = self.staging_file()
        try:
            self._write(staged, data)
        except BaseException:
            _unlink_quietly(staged)
            raise
        return self.put_staged_if_absent(path, staged)

    def put(self, path: str, data: bytes) -> None:
        """Replace (or create) `path` with `data` atomically, not durably: for hints, never for records."""
        staged = self.staging_file()
        try:
            self._write(staged, data)
            target = self._full(path)
            self._make_dirs(target.parent)
            os.replace(staged, target)
        finally:
            _unlink_quietly(staged)

    def put_staged_if_absent(self, path: str, staged: str, *, sync_directory: bool = True) -> bool:
        """Publish a staged file under `path` unless a file is already there; the staged file is consumed.

        Durable when it returns True: the file's bytes, its directory entry and the entries of any directory created
        on the way are fsynced. If it raises, the file may or may not have been published. With
        sync_directory=False the file's directory entry is not fsynced here: the caller batches many puts and calls
        sync_directories with their paths before anything naming them is published.
        """
        target = self._full(path)
        try:
            self._fsync(staged)
            self._make_dirs(target.parent)
            try:
                self._link(staged, target)
            except FileExistsError:
                return False
            if sync_directory:
                self._fsync(target.parent)
            return True
        finally:
            _unlink_quietly(staged)

    def put_staged(self, path: str, staged: str, *, sync_directory: bool = True) -> None:
        """Replace (or create) `path` with a staged file atomically and durably; the staged file is consumed. For
        content-addressed files only (blobs.py), where any two versions of the file hold the same content.
        sync_directory=False: as for put_staged_if_absent."""
        target = self._full(path)
        try:
            self._fsync(staged)
            self._make_dirs(target.parent)
            os.replace(staged, target)
            if sync_directory:
                self._fsync(target.parent)
        finally:
            _unlink_quietly(staged)

    def sync_directories(self, paths) -> None:
        """Make durable the directory entries of files put with sync_directory=False: each distinct directory
        holding one of `paths` is fsynced once."""
        for directory in sorted({self._full(p).parent for p in paths}):
            self._fsync(directory)

    # The steps of publishing, as methods so that a test can make any one of them fail.

    def _write(self, staged: str, data: bytes) -> None:
        with open(staged, "wb") as f:
            f.write(data)

    def _fsync(self, path) -> None:
        _fsync(path)

    def _link(self, source, target) -> None:
        os.link(source, target)

    def _make_dirs(self, directory: Path) -> None:
        """Create `directory` and missing ancestors below the root, fsyncing each new entry's parent."""
        if directory.is_dir():
            return
        if directory.parent != self.root and directory.parent != directory:
            self._make_dirs(directory.parent)
        try:
            directory.mkdir()
        except FileExistsError:
            return
        self._fsync(directory.parent)

    def delete(self, path: str) -> None:
        """Remove a file; removing a file that is not there is not an error."""
        _unlink_quietly(self._full(path))


def _fsync(path) -> None:
    """Flush a file's or a directory's contents to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- opening a store by URL ----------------------------------------------------------------------------------

OBJECT_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss", "memory")
CLIENT_KEYS = ("allow_http", "allow_invalid_certificates", "connect_timeout", "timeout", "proxy_url")
# fail fast on an unreachable endpoint: a few short retries, not minutes of them
RETRY = {"max_retries": 2, "retry_timeout": dt.timedelta(seconds=10), "backoff": {"init_backoff": dt.timedelta(milliseconds=100), "max_backoff": dt.timedelta(seconds=2), "base": 2}}
CLIENT_DEFAULTS = {"connect_timeout": "5s", "timeout": "60s"}
_MEMORY: dict = {}  # memory:// URL -> its ObjectStorage (tests)


def open_storage(location, *, storage_options: dict | None = None):
    """The storage of `location`: a local path or file:// URL (LocalStorage), or s3://, gs://, az://, memory://
    (ObjectStorage). Object store settings come from the standard environment variables (obstore reads AWS_*,
    GOOGLE_*, AZURE_* itself; AWS_ALLOW_HTTP too) and from `storage_options` (obstore's configuration keys), which win."""
    text = os.fspath(location)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("", "file"):
        return LocalStorage(text[len("file://"):] if scheme == "file" else text)
    if scheme not in OBJECT_SCHEMES:
        raise InvalidInputError(location, f"unsupported store location {text!r}: give a path, file://, s3://, gs://, az:// or memory://")
    return _object_storage(text, scheme, dict(storage_options or {}))


def _object_storage(url: str, scheme: str, options: dict):
    from obstore.store import MemoryStore, from_url

    from .filecache import FileCache, default_root
    from .object_storage import ObjectStorage

    if scheme == "memory":  # one store per URL and process
        if url not in _MEMORY:
            _MEMORY[url] = ObjectStorage(url, MemoryStore(), FileCache(default_root() / f"memory-{uuid.uuid4().hex}"))
        return _MEMORY[url]
    client = dict(CLIENT_DEFAULTS)
    if os.environ.get("AWS_ALLOW_HTTP", "").strip().lower() in ("1", "true", "yes") and scheme.startswith("s3"):
        client["allow_http"] = True
    if os.environ.get("AWS_ENDPOINT_URL") and scheme.startswith("s3"):
        options.setdefault("endpoint", os.environ["AWS_ENDPOINT_URL"])
    for key in CLIENT_KEYS:
        if key in options:
            client[key] = options.pop(key)
    try:
        store = from_url(url, config=options or None, client_options=client, retry_config=RETRY)
    except Exception as e:  # obstore's configuration errors (unknown key, bad URL)
        raise InvalidInputError(url, f"cannot open store {url!r}: {first_line(e)}") from None
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return ObjectStorage(url, store, FileCache(default_root() / digest))
