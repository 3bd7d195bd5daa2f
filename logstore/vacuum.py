"""vacuum: remove files no version needs, never anything a version or tag needs.

What goes (each only when its file is older than `older_than`, default 1 hour, so an in-flight commit or snapshot
is never touched):
  - change files in `data/` that no commit record references (left by writers that crashed or lost a race);
  - snapshot files in `snapshots/` that no snapshot record references;
  - snapshots made redundant by newer ones: every snapshot except the newest intact one and, for each tag, the
    newest intact one at or below the tagged version (the record goes first, then its file);
  - damaged snapshot records (snapshots are derived data: readers skip them anyway);
  - compacted files in `compacted/` that no compaction record lists (a compactor crashed or lost a race; all are
    kept if any compaction record is damaged);
  - stale files in the store's `_staging/` directory.
Files a compaction made unnecessary (its `replaces`) are still referenced by their commit records and are kept.
Commit records, change files any record references and tags are never removed, so every version still reads the
same after vacuum. If any commit record is missing or damaged, vacuum refuses (it cannot know what that record
references). Files are listed before the log is read, so a file published after the listing is never a candidate.
Dry run is the default: nothing is removed, the report lists what would go and how many bytes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import json

from . import compaction, integrity, snapshot
from .commit import DATA_DIR
from .errors import CorruptionError, InvalidInputError, LogstoreError
from .snapshot import SNAPSHOT_DATA_DIR, SNAPSHOT_DIR
from .storage import STAGING_DIR

DEFAULT_MIN_AGE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Removal:
    path: str  # relative to the store root
    bytes: int
    reason: str


@dataclass
class VacuumReport:
    table: str
    dry_run: bool
    older_than: float  # seconds
    removals: list[Removal] = field(default_factory=list)
    too_young: list[str] = field(default_factory=list)  # candidates kept because they are newer than older_than

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.removals)

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.removals]

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        young = f"; {len(self.too_young)} newer than {self.older_than:g}s kept" if self.too_young else ""
        return f"{self.table}: {verb} {len(self.removals)} files, {self.bytes} bytes{young}"


def min_age_seconds(older_than) -> float:
    if older_than is None:
        return DEFAULT_MIN_AGE.total_seconds()
    if isinstance(older_than, dt.timedelta):
        seconds = older_than.total_seconds()
    elif isinstance(older_than, (int, float)) and not isinstance(older_than, bool):
        seconds = float(older_than)
    else:
        raise InvalidInputError(older_than, f"older_than must be a timedelta or a number of seconds, not {older_than!r}")
    if seconds < 0:
        raise InvalidInputError(older_than, f"older_than must not be negative, not {older_than!r}")
    return seconds


def vacuum(table, *, dry_run: bool = True, older_than=DEFAULT_MIN_AGE, staging: bool = True) -> VacuumReport:
    storage, prefix = table._storage, table._prefix
    min_age = min_age_seconds(older_than)
    report = VacuumReport(table=table.name, dry_run=dry_run, older_than=min_age)
    cutoff = time.time() - min_age

    # list first, read the log second: anything published after the listing is not a candidate
    data_files = [f"{prefix}/{DATA_DIR}/{n}" for n in storage.list(f"{prefix}/{DATA_DIR}")]
    snapshot_files = [f"{prefix}/{SNAPSHOT_DATA_DIR}/{n}" for n in storage.list(f"{prefix}/{SNAPSHOT_DATA_DIR}")]
    compacted_files = [f"{prefix}/{compaction.COMPACTED_DATA_DIR}/{n}" for n in storage.list(f"{prefix}/{compaction.COMPACTED_DATA_DIR}")]
    staged = [f"{STAGING_DIR}/{n}" for n in storage.list(STAGING_DIR)] if staging else []
    snapshot_records = snapshot.snapshot_versions(storage, prefix)

    referenced: set[str] = set()
    versions = table._log.versions()
    if not versions or versions != list(range(versions[-1] + 1)):
        missing = sorted(set(range(versions[-1] + 1)) - set(versions)) if versions else [0]
        raise CorruptionError(f"{prefix}/_log", missing[0], "commit record missing; vacuum refuses to run (run verify)")
    for v in versions:
        table._log._records.pop(v, None)
        for f in table._log.read(v).files:  # CorruptionError on a damaged record: refuse rather than guess
            referenced.add(f"{prefix}/{f.path}")

    candidates: list[tuple[str, str]] = []  # (path, reason), in removal order
    intact: dict[int, snapshot.SnapshotRecord] = {}
    parsed: dict[int, snapshot.SnapshotRecord] = {}
    for v in snapshot_records:
        try:
            parsed[v] = snapshot.read_record(storage, prefix, v)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, LogstoreError):
            candidates.append((f"{prefix}/{SNAPSHOT_DIR}/{snapshot.record_name(v)}", "damaged snapshot record"))

    def is_intact(v: int) -> bool:
        if v not in intact:
            rec = parsed[v]
            try:
                integrity.check_file(storage, f"{prefix}/{rec.path}", rec.size, rec.sha256, v, what="snapshot file")
            except (LogstoreError, OSError):
                return False
            intact[v] = rec
        return True

    def newest_intact_at_or_below(limit: int) -> int | None:
        for v in sorted(parsed, reverse=True):
            if v <= limit and is_intact(v):
                return v
        return None

    keep = set()
    head = versions[-1]
    for limit in [head] + sorted(set(table._tags.all().values())):
        found = newest_intact_at_or_below(limit)
        if found is not None:
            keep.add(found)
    for v, rec in sorted(parsed.items()):
        if v in keep:
            referenced.add(f"{prefix}/{rec.path}")
            continue
        why = "redundant snapshot (a newer one exists)" if is_intact(v) else "damaged snapshot"
        candidates.append((f"{prefix}/{SNAPSHOT_DIR}/{snapshot.record_name(v)}", why + " record"))
        candidates.append((f"{prefix}/{rec.path}", why))
        referenced.add(f"{prefix}/{rec.path}")  # handled above, not again as an orphan

    for path in data_files:
        if path not in referenced:
            candidates.append((path, "change file no commit references"))
    for path in snapshot_files:
        if path not in referenced:
            candidates.append((path, "snapshot file no snapshot record references"))
    listed = _compacted_listed(storage, prefix)  # None if any compaction record is damaged: then keep them all
    if listed is not None:
        for path in compacted_files:
            if path not in listed:
                candidates.append((path, "compacted file no compaction record lists"))
    for path in staged:
        candidates.append((path, "stale staging file"))

    for path, reason in candidates:
        try:
            st = storage.stat(path)
        except FileNotFoundError:
            continue
        if st.st_mtime > cutoff:
            report.too_young.append(path)
            continue
        # a snapshot file whose record stayed (too young) stays too: never leave a record without its file
        if reason.endswith("record") or not _record_kept(report, path, prefix, parsed):
            report.removals.append(Removal(path, st.st_size, reason))
            if not dry_run:
                storage.delete(path)
    return report


def _compacted_listed(storage, prefix: str) -> set[str] | None:
    """Files the compaction records list (compaction.py); None if a record cannot be read."""
    listed: set[str] = set()
    directory = f"{prefix}/{compaction.COMPACTION_DIR}"
    for name in storage.list(directory):
        try:
            obj = json.loads(storage.read(f"{directory}/{name}"))
            integrity.check_seal(obj)
            record = compaction.CompactionRecord.from_json(obj)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, LogstoreError):
            return None
        listed.update(f"{prefix}/{f.file.path}" for f in record.files)
    return listed


def _record_kept(report: VacuumReport, path: str, prefix: str, parsed) -> bool:
    """True if `path` is the file of a snapshot record that stayed (because the record was too young)."""
    for v, rec in parsed.items():
        if f"{prefix}/{rec.path}" == path:
            return f"{prefix}/{SNAPSHOT_DIR}/{snapshot.record_name(v)}" in report.too_young
    return False
