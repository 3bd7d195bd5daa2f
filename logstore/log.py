"""The commit log of one table: records, publishing version N, finding the head, resolving timestamps.

Each version is one JSON file `_log/<version, 20 digits>.json`, published once with put-if-absent and never
changed. See docs/format.md for the fields.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from . import checkpoint, codec, fingerprint, layout, timestamps
from .errors import CorruptionError, DamagedHeadError, HeadMissingError, TimestampError, VersionNotFoundError
from .layout import log_name  # noqa: F401 - the file name of a commit record, known by this name here too
from .schema import Column

FORMAT_VERSION = 5  # 2: records carry `table_id`; tables keep a head hint (`_head.json`); 3: the row order, snapshots carry `_version`; 4: file tables, retention, schema evolution (marker.py); 5: delete rows carry pre-images (changes.py); see docs/format.md
READABLE_FORMATS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Commit:
    """What one commit did: the public record of a version."""

    version: int
    timestamp: dt.datetime
    operation: str
    author: str | None = None
    message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    num_rows: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None  # the version's content fingerprint (16 hex digits, fingerprint.py); None if unknown
    expired: bool = False  # older than the table's retention cut-off (expiry.py): listed, no longer readable


@dataclass(frozen=True)
class DataFile:
    """A change file a commit adds; `path` is relative to the table directory."""

    path: str
    rows: int
    size: int
    sha256: str
    inserts_only: bool  # every row is an insert of a row id no earlier version used

    def to_json(self) -> dict:
        return {"path": self.path, "rows": self.rows, "size": self.size, "sha256": self.sha256, "inserts_only": self.inserts_only}

    @classmethod
    def from_json(cls, obj: dict) -> DataFile:
        return cls(
            path=obj["path"], rows=int(obj["rows"]), size=int(obj["size"]), sha256=obj["sha256"], inserts_only=bool(obj["inserts_only"])
        )


@dataclass(frozen=True)
class CommitRecord:
    """Everything version N stores: the commit plus the table state needed to read it."""

    commit: Commit
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    files: tuple[DataFile, ...]
    next_row_id: int
    change_rows_total: int  # rows in all change files that are not insert-only, up to this version
    properties: dict
    fingerprint: str | None = None  # content fingerprint of this version (fingerprint.py); None if unknown
    table_id: str | None = None  # the table's identity, fixed at version 0; None in records of format 1
    preimages: bool = False  # format 5: every delete row of this commit holds the deleted row's values (changes.py)

    def __post_init__(self) -> None:
        if self.commit.fingerprint != self.fingerprint:  # the public Commit carries the record's fingerprint
            object.__setattr__(self, "commit", replace(self.commit, fingerprint=self.fingerprint))

    @property
    def version(self) -> int:
        return self.commit.version

    def to_json(self) -> dict:
        c = self.commit
        return {
            "format_version": FORMAT_VERSION,
            "version": c.version,
            "timestamp": timestamps.encode(c.timestamp),
            "operation": c.operation,
            "author": c.author,
            "message": c.message,
            "metadata": c.metadata,
            "parameters": c.parameters,
            "rows_inserted": c.rows_inserted,
            "rows_updated": c.rows_updated,
            "rows_deleted": c.rows_deleted,
            "num_rows": c.num_rows,
            "schema": [col.to_json() for col in self.columns],
            "key": list(self.key),
            "files": [f.to_json() for f in self.files],
            "next_row_id": self.next_row_id,
            "change_rows_total": self.change_rows_total,
            "properties": self.properties,
            "fingerprint": self.fingerprint,
            **({"table_id": self.table_id} if self.table_id is not None else {}),
            **({"preimages": True} if self.preimages else {}),
        }

    @classmethod
    def from_json(cls, obj: dict) -> CommitRecord:
        commit = Commit(
            version=int(obj["version"]),
            timestamp=timestamps.decode(obj["timestamp"]),
            operation=obj["operation"],
            author=obj.get("author"),
            message=obj.get("message"),
            metadata=dict(obj.get("metadata") or {}),
            parameters=dict(obj.get("parameters") or {}),
            rows_inserted=int(obj["rows_inserted"]),
            rows_updated=int(obj["rows_updated"]),
            rows_deleted=int(obj["rows_deleted"]),
            num_rows=int(obj["num_rows"]),
        )
        return cls(
            commit=commit,
            columns=tuple(Column.from_json(c) for c in obj["schema"]),
            key=tuple(obj.get("key") or ()),
            files=tuple(DataFile.from_json(f) for f in obj["files"]),
            next_row_id=int(obj["next_row_id"]),
            change_rows_total=int(obj["change_rows_total"]),
            properties=dict(obj.get("properties") or {}),
            fingerprint=_fingerprint(obj.get("fingerprint")),
            table_id=_table_id(obj.get("table_id")),
            preimages=obj.get("preimages") is True,
        )

    def encode(self) -> bytes:
        return codec.encode(self.to_json())

    def with_commit(self, **changes) -> CommitRecord:
        return replace(self, commit=replace(self.commit, **changes))


def _fingerprint(value) -> str | None:
    if value is None:
        return None
    fingerprint.decode(value)  # ValueError if malformed
    return value


_HEX_DIGITS = frozenset("0123456789abcdef")


def _table_id(value) -> str | None:
    if value is not None and not (isinstance(value, str) and len(value) == 32 and set(value) <= _HEX_DIGITS):
        raise ValueError(f"table_id must be 32 lower-case hex digits, not {value!r}")
    return value


def _hint(obj: dict) -> tuple[int, str | None]:
    """(version, table_id) of a head hint's object."""
    return int(obj["version"]), obj.get("table_id")


def new_table_id() -> str:
    return uuid.uuid4().hex


class Log:
    """Reads and publishes the commit records of the table stored under `prefix`."""

    def __init__(self, storage, prefix: str):
        self.storage = storage
        self.prefix = prefix
        self._records: dict[int, CommitRecord] = {}
        self._known_head: int | None = None  # a version known to exist (versions are never removed)
        self._segments: dict[int, object] = {}  # loaded log checkpoints (checkpoint.py), by segment

    def forget(self) -> None:
        """Drop what this handle remembers of the log (records, head, checkpoints): the next calls read the store."""
        self._records.clear()
        self._known_head = None
        self._segments.clear()

    @property
    def known_head(self) -> int | None:
        """The newest version this handle has seen exist (by head_version or its own publish), without asking the
        store; None if none yet. Versions are never removed, so the head is at least this."""
        return self._known_head

    def reread(self, version: int) -> CommitRecord:
        """The record of `version` read from the store now, not from this handle's cache (verify and vacuum trust
        no cache); CorruptionError as read()."""
        self._records.pop(version, None)
        return self.read(version)

    def _path(self, version: int) -> str:
        return layout.join(self.prefix, layout.log_record(version))

    def versions(self) -> list[int]:
        return layout.record_versions(self.storage.list(layout.join(self.prefix, layout.LOG_DIR)))

    def head_version(self) -> int | None:
        """The latest version, by probing `_log/<v>.json` with exists() (checkpoint.py): O(log n) stats, no listing.

        Versions are dense (0..latest), so existence is monotone; a probe landing on a record missing from the
        middle of the log could stop early, so the search checks two versions past its answer and falls back to
        listing if either exists.
        """
        exists = lambda v: self.storage.exists(self._path(v))  # noqa: E731
        low = self._known_head
        if low is None:
            if not exists(0):
                versions = self.versions()
                return versions[-1] if versions else None
            low = 0
        step, high = 1, low + 1
        while exists(high):  # gallop: exists(low), probe low + 1, + 2, + 4, ...
            low, step = high, step * 2
            high = low + step
        while high - low > 1:  # exists(low), not exists(high)
            middle = (low + high) // 2
            if exists(middle):
                low = middle
            else:
                high = middle
        if exists(low + 2) or exists(low + 3):  # a gap (damage) or fast writers: list to be sure
            versions = self.versions()
            low = versions[-1] if versions else low
        self._known_head = max(low, self._known_head or 0)
        return self._known_head

    def exists(self) -> bool:
        return self.storage.exists(self._path(0))

    def read(self, version: int) -> CommitRecord:
        """The record of `version`; CorruptionError if it is missing from the middle of the log or malformed."""
        cached = self._records.get(version)
        if cached is not None:
            return cached
        return self._parse(version, self.read_raw(version))

    def _parse(self, version: int, obj: dict) -> CommitRecord:
        path = self._path(version)
        with codec.reading(path, version, "commit record"):
            record = CommitRecord.from_json(obj)
        if record.version != version:
            raise CorruptionError(path, version, f"record says version {record.version}")
        if version > 0 and record.table_id != self.table_id():
            raise self._foreign(version, record.table_id)
        self._records[version] = record
        return record

    def _foreign(self, version: int, table_id: str | None) -> CorruptionError:
        """The error for a record whose table id differs from version 0's: a third record decides which of the two
        was copied in from another table (with no third record, the one read is blamed)."""
        ours = self.table_id()
        latest = self.head_version() or 0
        witness = next((w for w in (1, latest) if w not in (0, version) and w <= latest), None)
        if witness is not None:
            try:
                if self.read_raw(witness).get("table_id") == table_id:
                    return CorruptionError(self._path(0), 0, f"version 0's record belongs to another table (table_id {ours}; versions {version} and {witness} say {table_id})")
            except CorruptionError:
                pass
        return CorruptionError(self._path(version), version, f"record belongs to another table (table_id {table_id}, version 0 says {ours})")

    def table_id(self) -> str | None:
        """The table's identity from its version-0 record (None for tables written by format 1)."""
        return self.read(0).table_id

    def read_raw(self, version: int) -> dict:
        """The stored JSON object of `version`, its checksum checked; CorruptionError if missing or damaged."""
        return codec.read(self.storage, self._path(version), version=version, what="commit record")

    def segment(self, segment: int):
        """The log checkpoint of `segment` (checkpoint.Segment), loaded once; None if missing or damaged."""
        if segment not in self._segments:
            loaded = checkpoint.load(self.storage, self.prefix, segment)
            if loaded is None:
                return None
            self._segments[segment] = loaded
        return self._segments[segment]

    def read_range(self, first: int, last: int) -> list[CommitRecord]:
        """The records of versions first..last, through log checkpoints where a segment is not yet in memory."""
        for s in range(checkpoint.segment_of(max(first, 0)), checkpoint.segment_of(last) + 1):
            lo, hi = checkpoint.segment_range(s)
            missing = [v for v in range(max(lo, first), min(hi, last) + 1) if v not in self._records]
            if len(missing) >= 8 and self._known_head is not None and hi <= self._known_head:
                loaded = self.segment(s)  # only a complete segment can have a checkpoint
                if loaded is not None:
                    for v in missing:
                        self._parse(v, loaded.raw(v))
        return [self.read(v) for v in range(first, last + 1)]

    def latest(self) -> int:
        """The latest version: the newest record, checked against the head hint (a record lost from the top of the
        log is detected, not silently read as an older head). HeadMissingError if the hint names a version whose
        record is gone."""
        hinted = self.hint()
        if hinted is not None and (self._known_head is None or hinted > self._known_head) and self.storage.exists(self._path(hinted)):
            self._known_head = hinted  # a version known to exist: the probes start there, not at 0 (~4 instead of ~2 log2 n)
        visible = self.head_version()
        if visible is None:
            raise CorruptionError(layout.join(self.prefix, layout.LOG_DIR), None, "the log has no commits")
        if hinted is not None and hinted > visible:
            if not self.storage.exists(self._path(hinted)):
                raise HeadMissingError(self._path(visible + 1), visible, hinted)
            newer = self.head_version()  # a writer committed since the probe
            return newer if newer is not None else visible
        return visible

    def head(self) -> CommitRecord:
        """The record of the latest version (what writers build on); an error naming the way out if it is damaged."""
        latest = self.latest()
        try:
            return self.read(latest)
        except CorruptionError as e:
            raise DamagedHeadError(e.path, latest, e.reason) from None

    def hint(self) -> int | None:
        """The version in the head hint (`_head.json`), or None if there is none or it is unreadable or foreign."""
        path = layout.join(self.prefix, layout.HEAD_HINT)
        try:
            version, table_id = codec.parse(self.storage.read(path), _hint, path=path, version=None, what="head hint")
            return version if table_id == self.table_id() else None
        except (FileNotFoundError, CorruptionError):  # also when version 0's record is damaged: no id to compare
            return None

    def write_hint(self, version: int) -> None:
        """Record that `version` was committed. A hint, not a record: overwritten, not fsynced (a hint lost in a
        crash only weakens detection); writers racing may leave a lower version, which is still true."""
        body = {"version": version, "table_id": self.table_id(), "written": timestamps.encode(timestamps.now())}
        self.storage.put(layout.join(self.prefix, layout.HEAD_HINT), codec.encode(body, indent=None))

    def publish(self, record: CommitRecord) -> bool:
        """Publish the record of a new version; False if another writer published that version first."""
        published = self.storage.put_if_absent(self._path(record.version), record.encode())
        if published:
            self._records[record.version] = record
            self._known_head = max(record.version, self._known_head or 0)
        return published

    def check_version(self, version, latest: int) -> int:
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= latest:
            raise VersionNotFoundError(version, latest)
        return version

    def version_at(self, moment: dt.datetime, latest: int) -> int:
        """The latest version whose commit time is <= moment (binary search over the records)."""
        if moment > timestamps.now():
            raise TimestampError(moment, f"timestamp {timestamps.encode(moment)} is in the future; its version could still change")
        first = self.read(0).commit.timestamp
        if moment < first:
            raise TimestampError(
                moment, f"timestamp {timestamps.encode(moment)} is before the first commit at {timestamps.encode(first)}"
            )
        found = checkpoint.version_at(self, moment, latest)
        if found is not None:
            return min(found, latest)
        return self.last_at_or_before(moment, 0, latest)

    def last_at_or_before(self, moment: dt.datetime, low: int, high: int) -> int:
        """Binary search in low..high for the last version committed at or before moment (time(low) <= moment)."""
        while low < high:
            middle = (low + high + 1) // 2
            if self.read(middle).commit.timestamp <= moment:
                low = middle
            else:
                high = middle - 1
        return low
