"""A local cache of a remote store's immutable files, so that DuckDB reads local Parquet files.

Layout under the cache root (LOGSTORE_CACHE_DIR, default ~/.cache/logstore, one folder per store URL):
`files/<path in the store>` holds a copy and `files/<path>.meta` its object's ETag, size and SHA-256 (computed
when the copy was made, so a copy is verified against a commit record's SHA-256 without reading it again);
`staging/` holds writers' staging files. Copies are written to a temporary name and renamed into place, so a
reader never sees half a file. The cache is bounded by LOGSTORE_CACHE_MAX_BYTES (default 10 GiB): after a copy is
added, the least recently used copies are removed until the total fits (a copy is "used" when a read asks for it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

DEFAULT_MAX_BYTES = 10 << 30
META = ".meta"


def default_root() -> Path:
    configured = os.environ.get("LOGSTORE_CACHE_DIR", "").strip()
    return Path(configured) if configured else Path.home() / ".cache" / "logstore"


def max_bytes() -> int:
    value = os.environ.get("LOGSTORE_CACHE_MAX_BYTES", "").strip()
    try:
        return max(int(value), 0) if value else DEFAULT_MAX_BYTES
    except ValueError:
        return DEFAULT_MAX_BYTES


class FileCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        (self.root / "files").mkdir(parents=True, exist_ok=True)
        self._total: int | None = None  # bytes of all copies, counted on first need

    def path(self, path: str) -> Path:
        return self.root / "files" / path

    def staging(self) -> Path:
        directory = self.root / "staging"
        directory.mkdir(exist_ok=True)
        return directory

    def touch(self, local: Path) -> None:
        try:
            os.utime(local)
        except FileNotFoundError:
            pass

    def store(self, path: str, data: bytes, tag: str) -> None:
        """Keep `data` as the copy of `path` (whose object has ETag `tag`)."""
        temporary = self.staging() / f"{uuid.uuid4().hex}.part"
        temporary.write_bytes(data)
        self._install(path, temporary, tag, hashlib.sha256(data).hexdigest(), len(data))

    def adopt(self, path: str, staged: str, tag: str) -> None:
        """Keep a local file just published as `path` as its copy (moved in; the caller's name goes away)."""
        with open(staged, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        temporary = self.staging() / f"{uuid.uuid4().hex}.part"
        shutil.copyfile(staged, temporary)
        self._install(path, temporary, tag, digest, os.path.getsize(temporary))

    def digest(self, path: str, tag: str) -> str | None:
        """The SHA-256 of the copy of `path` if it was made from the object with ETag `tag`."""
        meta = self._meta(path)
        return meta["sha256"] if meta is not None and meta.get("tag") == tag and self.path(path).exists() else None

    def holds(self, path: str, size: int, sha256: str) -> bool:
        meta = self._meta(path)
        return meta is not None and meta.get("size") == size and meta.get("sha256") == sha256 and self.path(path).exists()

    def forget(self, path: str) -> None:
        for p in (self.path(path), Path(f"{self.path(path)}{META}")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def _meta(self, path: str) -> dict | None:
        try:
            return json.loads(Path(f"{self.path(path)}{META}").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _install(self, path: str, temporary: Path, tag: str, digest: str, size: int) -> None:
        target = self.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{target}{META}").write_text(json.dumps({"tag": tag, "size": size, "sha256": digest}))
        os.replace(temporary, target)
        if self._total is not None:
            self._total += size
        if self._total is None or self._total > max_bytes():
            self._evict(max_bytes())

    def _evict(self, limit: int) -> None:
        """Count the copies, and remove the least recently used ones until they fit in `limit` bytes."""
        copies = [p for p in (self.root / "files").rglob("*") if p.is_file() and not p.name.endswith(META)]
        stats = sorted(((p, p.stat()) for p in copies), key=lambda item: item[1].st_mtime)
        total = sum(st.st_size for _, st in stats)
        for p, st in stats:
            if total <= limit:
                break
            self.forget(str(p.relative_to(self.root / "files")))
            total -= st.st_size
        self._total = total
