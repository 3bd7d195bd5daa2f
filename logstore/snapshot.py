"""Snapshots: derived, full materializations of one version that bound how much log a read replays.

A snapshot is a Parquet file `snapshots/<version>-<uuid>.parquet` (columns _row_id then the table's columns,
sorted by _row_id) described by `_snapshots/<version>.json`. Losing one never changes an answer: readers fall
back to an older snapshot or to the log.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from . import checkpoint, codec, fingerprint, integrity, layout
from .errors import CorruptionError, InvalidInputError

FORMAT_VERSION = 3  # 3: snapshot files carry _version and hold their rows in the table's row order

DEFAULT_PROPERTIES = {
    # a snapshot is due when the change rows since the last one reach this fraction of the table's rows ...
    "snapshot_fraction": 0.5,
    # ... or when this many commits passed since the last one
    "snapshot_commits": 500,
}


@dataclass(frozen=True)
class SnapshotRecord:
    version: int
    path: str  # relative to the table directory
    rows: int
    size: int
    sha256: str
    columns: tuple[str, ...]
    fingerprint: str | None = None  # content fingerprint of the version it materializes (fingerprint.py)
    ordered: bool = True  # format 3: the file has _version and holds its rows in the table's row order

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "path": self.path,
            "rows": self.rows,
            "size": self.size,
            "sha256": self.sha256,
            "columns": list(self.columns),
            "fingerprint": self.fingerprint,
            **({"format_version": FORMAT_VERSION} if self.ordered else {}),
        }

    @classmethod
    def from_json(cls, obj: dict) -> SnapshotRecord:
        return cls(
            version=int(obj["version"]),
            path=obj["path"],
            rows=int(obj["rows"]),
            size=int(obj["size"]),
            sha256=obj["sha256"],
            columns=tuple(obj["columns"]),
            fingerprint=_fingerprint(obj.get("fingerprint")),
            ordered=int(obj.get("format_version", 2)) >= FORMAT_VERSION,
        )


def _fingerprint(value) -> str | None:
    if value is not None:
        fingerprint.decode(value)  # ValueError if malformed
    return value


def record_path(prefix: str, version: int) -> str:
    """The snapshot record of `version` in the table under `prefix`."""
    return layout.join(prefix, layout.snapshot_record(version))


def snapshot_versions(storage, prefix: str) -> list[int]:
    return layout.record_versions(storage.list(layout.join(prefix, layout.SNAPSHOT_DIR)))


def load(storage, prefix: str, version: int) -> SnapshotRecord | None:
    """The snapshot record of `version` if it and its file look intact and it is this table's, else None (with a
    warning).

    Checks the record's checksum, that it agrees with version `version`'s commit record (check_against_log), and
    the file's size and (on first use in this process) its SHA-256.
    """
    path = record_path(prefix, version)
    try:
        record = read_record(storage, prefix, version)
        check_against_log(record, checkpoint.stored_record(storage, prefix, version), path)
        integrity.check_file(storage, layout.join(prefix, record.path), record.size, record.sha256, version, what="snapshot file", shown=record.path)
        return record
    except (OSError, CorruptionError) as e:
        warnings.warn(f"logstore: skipping damaged snapshot {path}: {e}", RuntimeWarning, stacklevel=2)
        return None


def check_against_log(record: SnapshotRecord, stored: dict, path: str) -> None:
    """CorruptionError (naming the record's `path`) unless the snapshot materializes the version `stored` (its
    commit record as stored in `_log/`) describes: the same row count and, where both are known, the same content
    fingerprint. A snapshot copied from another table (or from a copy of this one that has diverged) differs."""
    if record.rows != stored.get("num_rows"):
        raise CorruptionError(path, record.version, f"snapshot of another table? it has {record.rows} rows, version {record.version} has {stored.get('num_rows')}")
    expected = stored.get("fingerprint")
    if record.fingerprint is not None and expected is not None and record.fingerprint != expected:
        raise CorruptionError(path, record.version, f"snapshot of another table? its fingerprint is {record.fingerprint}, version {record.version}'s is {expected}")


def read_record(storage, prefix: str, version: int) -> SnapshotRecord:
    """The snapshot record of `version`, its checksum checked; CorruptionError if it is missing or damaged."""
    path = record_path(prefix, version)
    record = codec.read(storage, path, SnapshotRecord.from_json, version=version, what="snapshot record")
    if record.version != version:
        raise CorruptionError(path, version, f"record says version {record.version}")
    return record


def usable_at_or_below(storage, prefix: str, version: int, *, exclude=frozenset(), accept=None) -> SnapshotRecord | None:
    """The newest intact snapshot at or below `version`, skipping versions in `exclude` (and records `accept`
    refuses)."""
    for candidate in reversed(snapshot_versions(storage, prefix)):
        if candidate > version or candidate in exclude:
            continue
        record = load(storage, prefix, candidate)
        if record is not None and (accept is None or accept(record)):
            return record
    return None


_ordered: dict[tuple, bool] = {}  # (store, table, version) -> whether its snapshot record is an ordered one


def in_row_order(record: SnapshotRecord, log) -> bool:
    """Whether reads in row order (scan.py) can use this snapshot: format 3, or one of a reset restore (whose rows
    that version wrote, so row-id order is row order)."""
    return record.ordered or bool(log.read(record.version).commit.parameters.get("reset"))


def newest_ordered(storage, prefix: str, versions, log) -> int:
    """The newest of `versions` (snapshot versions, ascending) whose snapshot is in_row_order, -1 if none: the
    snapshot policy counts from it, so the first commits on a store written by format 2 snapshot it anew in format 3.
    An unreadable record counts as none."""
    for v in reversed(versions):
        key = (storage.location, prefix, v)
        if key not in _ordered:
            try:
                _ordered[key] = in_row_order(read_record(storage, prefix, v), log)
            except (OSError, CorruptionError):
                continue
        if _ordered[key]:
            return v
    return -1


def check_properties(properties: dict) -> dict:
    for name, value in properties.items():
        if name == "retention":  # expiry.py: vacuum's rolling cut-off ("90d"); None turns it off
            if value is not None:
                from .expiry import parse_retention

                parse_retention(value)
            continue
        if name not in DEFAULT_PROPERTIES:
            raise InvalidInputError(name, f"unknown table property {name!r} (known: {', '.join(DEFAULT_PROPERTIES)}, retention)")
        if name == "snapshot_fraction" and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
            raise InvalidInputError(value, f"snapshot_fraction must be a number > 0, not {value!r}")
        if name == "snapshot_commits" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise InvalidInputError(value, f"snapshot_commits must be an integer >= 1, not {value!r}")
    return dict(properties)


def due(properties: dict, *, commits_since: int, change_rows_since: int, num_rows: int) -> bool:
    settings = {**DEFAULT_PROPERTIES, **properties}
    if commits_since <= 0:
        return False
    if commits_since >= settings["snapshot_commits"]:
        return True
    return change_rows_since > 0 and change_rows_since >= settings["snapshot_fraction"] * max(num_rows, 1)


def publish(storage, prefix: str, record: SnapshotRecord) -> bool:
    return storage.put_if_absent(record_path(prefix, record.version), codec.encode(record.to_json()))
