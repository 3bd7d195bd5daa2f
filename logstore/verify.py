"""verify: check that the files a version needs are intact and that its content matches its fingerprint.

`verify(files, version=None, full=False)` checks, for the version (the latest by default):
  - every commit record 0..version is present, parses, carries a matching checksum, the right version number and
    the table's id, and timestamps increase (the log is contiguous: versions 0..latest with no gap), and no record
    above the newest was lost (the head hint names no later version);
  - every change file those records add exists with the recorded size and SHA-256;
  - every snapshot record at or below the version parses and its file has the recorded size and SHA-256
    (a damaged snapshot is a problem to report, though reads survive it by skipping the snapshot);
  - every tag record is intact, names its own tag and this table, and points at an existing version;
  - the materialized content of the version matches the fingerprint and row count in its commit record.
With full=True the content check runs for every version 0..version, and every snapshot file's content is
checked against its fingerprint as well.

Every log checkpoint (checkpoint.py; derived, readers ignore a damaged or foreign one) must decode, carry the
table's id and hold exactly the records `_log/` holds; otherwise it is reported (kind "checkpoint").

Compaction records (compaction.py) are checked like snapshot records, and the files they list like change files.
A change file that is missing is no problem when an intact compaction record stands for its version (the block
readers use) and that record's files are all present and intact: vacuum removes the files a compaction replaced.
Likewise for the files of a compaction record that a larger intact block stands in for (a level-2 compaction
replaces the level-1 compacted files). A missing file nothing stands in for is reported.

Unreferenced files (leftovers of crashed or conflicted writers) are listed but are not problems: vacuum removes them.
Nothing here raises on damage: each problem is collected in the report with its file and version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from . import checkpoint, compaction, connection, fingerprint, layout, planner, snapshot, timestamps
from .errors import CorruptionError, HeadMissingError, LogstoreError, first_line

if TYPE_CHECKING:
    from .planner import TableFiles

# what a check that reads or materializes damaged files raises (damaged records raise CorruptionError: codec.py)
_CHECK_ERRORS = (LogstoreError, OSError, duckdb.Error)


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | size | checksum | malformed | fingerprint | rows | gap | lost | tag | checkpoint | unreadable | unchecked | purge
    path: str  # relative to the store root
    version: int | None
    message: str

    def __str__(self) -> str:
        where = f" (version {self.version})" if self.version is not None else ""
        return f"{self.kind}: {self.path}{where}: {self.message}"


@dataclass
class VerifyReport:
    table: str
    version: int | None = None  # the version verified
    full: bool = False
    versions_checked: int = 0  # versions whose content was checked against their fingerprint
    records_checked: int = 0
    files_checked: int = 0
    bytes_checked: int = 0
    snapshots_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)  # leftovers vacuum would remove (not problems)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, path: str, version: int | None, message: str) -> None:
        self.problems.append(Problem(kind, path, version, message))

    def raise_if_failed(self) -> None:
        if self.problems:
            p = self.problems[0]
            more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
            raise CorruptionError(p.path, p.version, p.message + more)

    def summary(self) -> str:
        state = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"{self.table}: {state}; version {self.version}, {self.records_checked} records, {self.files_checked} files "
            f"({self.bytes_checked} bytes), {self.snapshots_checked} snapshots, {self.versions_checked} fingerprints checked"
        )


def verify(files: TableFiles, version: int | None = None, *, full: bool = False) -> VerifyReport:
    report = VerifyReport(table=files.name, full=full)
    storage, prefix, log = files.storage, files.prefix, files.log
    from . import purge

    purge.settle(files)  # a purge interrupted after its commit is finished first
    versions = log.versions()
    if not versions:
        report.add("missing", _log_path(prefix, 0), 0, "the log has no commits")
        return report
    latest = versions[-1]
    _check_head_hint(report, files, latest)
    if version is None:
        version = latest
    elif isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= latest:
        log.check_version(version, latest)  # raises VersionNotFoundError
    report.version = version
    present = set(versions)
    log.head_version()  # plans (compaction.cover) see every complete block, as readers do
    blocks = _Blocks(report, storage, prefix, latest)
    floor, gone = _expired(files, latest)  # files of versions up to `floor` may be reclaimed (expiry); expired content is not checked

    # 1. commit records and the change files they add
    records = {}
    referenced: set[str] = set()
    previous_time = None
    for v in range(0, latest + 1):
        path = _log_path(prefix, v)
        if v not in present:
            report.add("gap", path, v, "commit record is missing from the middle of the log")
            continue
        try:
            record = log.reread(v)  # from disk: verify trusts no cache
        except CorruptionError as e:
            report.add("malformed", path, v, e.reason)
            continue
        report.records_checked += 1
        records[v] = record
        rewritten = purge.record_problem(log, v, log.read_raw(v))  # a record a purge rewrote: as its PURGE says
        if rewritten is not None:
            report.add("purge", path, v, f"record rewritten by a purge does not match it: {rewritten}")
        for f in record.files:
            referenced.add(layout.join(prefix, f.path))
        if previous_time is not None and record.commit.timestamp <= previous_time:
            report.add("malformed", path, v, "timestamp does not increase over the previous version")
        previous_time = record.commit.timestamp
        if v <= version and v > floor:
            for f in record.files:
                path = layout.join(prefix, f.path)
                if not storage.exists(path) and blocks.stands_in(v):
                    continue  # replaced by a compaction and removed by vacuum: readers use the block
                _check_file(report, storage, path, f.size, f.sha256, v, "change file")

    # 2. snapshots
    good_snapshots: dict[int, snapshot.SnapshotRecord] = {}
    for v in snapshot.snapshot_versions(storage, prefix):
        path = snapshot.record_path(prefix, v)
        try:
            snap = snapshot.read_record(storage, prefix, v)
        except (OSError, CorruptionError) as e:
            report.add("malformed", path, v, f"damaged snapshot record: {_reason(e)}")
            continue
        referenced.add(layout.join(prefix, snap.path))
        if v > version:
            continue
        report.snapshots_checked += 1
        if _check_file(report, storage, layout.join(prefix, snap.path), snap.size, snap.sha256, v, "snapshot file"):
            good_snapshots[v] = snap
        committed = records.get(v)
        if committed is not None and snap.fingerprint is not None and committed.fingerprint is not None and snap.fingerprint != committed.fingerprint:
            report.add("fingerprint", path, v, f"snapshot record fingerprint {snap.fingerprint} differs from the commit record's {committed.fingerprint}")
            good_snapshots.pop(v, None)

    # 2b. compactions (compaction.py): readers use an intact record's files in place of its versions' own files
    compaction_dir = layout.join(prefix, layout.COMPACTION_DIR)
    for name, block in blocks.by_name():
        if block is None:
            why = blocks.scan.damaged[name]
            report.add("malformed", layout.join(compaction_dir, name), None, f"damaged compaction record (readers skip it): {why}")
            continue
        referenced.update(layout.join(prefix, cf.file.path) for cf in block.files)
        if block.first <= version and block.last > floor:
            blocks.check(block)

    # 3. tags
    for name in files.tags.names():
        path = layout.join(prefix, layout.tag_record(name))
        try:
            tagged = files.tags.get(name)
        except (OSError, LogstoreError) as e:  # damaged, another tag's or table's, or a file name no tag has
            report.add("malformed", path, None, str(e))
            continue
        if not 0 <= tagged <= latest:
            report.add("tag", path, tagged, f"tag {name!r} points at version {tagged}, which does not exist")

    # 3b. log checkpoints: derived, readers ignore a damaged or foreign one, but it is reported
    _check_checkpoints(report, files, records, latest)

    # 4. content against fingerprints
    con = connection.new()
    if not fingerprint.hash_is_stable(con):
        report.notes.append(f"this DuckDB's hash() differs from the one fingerprints were made with ({fingerprint.ALGORITHM}); content not checked")
    else:
        if full:
            for v, snap in sorted(good_snapshots.items()):
                _check_snapshot_content(report, files, con, v, snap, records.get(v))
        targets = range(0, version + 1) if full else [version]
        broken = _broken_versions(report, prefix)
        for v in targets:
            if v in records and v not in gone and not any(b <= v for b in broken):
                _check_content(report, files, con, v, records[v], good_snapshots)
                _check_preimages(report, files, con, v, records[v])

    # 5. leftovers
    for directory in (layout.DATA_DIR, layout.SNAPSHOT_DATA_DIR, layout.COMPACTED_DATA_DIR):
        for name in storage.list(layout.join(prefix, directory)):
            path = layout.join(prefix, directory, name)
            if path not in referenced:
                report.unreferenced.append(path)
    return report


class _Blocks:
    """The compaction records of the table (read now), which one stands for each version, their files checked once."""

    def __init__(self, report: VerifyReport, storage, prefix: str, latest: int):
        self.report, self.storage, self.prefix, self.latest = report, storage, prefix, latest
        self.scan = compaction.scan(storage, prefix)
        self._intact: dict[tuple[int, int], bool] = {}

    def by_name(self) -> list:
        """(record file name, its intact record or None if damaged), in name order."""
        named = {layout.compaction_name(*b): r for b, r in self.scan.records.items()}
        return [(name, named.get(name)) for name in sorted([*named, *self.scan.damaged])]

    def stands_in(self, version: int) -> bool:
        """Whether an intact record stands for `version` with all its files intact (so readers need nothing else)."""
        record = self.scan.standing(version, self.latest)
        return record is not None and self.files_ok(record)

    def files_ok(self, record) -> bool:
        """Check every file `record` lists (once); True if all are present and match their size and SHA-256."""
        b = (record.first, record.last)
        if b not in self._intact:
            self._intact[b] = all([self._check(record, cf.file) for cf in record.files])
        return self._intact[b]

    def check(self, record) -> None:
        """Check the files of `record`; a missing one is fine if a larger intact block stands in for the record."""
        over = self.scan.standing(record.first, self.latest)
        if over is record:
            self.files_ok(record)
            return
        released = over is not None and over.first <= record.first and record.last <= over.last
        for cf in record.files:
            path = layout.join(self.prefix, cf.file.path)
            if not (released and not self.storage.exists(path) and self.files_ok(over)):
                self._check(record, cf.file)

    def _check(self, record, f) -> bool:
        return _check_file(self.report, self.storage, layout.join(self.prefix, f.path), f.size, f.sha256, record.first, "compacted file")


def _check_checkpoints(report: VerifyReport, files: TableFiles, records: dict, latest: int) -> None:
    """Every file under `_checkpoints/`: decodes, belongs to this table, and each record (and timeline entry) in it
    equals what `_log/` holds (compared for the intact records only: damaged ones are reported with the log)."""
    directory = layout.join(files.prefix, layout.CHECKPOINT_DIR)
    for name in sorted(files.storage.list(directory)):
        path = layout.join(directory, name)
        try:
            seg = _decode_checkpoint(files, name, path, latest)
            checkpoint.check_identity(seg, files.log.table_id())
            wrong = _checkpoint_disagrees(files, seg, records)
        except (OSError, CorruptionError) as e:
            report.add("checkpoint", path, None, f"damaged or foreign log checkpoint (readers ignore it): {first_line(_reason(e))}")
            continue
        if wrong is not None:
            report.add("checkpoint", path, wrong, f"log checkpoint disagrees with the log: its record of version {wrong} differs from _log/ (readers check only the segment's last record)")


def _decode_checkpoint(files: TableFiles, name: str, path: str, latest: int):
    """The checkpoint stored under `name` (at `path`); CorruptionError if its name is no checkpoint's, it covers
    versions past the latest, or it is damaged."""
    last = layout.checkpoint_last(name)
    if last is None or checkpoint.name(checkpoint.segment_of(last)) != name:  # a name of the segment's last version
        raise CorruptionError(path, None, "not a log checkpoint name")
    if last > latest:
        raise CorruptionError(path, None, f"covers versions up to {last}, past the latest version {latest}")
    return checkpoint.decode(checkpoint.segment_of(last), files.storage.read(path), path)


def _checkpoint_disagrees(files: TableFiles, seg, records: dict) -> int | None:
    """The first version whose record (or timeline entry) in `seg` differs from the intact record in `_log/`."""
    for first, stamp in seg.timeline:
        if first in records and stamp != timestamps.encode(records[first].commit.timestamp):
            return first
    for v in range(seg.first, seg.last + 1):
        if v in records and seg.raw(v) != files.log.read_raw(v):
            return v
    return None


def _check_head_hint(report: VerifyReport, files: TableFiles, latest: int) -> None:
    """A head hint above the newest record means the newest commit record(s) were lost."""
    try:
        files.log.latest()
    except HeadMissingError as e:
        report.add("lost", e.path, e.version, e.reason)
        return
    except _CHECK_ERRORS:
        return  # a damaged record 0 (no table id to compare the hint with) is reported with the records
    path = layout.join(files.prefix, layout.HEAD_HINT)
    if files.storage.exists(path) and files.log.hint() is None:
        report.add("hint", path, None, "head hint is unreadable, damaged or of another table (the next commit rewrites it)")


def _check_file(report: VerifyReport, storage, path: str, size: int, sha256: str, version: int, what: str) -> bool:
    try:
        actual_size = storage.stat(path).size
    except FileNotFoundError:
        report.add("missing", path, version, f"{what} is missing")
        return False
    except OSError as e:
        report.add("unreadable", path, version, f"{what} cannot be read: {e}")
        return False
    report.files_checked += 1
    if actual_size != size:
        report.add("size", path, version, f"{what} has {actual_size} bytes, its record says {size}")
        return False
    try:
        actual = storage.sha256(path)
    except OSError as e:
        report.add("unreadable", path, version, f"{what} cannot be read: {e}")
        return False
    report.bytes_checked += actual_size
    if actual != sha256:
        report.add("checksum", path, version, f"{what} SHA-256 is {actual}, its record says {sha256}")
        return False
    return True


def _broken_versions(report: VerifyReport, prefix: str) -> list[int]:
    """Versions from which on content cannot be materialized (a record or change file is damaged)."""
    derived = tuple(layout.join(prefix, d) + "/" for d in (layout.SNAPSHOT_DIR, layout.SNAPSHOT_DATA_DIR))
    kinds = ("gap", "malformed", "missing", "size", "checksum", "unreadable")
    return [p.version for p in report.problems if p.version is not None and p.kind in kinds and not p.path.startswith(derived)]


def _check_content(report: VerifyReport, files: TableFiles, con, v: int, record, good_snapshots) -> None:
    path = _log_path(files.prefix, v)
    if record.fingerprint is None:
        report.notes.append(f"version {v} has no fingerprint (written before fingerprints); content not checked")
        return
    bad = frozenset(s for s in snapshot.snapshot_versions(files.storage, files.prefix) if s not in good_snapshots)
    try:
        plan = planner.plan(files, v, exclude=bad)
        actual = fingerprint.of_plan(con, plan)
        rows = con.sql(f"SELECT count(*) FROM ({plan.relation_sql()}) AS v").fetchall()[0][0]
    except _CHECK_ERRORS as e:
        report.add("unreadable", path, v, f"version cannot be materialized: {first_line(e)}")
        return
    report.versions_checked += 1
    if fingerprint.encode(actual) != record.fingerprint:
        report.add("fingerprint", path, v, f"materialized content has fingerprint {fingerprint.encode(actual)}, the record says {record.fingerprint}")
    if rows != record.commit.num_rows:
        report.add("rows", path, v, f"materialized content has {rows} rows, the record says {record.commit.num_rows}")


def _check_preimages(report: VerifyReport, files: TableFiles, con, v: int, record) -> None:
    """Format 5: the pre-images stored in version v's delete rows against the fingerprints (changes.py)."""
    if not record.preimages:
        return
    from . import changes

    try:
        problem = changes.preimage_mismatch(files, con, v)
    except HeadMissingError:  # a lost newest record: reported as such already; the compaction cover needs the head
        return
    except _CHECK_ERRORS as e:
        report.add("unreadable", _log_path(files.prefix, v), v, f"pre-images cannot be read: {first_line(e)}")
        return
    if problem is not None:
        report.add("fingerprint", _log_path(files.prefix, v), v, problem)


def _check_snapshot_content(report: VerifyReport, files: TableFiles, con, v: int, snap, record) -> None:
    path = layout.join(files.prefix, snap.path)
    if snap.fingerprint is None or record is None:
        return
    try:
        actual = fingerprint.of_parquet(con, files.storage.url(path), record.columns)
    except _CHECK_ERRORS as e:
        report.add("unreadable", path, v, f"snapshot file cannot be read: {first_line(e)}")
        return
    if fingerprint.encode(actual) != snap.fingerprint:
        report.add("fingerprint", path, v, f"snapshot content has fingerprint {fingerprint.encode(actual)}, its record says {snap.fingerprint}")


def _expired(files: TableFiles, latest: int) -> tuple[int, set[int]]:
    """(floor, expired versions) by the latest record (expiry.py): the newest intact snapshot at or below the cut-off
    (readers start there, vacuum may have reclaimed the files of the versions up to it; -1 if none) and the versions
    below the cut-off that are not kept. (-1, none) if nothing expired or the record cannot be read."""
    from . import expiry

    try:
        cutoff, kept = expiry.cutoff_of(files.log.read(latest))
    except CorruptionError:
        return -1, set()
    if cutoff <= 0:
        return -1, set()
    snap = snapshot.usable_at_or_below(files.storage, files.prefix, cutoff, accept=lambda r: snapshot.in_row_order(r, files.log))
    return (snap.version if snap is not None else -1), {v for v in range(cutoff) if v not in kept}


def _log_path(prefix: str, version: int) -> str:
    return layout.join(prefix, layout.log_record(version))


def _reason(error: Exception) -> str:
    """What is wrong, without the path a CorruptionError names (the report names the file)."""
    return error.reason if isinstance(error, CorruptionError) else str(error) or type(error).__name__
