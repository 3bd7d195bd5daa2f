"""Cheap integrity checks on the read path, and the self-checksum of JSON records.

Data and snapshot files: every read checks that each file it needs exists with the size its record gives (one
stat per file). The SHA-256 is checked on the first use of a file in a process and cached by (store, path, size,
the storage's change tag: inode and times on disk, the ETag on an object store), so a file changed in place after
its first check is hashed again. Set LOGSTORE_VERIFY_READS=size
to check sizes only, or =none to skip both (verify() always checks everything).

Records: commit and snapshot records carry `checksum`, the SHA-256 of the record's canonical JSON (sorted keys,
no whitespace, ASCII) without the `checksum` field, so any damage to a record is detected when it is read
(codec.py writes records sealed and reads them back through check_seal).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

from .errors import CorruptionError

CHECKSUM_FIELD = "checksum"
MODES = ("checksum", "size", "none")

_verified: set[tuple] = set()
_lock = threading.Lock()


def mode() -> str:
    value = os.environ.get("LOGSTORE_VERIFY_READS", "checksum").strip().lower()
    return value if value in MODES else "checksum"


def record_checksum(obj: dict) -> str:
    body = {k: v for k, v in obj.items() if k != CHECKSUM_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def seal(obj: dict) -> dict:
    """`obj` with its checksum field set."""
    return {**obj, CHECKSUM_FIELD: record_checksum(obj)}


def check_seal(obj: dict) -> None:
    """ValueError if `obj` carries a checksum that does not match its content (records without one are accepted)."""
    if not isinstance(obj, dict):
        raise ValueError(f"a record must be a JSON object, not {type(obj).__name__}")
    recorded = obj.get(CHECKSUM_FIELD)
    if recorded is not None and recorded != record_checksum(obj):
        raise ValueError("record checksum does not match its content")


def check_file(storage, path: str, size: int, sha256: str, version: int | None, *, what: str = "data file", shown: str | None = None) -> None:
    """CorruptionError (naming `shown` or `path`, and `version`) unless the file is there with this size and digest."""
    shown = shown or path
    level = mode()
    if level == "none":
        return
    if storage.holds_verified(path, size, sha256):  # a verified immutable copy (object stores): no request
        return
    try:
        st = storage.stat(path)
    except FileNotFoundError:
        raise CorruptionError(shown, version, f"{what} is missing") from None
    if st.size != size:
        raise CorruptionError(shown, version, f"{what} has {st.size} bytes, its record says {size}")
    if level != "checksum":
        return
    key = (storage.location, path, st.size, st.tag, sha256)
    with _lock:
        if key in _verified:
            return
    try:
        actual = storage.sha256(path)
    except FileNotFoundError:
        raise CorruptionError(shown, version, f"{what} is missing") from None
    if actual != sha256:
        raise CorruptionError(shown, version, f"{what} checksum mismatch (sha256 {actual[:16]}..., record says {sha256[:16]}...)")
    with _lock:
        _verified.add(key)


def forget() -> None:
    """Drop the cache of checked files (tests)."""
    with _lock:
        _verified.clear()


def verified_tag(storage, path: str, size: int, sha256: str) -> str | None:
    """The tag (storage.stat) under which this process checked the content of `path` against `sha256`, if it did and
    the file still has that size and tag; None otherwise (or when checksums are off). A process that finds the same
    size and tag reads the content checked here (remember)."""
    if mode() != "checksum":
        return None
    try:
        st = storage.stat(path)
    except FileNotFoundError:
        return None
    with _lock:
        return st.tag if st.size == size and (storage.location, path, st.size, st.tag, sha256) in _verified else None


def remember(storage, path: str, size: int, sha256: str, tag: str) -> None:
    """Take the content of `path` as checked against `sha256` while the file has this size and tag: another process
    (the driver of a distributed read, verified_tag) hashed it under them. check_file still stats the file, and
    hashes it again if it was replaced since (a new inode and times, or ETag, is a new tag)."""
    with _lock:
        _verified.add((storage.location, path, size, tag, sha256))
