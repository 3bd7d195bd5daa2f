"""The one door to files: read, list, put-if-absent and delete.

Paths are '/'-separated and relative to the store root. Every write publishes a complete file under its final
name at once, or not at all: the bytes go to a private staging file first, are fsynced, and are then linked to the
final name, which fails if that name exists. An object store slots in behind the same five calls. One more, `put`,
replaces a file atomically: it serves hints only (the head hint), never records.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

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

    def _full(self, path: str) -> Path:
        return self.root / path

    def url(self, path: str) -> str:
        """Where a reader such as DuckDB finds the file."""
        return str(self._full(path))

    def exists(self, path: str) -> bool:
        return self._full(path).exists()

    def read(self, path: str) -> bytes:
        """The file's bytes; FileNotFoundError if it does not exist."""
        return self._full(path).read_bytes()

    def size(self, path: str) -> int:
        return self._full(path).stat().st_size

    def list(self, prefix: str) -> list[str]:
        """Names of the files directly inside the directory `prefix`, sorted; [] if it does not exist."""
        try:
            return sorted(e.name for e in os.scandir(self._full(prefix)) if e.is_file())
        except FileNotFoundError:
            return []

    def list_dirs(self, prefix: str) -> list[str]:
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
        st = self._full(path).stat()
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

    def put_staged_if_absent(self, path: str, staged: str) -> bool:
        """Publish a staged file under `path` unless a file is already there; the staged file is consumed.

        Durable when it returns True: the file's bytes, its directory entry and the entries of any directory created
        on the way are fsynced. If it raises, the file may or may not have been published.
        """
        target = self._full(path)
        try:
            self._fsync(staged)
            self._make_dirs(target.parent)
            try:
                self._link(staged, target)
            except FileExistsError:
                return False
            self._fsync(target.parent)
            return True
        finally:
            _unlink_quietly(staged)

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
