"""repair: let a table go on after damage at the top of its log, moving what stands in the way to a quarantine.

Two kinds of damage stop a table's writers (log.py raises DamagedHeadError or HeadMissingError):
  - the newest commit record(s) are damaged (unparseable, checksum mismatch, wrong version or table id);
  - the newest commit record(s) are gone while the head hint names a later version (log.py `_head.json`).
Older versions still read by number; nothing can write until the damaged records are out of the way, because a
new commit would reuse the version numbers they (and their files) still claim.

`repair(files)` finds the newest version v whose record and every record below it are intact, and moves to
`_quarantine/<stamp>/` (never deletes) everything that belongs to a version above v: the damaged records, the
change files named after those versions, snapshots of them, log checkpoints of segments reaching past v, tags
pointing past v, and compaction records of blocks reaching past v (with their compacted files). Then it sets the
head hint to v and publishes `_repairs/<stamp>.json`, a sealed record of what it moved and why. The next commit is
version v + 1. Run it with no writer active; a repair interrupted half-way is finished by running it again.

Repair refuses (RepairError, nothing moved) when the damage is not at the top (a record missing or damaged below
an intact one: quarantining it would leave a gap), when every record is damaged, and when a compaction block
reaching past v stands in for versions at or below v whose original change files are gone (the block is then the
only copy of those versions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import codec, compaction, layout, snapshot, timestamps
from .errors import CorruptionError, LogstoreError, RepairError
from .layout import QUARANTINE_DIR

if TYPE_CHECKING:
    from .planner import TableFiles


@dataclass(frozen=True)
class Move:
    source: str  # relative to the table directory
    target: str  # relative to the table directory, under _quarantine/<stamp>/
    reason: str


@dataclass
class RepairReport:
    table: str
    head_before: int | None  # the version the head hint (or the newest record) claimed
    head_after: int
    moves: list[Move] = field(default_factory=list)
    record: str | None = None  # the repair record published, relative to the table directory; None if no repair was needed

    @property
    def repaired(self) -> bool:
        return bool(self.moves) or self.record is not None

    def summary(self) -> str:
        if not self.repaired:
            return f"{self.table}: nothing to repair (version {self.head_after})"
        return f"{self.table}: head {self.head_before} -> {self.head_after}; moved {len(self.moves)} files to {QUARANTINE_DIR}/"


def repair(files: TableFiles) -> RepairReport:
    log, storage, prefix = files.log, files.storage, files.prefix
    log.forget()
    versions = log.versions()
    if not versions or versions[0] != 0:
        raise RepairError(files.name, "version 0's commit record is missing; there is nothing to continue from")
    good = _newest_intact(files, versions)
    hinted = _hinted(log)
    top = max(versions[-1], hinted if hinted is not None else -1)
    report = RepairReport(table=files.name, head_before=top, head_after=good)
    if top == good:
        return report
    stamp = layout.repair_stamp(timestamps.encode(timestamps.now()))
    plan = _plan_moves(files, good, versions[-1], stamp)
    for move in plan:  # dependents first, the damaged records last: until they go, writers keep refusing
        _move(storage, prefix, move)
        report.moves.append(move)
    log.forget()
    log.write_hint(good)
    report.record = layout.repair_record(stamp)
    body = {
        "repaired": timestamps.encode(timestamps.now()),
        "head_before": top,
        "head_after": good,
        "moved": [{"from": m.source, "to": m.target, "reason": m.reason} for m in report.moves],
    }
    storage.put_if_absent(layout.join(prefix, report.record), codec.encode(body))
    return report


def _newest_intact(files: TableFiles, versions: list[int]) -> int:
    """The newest version whose record and all records below it are intact; RepairError if damage is not at the top."""
    log = files.log
    bad = []
    for v in versions:
        try:
            log.read(v)
        except CorruptionError as e:
            if e.version != v:  # another record is at fault (version 0 copied in from another table)
                raise RepairError(files.name, f"{e}; restore that record from a backup") from None
            bad.append((v, e))
    if versions != list(range(versions[-1] + 1)):
        gap = min(set(range(versions[-1] + 1)) - set(versions))
        raise RepairError(files.name, f"version {gap}'s commit record is missing from the middle of the log (restore it from a backup)")
    if not bad:
        return versions[-1]
    first_bad = bad[0][0]
    if [v for v, _ in bad] != list(range(first_bad, versions[-1] + 1)):
        raise RepairError(files.name, f"version {first_bad}'s commit record is damaged below intact ones ({bad[0][1]}); restore it from a backup")
    if first_bad == 0:
        raise RepairError(files.name, f"version 0's commit record is damaged ({bad[0][1]}); restore it from a backup")
    return first_bad - 1


def _hinted(log) -> int | None:
    try:
        return log.hint()
    except CorruptionError:
        return None


def _plan_moves(files: TableFiles, good: int, newest: int, stamp: str) -> list[Move]:
    storage, prefix = files.storage, files.prefix
    moves: list[Move] = []

    def add(relative: str, reason: str) -> None:
        moves.append(Move(relative, layout.quarantined(stamp, relative), reason))

    for name in storage.list(layout.join(prefix, layout.TAG_DIR)):
        tagged = _tag_version(files, layout.tag_of(name))
        if tagged is None or tagged > good:
            add(layout.join(layout.TAG_DIR, name), f"tag of version {tagged}, above version {good}")
    for v in snapshot.snapshot_versions(storage, prefix):
        if v > good:
            for relative in _snapshot_paths(storage, prefix, v):
                add(relative, f"snapshot of version {v}, above version {good}")
    for name in storage.list(layout.join(prefix, layout.CHECKPOINT_DIR)):
        last = layout.checkpoint_last(name)
        if last is not None and last > good:
            add(layout.join(layout.CHECKPOINT_DIR, name), f"log checkpoint reaching past version {good}")
    for relative, reason in _compaction_moves(files, good):
        add(relative, reason)
    for name in storage.list(layout.join(prefix, layout.DATA_DIR)):
        version = layout.file_version(name)
        if version is not None and version > good:
            add(layout.join(layout.DATA_DIR, name), f"change file of version {version}, above version {good}")
    for v in range(newest, good, -1):
        add(layout.log_record(v), f"damaged commit record of version {v}")
    return moves


def _tag_version(files: TableFiles, name: str | None) -> int | None:
    if name is None:  # not a tag record's name
        return None
    try:
        return files.tags.get(name)
    except LogstoreError:  # a damaged or foreign tag is quarantined like one pointing too far
        return None


def _snapshot_paths(storage, prefix: str, version: int) -> list[str]:
    """The snapshot record of `version` and, if the record is readable and names a file of that version, its file
    (not snapshot.load, which refuses a record whose version's commit record is damaged: exactly the case here)."""
    paths = [layout.snapshot_record(version)]
    try:
        record = snapshot.read_record(storage, prefix, version)
    except CorruptionError:
        return paths
    if layout.file_version(record.path) == version:
        paths.insert(0, record.path)
    return paths


def _compaction_moves(files: TableFiles, good: int) -> list[tuple[str, str]]:
    """Compaction records of blocks reaching past `good`, and their compacted files; RepairError if such a block
    is the only copy of versions at or below `good`."""
    storage, prefix = files.storage, files.prefix
    scan = compaction.scan(storage, prefix)
    moves: list[tuple[str, str]] = []
    for (first, last), record in sorted(scan.records.items()):
        if last <= good:
            continue
        for v in range(first, good + 1):
            for f in files.log.read(v).files:
                if not storage.exists(layout.join(prefix, f.path)):
                    raise RepairError(
                        files.name,
                        f"the compaction of versions {first}..{last} reaches past version {good} and is the only copy of "
                        f"version {v} ({f.path} was vacuumed); restore the damaged records from a backup",
                    )
        reason = f"compaction of versions {first}..{last}, reaching past version {good}"
        moves.extend((cf.file.path, reason) for cf in record.files if cf.file.path.startswith(layout.COMPACTED_DATA_DIR + "/"))
        moves.append((layout.compaction_record(first, last), reason))
    for name in scan.damaged:
        block = layout.compaction_block(name)
        if block is None or block[1] > good:
            moves.append((layout.join(layout.COMPACTION_DIR, name), f"damaged compaction record reaching past version {good}"))
    return moves


def _move(storage, prefix: str, move: Move) -> None:
    """Copy into the quarantine, then remove the original (a crash in between leaves both: run repair again)."""
    source = layout.join(prefix, move.source)
    try:
        data = storage.read(source)
    except FileNotFoundError:
        return
    storage.put_if_absent(layout.join(prefix, move.target), data)
    storage.delete(source)
