"""vacuum: remove files no version needs, never anything a version or tag needs.

What goes (each only when its file is older than `older_than`, default 1 hour, so an in-flight commit or snapshot
is never touched):
  - change files in `data/` that no commit record references (left by writers that crashed or lost a race);
  - snapshot files in `snapshots/` that no snapshot record references;
  - snapshots made redundant by newer ones: every snapshot except the newest intact one and, for each tag and each
    reset restore (table.py _reset), the newest intact one at or below its version (the record goes first, then
    its file);
  - damaged snapshot records (snapshots are derived data: readers skip them anyway);
  - compacted files in `compacted/` that no compaction record lists (a compactor crashed or lost a race; all are
    kept if any compaction record is damaged);
  - files a compaction made unnecessary: each path in the `replaces` of an intact compaction record, once that
    record is older than `older_than` (readers that planned before it was published may still read the originals).
    Change files go although their commit records still list them: readers take the covering block instead (see
    compaction.py). Level-2 compactions replace the level-1 compacted files they merged: those go too. Kept: any
    file a reader still uses (the files of the block standing for each version, or a version's own files where no
    intact record covers it), any file an intact record lists in `files` unless a larger intact record older than
    `older_than` stands for its versions, and whatever a record whose block overlaps a damaged compaction record's
    block replaces (all of it, if a damaged record's name gives no block);
  - stale files in the store's `_staging/` directory.
Commit records, compaction records (once originals are gone, the record is the only way to their versions), change
files a version still needs and tags are never removed, so every version still reads the same after vacuum; a read
that no longer finds a removed snapshot plans through the same covering blocks. If any commit record is missing or
damaged, vacuum refuses (it cannot know what that record references). Files are listed before the log is read, so
a file published after the listing is never a candidate.
Dry run is the default: nothing is removed, the report lists what would go and how many bytes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import compaction, integrity, layout, snapshot
from .commit import PUBLISH_WINDOW
from .errors import CorruptionError, InvalidInputError

if TYPE_CHECKING:
    from .planner import TableFiles

DEFAULT_MIN_AGE = dt.timedelta(hours=1)
# the youngest a file may be that an in-flight writer could still publish a record for: twice the time writers
# allow themselves between writing a file and publishing the record that references it (commit.PUBLISH_WINDOW)
IN_FLIGHT_GRACE = 2 * PUBLISH_WINDOW


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


def vacuum(files: TableFiles, *, dry_run: bool = True, older_than=DEFAULT_MIN_AGE, staging: bool = True) -> VacuumReport:
    storage, prefix, log = files.storage, files.prefix, files.log
    from . import expiry, purge

    purge.settle(files)  # a purge interrupted after its commit is finished first (its new files become referenced)
    min_age = min_age_seconds(older_than)
    report = VacuumReport(table=files.name, dry_run=dry_run, older_than=min_age)
    cutoff = time.time() - min_age

    # list first, read the log second: anything published after the listing is not a candidate
    data_files = _listed(storage, layout.join(prefix, layout.DATA_DIR))
    snapshot_files = _listed(storage, layout.join(prefix, layout.SNAPSHOT_DATA_DIR))
    compacted_files = _listed(storage, layout.join(prefix, layout.COMPACTED_DATA_DIR))
    staged = _listed(storage, layout.STAGING_DIR) if staging else []
    snapshot_records = snapshot.snapshot_versions(storage, prefix)

    referenced: set[str] = set()
    versions = log.versions()
    if not versions or versions != list(range(versions[-1] + 1)):
        missing = sorted(set(range(versions[-1] + 1)) - set(versions)) if versions else [0]
        raise CorruptionError(layout.join(prefix, layout.LOG_DIR), missing[0], "commit record missing; vacuum refuses to run (run verify)")
    log.latest()  # HeadMissingError if the head hint shows a lost newest record: its files must stay
    head = versions[-1]
    originals: dict[int, set[str]] = {}  # version -> the change files its commit record lists
    resets: list[int] = []  # versions committed by a reset restore: their snapshot is how they and later ones read
    for v in versions:
        record = log.reread(v)  # CorruptionError on a damaged record: refuse rather than guess
        originals[v] = {layout.join(prefix, f.path) for f in record.files}
        referenced |= originals[v]
        if record.commit.parameters.get("reset"):
            resets.append(v)

    candidates: list[tuple[str, str]] = []  # (path, reason), in removal order
    intact: dict[int, snapshot.SnapshotRecord] = {}
    parsed: dict[int, snapshot.SnapshotRecord] = {}
    for v in snapshot_records:
        try:
            parsed[v] = snapshot.read_record(storage, prefix, v)
        except (OSError, CorruptionError):
            candidates.append((snapshot.record_path(prefix, v), "damaged snapshot record"))

    def is_intact(v: int) -> bool:
        if v not in intact:
            rec = parsed[v]
            try:
                integrity.check_file(storage, layout.join(prefix, rec.path), rec.size, rec.sha256, v, what="snapshot file")
            except (OSError, CorruptionError):
                return False
            intact[v] = rec
        return True

    def newest_intact_at_or_below(limit: int) -> int | None:
        for v in sorted(parsed, reverse=True):
            if v <= limit and is_intact(v):
                return v
        return None

    keep = set()
    latest_record = log.reread(head)
    for limit in [head] + sorted(set(files.tags.all().values())) + resets + expiry.readable_bounds(latest_record):
        found = newest_intact_at_or_below(limit)
        if found is not None:
            keep.add(found)
    for v, rec in sorted(parsed.items()):
        if v in keep:
            referenced.add(layout.join(prefix, rec.path))
            continue
        why = "redundant snapshot (a newer one exists)" if is_intact(v) else "damaged snapshot"
        candidates.append((snapshot.record_path(prefix, v), why + " record"))
        candidates.append((layout.join(prefix, rec.path), why))
        referenced.add(layout.join(prefix, rec.path))  # handled above, not again as an orphan

    # Files no record references yet may belong to a writer between publishing its file and its record: such a
    # file is dead once a record of its version (block) exists without it, else only after IN_FLIGHT_GRACE.
    in_flight: set[str] = set()
    for path in data_files:
        if path not in referenced:
            candidates.append((path, "change file no commit references"))
            if _above(path, head):
                in_flight.add(path)
    for path in snapshot_files:
        if path not in referenced:
            candidates.append((path, "snapshot file no snapshot record references"))
            if layout.file_version(path) is not None and layout.file_version(path) not in parsed:
                in_flight.add(path)
    compactions = _standing_blocks_intact(storage, prefix, compaction.scan(storage, prefix), head)
    if not compactions.damaged:  # a damaged record may list any compacted file: then keep them all
        listed = {layout.join(prefix, cf.file.path) for r in compactions.records.values() for cf in r.files}
        for path in compacted_files:
            if path not in listed:
                candidates.append((path, "compacted file no compaction record lists"))
                if layout.compacted_block(path) not in compactions.records:
                    in_flight.add(path)
    replaced, waiting = _replaced(storage, prefix, compactions, originals, cutoff)
    on_disk = set(data_files) | set(compacted_files)
    candidates.extend((path, reason) for path, reason in replaced.items() if path in on_disk)
    report.too_young.extend(path for path in waiting if path in on_disk)
    kept_snapshots = {v: parsed[v].ordered for v in keep}
    listed_now = {p for p, _ in candidates}
    expired_only = expiry.reclaimable(prefix, latest_record, originals, compactions, kept_snapshots)
    candidates.extend((p, why) for p, why in sorted(expired_only.items()) if p in on_disk and p not in listed_now)
    in_flight |= purge.pending_files(files)  # files a pending purge is about to publish
    for path in staged:
        candidates.append((path, "stale staging file"))
        in_flight.add(path)

    in_flight_cutoff = min(cutoff, time.time() - IN_FLIGHT_GRACE)
    for path, reason in candidates:
        try:
            st = storage.stat(path)
        except FileNotFoundError:
            continue
        if st.modified > (in_flight_cutoff if path in in_flight else cutoff):
            report.too_young.append(path)
            continue
        # a snapshot file whose record stayed (too young) stays too: never leave a record without its file
        if reason.endswith("record") or not _record_kept(report, path, prefix, parsed):
            report.removals.append(Removal(path, st.size, reason))
            if not dry_run:
                storage.delete(path)
    return report


def _replaced(storage, prefix: str, compactions, originals: dict, cutoff: float) -> tuple[dict[str, str], list[str]]:
    """Files in the `replaces` of intact compaction records that no reader needs: {path: reason} of those whose
    record is older than the cutoff, and the paths kept only because a record is younger."""
    damaged = compactions.damaged_blocks()
    if None in damaged:
        return {}, []  # a damaged record without a block in its name might cover any version
    head = max(originals)
    old = {b for b in compactions.records if _older(storage, compaction.record_path(prefix, *b), cutoff)}
    used, held = _needed(prefix, compactions, originals, head, old)
    removable: dict[str, str] = {}
    waiting: list[str] = []
    for b, record in sorted(compactions.records.items()):
        if any(d[0] <= b[1] and b[0] <= d[1] for d in damaged):
            continue  # a damaged record overlaps this block: it might stand for these versions
        for path in (layout.join(prefix, p) for p in record.replaces):
            if path in used:
                continue
            if b in old and path not in held:
                kind = "compacted file" if path.startswith(layout.join(prefix, layout.COMPACTED_DATA_DIR) + "/") else "change file"
                removable.setdefault(path, f"{kind} replaced by the compaction of versions {b[0]}..{b[1]}")
            else:
                waiting.append(path)
    return removable, [p for p in waiting if p not in removable]


def _needed(prefix: str, compactions, originals: dict, head: int, old: set) -> tuple[set[str], set[str]]:
    """(used, held): the files readers use now (those of the record standing for each version, else the version's
    own files), and the files of every intact record for whose versions no larger record older than the cutoff
    stands yet (readers that planned before that record was published may use them)."""
    used: set[str] = set()
    v = 0
    while v <= head:
        record = compactions.standing(v, head)
        if record is None:
            used |= originals[v]
            v += 1
        else:
            used |= {layout.join(prefix, cf.file.path) for cf in record.files}
            v = record.last + 1
    held: set[str] = set()
    for (first, last), record in compactions.records.items():
        over = compactions.standing(first, head)
        released = over is not None and over is not record and (over.first, over.last) in old and over.first <= first and last <= over.last
        if not released:
            held |= {layout.join(prefix, cf.file.path) for cf in record.files}
    return used, held


def _standing_blocks_intact(storage, prefix: str, scan, head: int):
    """`scan` with every record that stands for its versions but whose files are damaged counted as damaged: readers
    fall back to the files it replaces (compaction.cover), so those must stay."""
    for block, record in sorted(scan.records.items()):
        if scan.standing(record.first, head) is record:
            damage = compaction.files_damage(storage, prefix, record.files, None, what="compacted file")
            if damage is not None:
                del scan.records[block]
                scan.damaged[layout.compaction_name(*block)] = str(damage)
    return scan


def _listed(storage, directory: str) -> list[str]:
    """The paths of the files directly inside `directory`."""
    return [layout.join(directory, name) for name in storage.list(directory)]


def _above(path: str, head: int) -> bool:
    """Whether the file is named after a version above `head` (no record of its version exists yet)."""
    version = layout.file_version(path)
    return version is not None and version > head


def _older(storage, path: str, cutoff: float) -> bool:
    try:
        return storage.stat(path).modified <= cutoff
    except OSError:
        return False


def _record_kept(report: VacuumReport, path: str, prefix: str, parsed) -> bool:
    """True if `path` is the file of a snapshot record that stayed (because the record was too young)."""
    for v, rec in parsed.items():
        if layout.join(prefix, rec.path) == path:
            return snapshot.record_path(prefix, v) in report.too_young
    return False
