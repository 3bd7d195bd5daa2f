"""Push, pull and clone: copy the versions one store lacks from another, fast-forward only, nothing sent twice.

Both ends are ordinary stores reached through the storage protocol (a local directory, s3://, memory://, ...).
One transfer (`transfer`) goes from a source store to a destination store, table by table:

1. Plan, reading only. For each table, `history` lists what its history consists of at the source, in the order
   it must be published (commit records with the change files they add, snapshot records and files, compaction
   records and compacted files, log checkpoints, tags). The destination's head and its records of the versions both
   sides have are read and compared with the source's: a different record under the same version number (or a
   table with another `table_id`), or a tag naming another version, is a divergence, and the transfer refuses with
   DivergedError before anything is written on either side (all tables are checked first).
2. Files. Every file the parts to send reference and the destination lacks is read from the source, its size and
   SHA-256 checked against the record that lists it, and published with put-if-absent. A file the destination already
   holds with the recorded size and SHA-256 is not sent again (a transfer killed half-way leaves such files).
3. Records, in version order, each with put-if-absent: a reader of the destination never sees a version before its
   files, and a writer committing on the destination meanwhile is never overwritten: if record N is taken and its
   bytes differ, the transfer stops with DivergedError. Then the destination's head hint is advanced.

A clone creates the destination store, so nobody reads it yet: each new table's records are published in parallel
with version 0's last (a table exists from its version-0 record on), and the change files that a compaction record
being sent replaces are left out, as vacuum would remove them (`_publish_new`).

What is sent: commit records (and their files) above the destination's head; derived records of those versions
(snapshots, log checkpoints) when they are intact at the source; every intact compaction record the destination
lacks (it may be the only way to read versions whose change files were vacuumed); tags the destination lacks.
Change files vacuumed at the source (listed in an intact compaction record's `replaces`) are legitimately absent and
not sent. A source file whose size or SHA-256 differs from its record is never sent: for a change file the transfer
refuses (CorruptionError naming it) before any record is published; a damaged derived part (snapshot, compaction,
checkpoint) is left out. Nothing under `_staging/`, `_quarantine/` or `_repairs/` is ever sent.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import checkpoint, codec, integrity, layout, marker, names, ondemand
from .errors import CorruptionError, DivergedError, TableNotFoundError
from .log import CommitRecord, DataFile, Log
from .snapshot import SnapshotRecord

if TYPE_CHECKING:
    from .store import Store

THREADS = 8  # files and records moved in parallel

Direction = Literal["push", "pull", "clone"]


@dataclass(frozen=True)
class TableSync:
    """What a push or pull did to one table."""

    table: str
    head_before: int | None  # the destination's latest version before (None: it had no such table)
    head: int  # the destination's latest version after
    versions: int  # commit records sent
    files: int  # data files sent (change, snapshot and compacted files)
    bytes: int  # bytes sent: data files and records
    records: int  # records sent of every kind (commit, snapshot, compaction, checkpoint, tag)

    @property
    def created(self) -> bool:
        """Whether the table was created on the destination."""
        return self.head_before is None


@dataclass(frozen=True)
class SyncReport:
    """What a push, pull or clone sent (or received), per table: versions, files, bytes and the resulting head."""

    direction: Direction
    source: str  # where from (a path or URL)
    destination: str  # where to
    tables: tuple[TableSync, ...] = ()

    @property
    def versions(self) -> int:
        return sum(t.versions for t in self.tables)

    @property
    def files(self) -> int:
        return sum(t.files for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def table(self, name: str) -> TableSync:
        """The entry of table `name`; KeyError if the transfer did not include it."""
        for t in self.tables:
            if t.table == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True)
class SyncProgress:
    """Where a transfer stands, for a progress bar: files and bytes sent so far, out of the planned totals."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[SyncProgress], None]


# --- what a table's history consists of ------------------------------------------------------------------------


COMMIT, SNAPSHOT, COMPACTION, CHECKPOINT, TAG = "commit record", "snapshot record", "compaction record", "log checkpoint", "tag record"


@dataclass(frozen=True)
class Part:
    """One record of a table's history at the source, with the files it references (published before it).

    `when` says when it is sent: "above" if its version is above the destination's head (commit records, snapshots,
    checkpoints), "absent" if the destination has no record at `record` (compaction records, tags)."""

    kind: str  # COMMIT, SNAPSHOT, COMPACTION, CHECKPOINT or TAG
    record: str  # path relative to the table directory
    version: int | None  # the version it belongs to (a tag: the version it names)
    content: bytes | dict[str, Any]  # the record's bytes at the source, or (commit records) its decoded JSON
    files: tuple[DataFile, ...] = ()
    when: Literal["above", "absent"] = "above"
    optional: bool = False  # derived: left out (not an error) if damaged at the source
    replaced: frozenset[str] = frozenset()  # compaction: the files it makes unnecessary (may be vacuumed)

    @property
    def data(self) -> bytes:
        """The bytes to publish (a commit record is encoded only when it is sent)."""
        return self.content if isinstance(self.content, bytes) else record_bytes(self.content)


@dataclass
class History:
    """A table's history at the source: its head, its commit records (decoded) and its parts in publish order."""

    table: str
    head: int
    commits: list[dict[str, Any]]
    parts: list[Part]
    tags: dict[str, int] = field(default_factory=dict)
    _replaced: frozenset[str] | None = None

    def replaced(self) -> frozenset[str]:
        """Paths (relative to the table directory) some intact compaction record's `replaces` lists: they may have
        been vacuumed at the source, readers take the compacted files instead."""
        if self._replaced is None:
            self._replaced = frozenset(p for part in self.parts for p in part.replaced)
        return self._replaced


def history(storage: Any, table: str) -> History:
    """Every store path the history of `table` consists of at `storage`, in the order a copy must publish them.

    The one place that knows the kinds of a table's files (docs/format.md, "Layout"): for each version v in order,
    its commit record (with the change files it adds), then the snapshot record of v (with its snapshot file), the
    compaction records of blocks ending at v (with their compacted files), the log checkpoint of the segment ending
    at v; after all versions, the tags. Files come before the record that lists them, records in this order, so that
    a reader of the copy never meets a record whose files or versions are missing. Intact derived records only: a
    damaged snapshot, compaction record or checkpoint is not part of the history (readers ignore them too).
    `_staging/`, `_quarantine/`, `_repairs/` and the head hint are no part of it. CorruptionError if a commit
    record or a tag is damaged.
    """
    prefix = layout.table_dir(table)
    log = Log(storage, prefix)
    head = log.latest()  # HeadMissingError if the newest record was lost
    commits = commit_records(storage, prefix, head)
    records: list[CommitRecord] = []
    for v, obj in enumerate(commits):
        path = layout.join(prefix, layout.log_record(v))
        with codec.reading(path, v, "commit record"):
            record = CommitRecord.from_json(obj)
        if record.version != v:
            raise CorruptionError(path, v, f"record says version {record.version}")
        if v > 0 and record.table_id != records[0].table_id:
            raise CorruptionError(path, v, f"record belongs to another table (table_id {record.table_id}, version 0 says {records[0].table_id})")
        records.append(record)
    table_id = records[0].table_id

    # the derived records, read in parallel: per directory, how to make a part of one of its files (None: left out)
    kinds: list[tuple[str, Callable[[str, bytes], Part | None]]] = [
        (layout.SNAPSHOT_DIR, lambda name, data: _snapshot_part(prefix, name, data, commits, head)),
        (layout.COMPACTION_DIR, lambda name, data: _compaction_part(prefix, name, data, table_id, head)),
        (layout.CHECKPOINT_DIR, lambda name, data: _checkpoint_part(prefix, name, data, commits, table_id, head)),
    ]
    listed = [(directory, name, make) for directory, make in kinds for name in storage.list(layout.join(prefix, directory))]
    contents = _read_all(storage, [layout.join(prefix, directory, name) for directory, name, _ in listed])
    after: dict[int, list[Part]] = {}  # derived parts, by the version they are published after
    for (_, name, make), data in zip(listed, contents):
        part = make(name, data) if data is not None else None
        if part is not None:
            after.setdefault(part.version or 0, []).append(part)

    parts: list[Part] = []
    for v, record in enumerate(records):
        parts.append(Part(COMMIT, layout.log_record(v), v, commits[v], record.files))
        parts.extend(after.get(v, ()))
    tags: dict[str, int] = {}
    for name in storage.list(layout.join(prefix, layout.TAG_DIR)):
        tag = layout.tag_of(name)
        if tag is None:
            continue
        relative = layout.tag_record(tag)
        data = storage.read(layout.join(prefix, relative))
        tags[tag] = _tag_version(data, layout.join(prefix, relative), tag, table_id, head)
        parts.append(Part(TAG, relative, tags[tag], data, when="absent"))
    return History(table, head, commits, parts, tags)


def _snapshot_part(prefix: str, name: str, data: bytes, commits: list[dict[str, Any]], head: int) -> Part | None:
    from .snapshot import check_against_log

    version = layout.record_version(name)
    if version is None or version > head:
        return None
    path = layout.join(prefix, layout.SNAPSHOT_DIR, name)
    try:
        record = codec.parse(data, SnapshotRecord.from_json, path=path, version=version, what="snapshot record")
        if record.version != version:
            return None
        check_against_log(record, commits[version], path)
    except CorruptionError:
        return None
    snapshot_file = DataFile(record.path, record.rows, record.size, record.sha256, False)
    return Part(SNAPSHOT, layout.snapshot_record(version), version, data, (snapshot_file,), optional=True)


def _compaction_part(prefix: str, name: str, data: bytes, table_id: str | None, head: int) -> Part | None:
    from .compaction import CompactionRecord

    block = layout.compaction_block(name)
    if block is None or block[1] > head:
        return None
    path = layout.join(prefix, layout.COMPACTION_DIR, name)
    try:
        record = codec.parse(data, CompactionRecord.from_json, path=path, version=None, what="compaction record")
        if (record.first, record.last) != block or (record.table_id is not None and record.table_id != table_id):
            return None
    except CorruptionError:
        return None
    files = tuple(cf.file for cf in record.files)
    return Part(COMPACTION, layout.join(layout.COMPACTION_DIR, name), block[1], data, files, "absent", True, frozenset(record.replaces))


def _checkpoint_part(prefix: str, name: str, data: bytes, commits: list[dict[str, Any]], table_id: str | None, head: int) -> Part | None:
    last = layout.checkpoint_last(name)
    if last is None or last > head:
        return None
    segment = checkpoint.segment_of(last)
    if checkpoint.name(segment) != name:
        return None
    path = layout.join(prefix, layout.CHECKPOINT_DIR, name)
    try:
        seg = checkpoint.decode(segment, data, path)
        checkpoint.check_identity(seg, table_id)
        if any(seg.raw(v) != commits[v] for v in range(seg.first, seg.last + 1)):
            return None
    except CorruptionError:
        return None
    return Part(CHECKPOINT, layout.checkpoint_file(last), last, data, optional=True)


def _tag_version(data: bytes, path: str, tag: str, table_id: str | None, head: int | None) -> int:
    obj = codec.decode(data, path=path, version=None, what="tag record")
    with codec.reading(path, None, "tag record"):
        version = int(obj["version"])
    if obj.get("tag") != tag or obj.get("table_id") != table_id:
        raise CorruptionError(path, None, "tag record names another tag or table")
    if version < 0 or (head is not None and version > head):
        raise CorruptionError(path, None, f"tag points at version {version}, which does not exist")
    return version


def _divergence(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    """Why two sides' records of one version differ, in words."""
    if theirs.get("table_id") != ours.get("table_id"):
        return "the table was created separately on each side (another table_id)"
    if theirs.get("timestamp") == ours.get("timestamp") and theirs.get("operation") == ours.get("operation"):
        return ("one side rewrote this commit's record (a purge rewrites the records of the versions that held purged "
                "rows) and transfers never rewrite history: the other side still holds the purged rows; replace it "
                "with a fresh clone (or purge it on its own, after which the two sides stay separate)")
    return "the two sides hold different commits under this version number"


def commit_records(storage: Any, prefix: str, head: int) -> list[dict[str, Any]]:
    """The commit records of versions 0..head of the table under `prefix`, decoded, checksums checked: from the log
    checkpoints of complete segments (checked as readers check them: identity and last record; one read for 100
    records) and from `_log/` for the rest (read in parallel). CorruptionError if one is missing or damaged."""
    found: dict[int, dict[str, Any]] = {}
    for segment in range(checkpoint.segment_of(head + 1)):  # the segments that end at or before head
        seg = checkpoint.load(storage, prefix, segment)
        if seg is not None:
            for v in range(seg.first, seg.last + 1):
                found[v] = seg.raw(v)
    rest = [v for v in range(head + 1) if v not in found]
    for v, raw in zip(rest, _read_all(storage, [layout.join(prefix, layout.log_record(v)) for v in rest])):
        path = layout.join(prefix, layout.log_record(v))
        if raw is None:
            raise CorruptionError(path, v, f"commit record is missing from the middle of the log at {storage.location}")
        found[v] = codec.decode(raw, path=path, version=v, what="commit record")
    for v in range(head + 1):
        with codec.reading(layout.join(prefix, layout.log_record(v)), v, "commit record"):
            integrity.check_seal(found[v])  # a record taken from a checkpoint carries its own checksum too
    return [found[v] for v in range(head + 1)]


def record_bytes(obj: dict[str, Any]) -> bytes:
    """The stored form of a commit record (codec.encode's: sorted keys, indented by one space). For a record read
    from `_log/` these are its bytes; a record without a checksum (format 1) is written as it is, unsealed."""
    return json.dumps(obj, sort_keys=True, indent=1).encode()


def _read_all(storage: Any, paths: Sequence[str]) -> list[bytes | None]:
    """The bytes of each path (None if it does not exist), read in parallel."""

    def read(path: str) -> bytes | None:
        try:
            return bytes(storage.read(path))
        except FileNotFoundError:
            return None

    if len(paths) <= 1:
        return [read(p) for p in paths]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(read, paths))


# --- planning: what the destination lacks, and whether the two sides diverged ------------------------------------


@dataclass
class TablePlan:
    table: str
    history: History
    head_before: int | None  # the destination's head (None: no such table there)
    parts: list[Part]  # what to publish, in order
    skip: set[str] = field(default_factory=set)  # files not sent: replaced by a compaction that is sent (clone)


def _plan_table(source: Any, destination: Any, table: str) -> TablePlan:
    found = history(source, table)
    prefix = layout.table_dir(table)
    log = Log(destination, prefix)
    if not log.exists():
        return TablePlan(table, found, None, list(found.parts))
    head = log.latest()
    shared = min(head, found.head)
    theirs = commit_records(destination, prefix, shared)
    for v in range(shared + 1):
        if theirs[v] != found.commits[v]:
            raise DivergedError(table, v, _divergence(theirs[v], found.commits[v]))
    present = _names(destination, prefix, (layout.COMPACTION_DIR, layout.TAG_DIR))
    parts = []
    for part in found.parts:
        if part.kind == TAG and part.record in present:
            _same_tag(destination, found, part, layout.join(prefix, part.record))
            continue
        if part.when == "absent":
            if part.record not in present:
                parts.append(part)
        elif part.version is not None and part.version > head:
            parts.append(part)
    return TablePlan(table, found, head, parts)


def _same_record(raw: bytes, ours: dict[str, Any], path: str, version: int) -> bool:
    """Whether the stored record `raw` holds exactly the record `ours` (its checksum checked: damage is an error)."""
    return codec.decode(raw, path=path, version=version, what="commit record") == ours


def _names(storage: Any, prefix: str, directories: Iterable[str]) -> set[str]:
    """Paths (relative to the table directory) of the files directly in `directories` of the table under `prefix`."""
    return {layout.join(d, n) for d in directories for n in storage.list(layout.join(prefix, d))}


# --- copying ------------------------------------------------------------------------------------------------------


class _Meter:
    def __init__(self, files: int, size: int, callback: ProgressCallback | None) -> None:
        self.files_total, self.bytes_total, self.callback = files, size, callback
        self.files = self.size = 0
        self.lock = threading.Lock()

    def add(self, files: int, size: int) -> None:
        with self.lock:  # the callback runs under the lock: a progress bar needs no locking of its own
            self.files += files
            self.size += size
            if self.callback is not None:
                self.callback(SyncProgress(self.files, self.files_total, self.size, self.bytes_total))


def transfer(
    source: Any,
    destination: Any,
    direction: Direction,
    tables: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> SyncReport:
    """Copy what `destination` lacks of the tables of `source` (both storages); see the module docstring."""
    known = _tables(source)
    if tables is None:
        selected = known
    else:
        if isinstance(tables, str):
            tables = [tables]
        selected = []
        for name in tables:
            names.check("table", name)
            if name not in known:
                raise TableNotFoundError(name, known)
            if name not in selected:
                selected.append(name)
    plans = [_plan_table(source, destination, name) for name in selected]  # every table checked before any write
    if any(plan.parts for plan in plans):  # records of format 4 (ALTER, PURGE, ...) need a store that says 4
        marker.upgrade(destination, int(marker.read(source).get("format_version", 1)))
    fresh = direction == "clone"  # a new store nobody reads yet: see _publish_new
    present = {plan.table: _names(destination, layout.table_dir(plan.table), (layout.DATA_DIR, layout.SNAPSHOT_DATA_DIR, layout.COMPACTED_DATA_DIR)) for plan in plans}
    lazy = isinstance(destination, ondemand.OnDemandStorage)  # a lazy clone: records only, files when needed
    for plan in plans:
        if lazy:
            plan.skip = {f.path for f in _files_to_send(plan)}
        elif fresh and plan.head_before is None:
            plan.skip = {p for part in plan.parts if part.kind == COMPACTION for p in part.replaced}
    jobs = [(plan, f) for plan in plans for f in _files_to_send(plan) if f.path not in plan.skip]
    missing = [(plan, f) for plan, f in jobs if f.path not in present[plan.table]]
    meter = _Meter(len(missing), sum(f.size for _, f in missing), progress)
    results = _copy_files(source, destination, jobs, present, meter)
    # a compaction record whose files did not arrive intact is not published: the files it replaces are needed
    needed = []
    for plan in plans:
        if plan.skip and not lazy:
            kept = {p for part in plan.parts if part.kind == COMPACTION and _problem(plan, part, results) is None for p in part.replaced}
            needed += [(plan, f) for f in _files_to_send(plan) if f.path in plan.skip - kept]
            plan.skip = kept
    if needed:
        meter.files_total += len(needed)
        meter.bytes_total += sum(f.size for _, f in needed)
        results.update(_copy_files(source, destination, needed, present, meter))
    from . import filetable

    filetable.carry_blobs(source, destination, [plan.table for plan in plans])  # file tables' blobs before their records
    report = [(_publish_new if fresh and plan.head_before is None else _publish)(destination, plan, results, meter) for plan in plans]
    return SyncReport(direction, source.location, destination.location, tuple(report))


def _tables(storage: Any) -> list[str]:
    return [n for n in storage.list_dirs(layout.TABLES_DIR) if storage.exists(layout.join(layout.table_dir(n), layout.log_record(0)))]


def _files_to_send(plan: TablePlan) -> list[DataFile]:
    seen: dict[str, DataFile] = {}
    for part in plan.parts:
        for f in part.files:
            seen.setdefault(f.path, f)
    return list(seen.values())


@dataclass
class _Copied:
    ok: bool  # at the destination with its recorded size and SHA-256
    sent: bool  # sent by this transfer
    problem: CorruptionError | None = None  # why not ok
    missing: bool = False  # not at the source (vacuumed, if a compaction record replaces it)


def _copy_files(source: Any, destination: Any, jobs: list[tuple[TablePlan, DataFile]], present: dict[str, set[str]], meter: _Meter) -> dict[tuple[str, str], _Copied]:
    def copy(job: tuple[TablePlan, DataFile]) -> tuple[tuple[str, str], _Copied]:
        plan, f = job
        prefix = layout.table_dir(plan.table)
        path = layout.join(prefix, f.path)
        key = (plan.table, f.path)
        if f.path in present[plan.table]:
            return key, _check_at(destination, path, f)
        try:
            data = bytes(source.read(path))
        except FileNotFoundError:
            return key, _Copied(False, False, CorruptionError(path, None, f"file is missing at {source.location}"), missing=True)
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != f.size or digest != f.sha256:
            why = f"file at {source.location} has {len(data)} bytes and sha256 {digest[:16]}..., its record says {f.size} bytes, {f.sha256[:16]}..."
            return key, _Copied(False, False, CorruptionError(path, None, why))
        if not destination.put_if_absent(path, data):
            return key, _check_at(destination, path, f)  # published meanwhile (another transfer)
        meter.add(1, len(data))
        return key, _Copied(True, True)

    if len(jobs) <= 1:
        return dict(map(copy, jobs))
    with ThreadPoolExecutor(THREADS) as pool:
        return dict(pool.map(copy, jobs))


def _check_at(destination: Any, path: str, f: DataFile) -> _Copied:
    """A file the destination already holds: fine if it has the recorded size and SHA-256."""
    try:
        size = destination.stat(path).size
        if size == f.size and destination.sha256(path) == f.sha256:
            return _Copied(True, False)
    except FileNotFoundError:
        pass
    else:
        why = f"file already at {destination.location} differs from its record (size or sha256); remove it and sync again"
        return _Copied(False, False, CorruptionError(path, None, why))
    return _Copied(False, False, CorruptionError(path, None, f"file vanished from {destination.location} while syncing"))


def _problem(plan: TablePlan, part: Part, copied: dict[tuple[str, str], _Copied]) -> CorruptionError | None:
    """Why a file of `part` is not at the destination as recorded; None if all are, or are legitimately absent
    (vacuumed at the source, or not sent because a compaction record sent along stands for them)."""
    replaced = plan.history.replaced()
    for f in part.files:
        if f.path in plan.skip:
            continue
        c = copied[(plan.table, f.path)]
        if not c.ok and not (c.missing and f.path in replaced):
            return c.problem
    return None


def _check_commits(plan: TablePlan, copied: dict[tuple[str, str], _Copied]) -> None:
    """CorruptionError if a file of a commit part did not arrive intact: nothing of the table is published then."""
    for part in plan.parts:
        found = _problem(plan, part, copied) if part.kind == COMMIT else None
        if found is not None:
            raise CorruptionError(found.path, part.version, found.reason)


class _Tally:
    """What a table's publishing sent."""

    def __init__(self, plan: TablePlan, copied: dict[tuple[str, str], _Copied]) -> None:
        self.plan = plan
        self.sent = {p for (t, p), c in copied.items() if t == plan.table and c.sent}
        self.counted: set[str] = set()
        self.versions = self.files = self.bytes = self.records = 0
        self.head = plan.head_before if plan.head_before is not None else -1
        self.lock = threading.Lock()

    def add(self, part: Part, size: int) -> None:
        with self.lock:
            self.records += 1
            self.bytes += size
            if part.kind == COMMIT:
                self.versions += 1
                self.head = max(self.head, part.version or 0)
            for f in part.files:
                if f.path in self.sent and f.path not in self.counted:
                    self.counted.add(f.path)
                    self.files += 1
                    self.bytes += f.size

    def done(self, destination: Any) -> TableSync:
        """Advance the destination's head hint; the table's entry of the report."""
        if self.versions:
            log = Log(destination, layout.table_dir(self.plan.table))
            hinted = log.hint()
            if hinted is None or hinted < self.head:
                log.write_hint(self.head)
        before = self.plan.head_before
        final = max(self.head, before if before is not None else -1)
        return TableSync(self.plan.table, before, final, self.versions, self.files, self.bytes, self.records)


def _publish(destination: Any, plan: TablePlan, copied: dict[tuple[str, str], _Copied], meter: _Meter) -> TableSync:
    """Publish the records of `plan` in order; a part whose files did not arrive intact is left out if it is derived,
    else the transfer stops before its record (CorruptionError naming the file)."""
    prefix = layout.table_dir(plan.table)
    _check_commits(plan, copied)
    tally = _Tally(plan, copied)
    for part in plan.parts:
        if _problem(plan, part, copied) is not None:
            continue  # a derived part damaged at the source: left out
        path = layout.join(prefix, part.record)
        data = part.data
        if not destination.put_if_absent(path, data):
            _taken(destination, plan, part, path)
            continue
        tally.add(part, len(data))
        meter.add(0, 0)
    return tally.done(destination)


def _publish_new(destination: Any, plan: TablePlan, copied: dict[tuple[str, str], _Copied], meter: _Meter) -> TableSync:
    """A table new to a store that a clone is creating: its records in parallel, version 0's last.

    A table exists from its version-0 record on (docs/format.md), so before it nobody sees any of the others, and
    their order does not matter; afterwards all are there. This is what lets a clone leave out the change files a
    compaction replaced (`plan.skip`), as vacuum would: no reader can see a version of a compacted block before the
    block's record. An interrupted clone leaves an invisible, partial table that `pull` completes (in order). Should
    a table of that name be created meanwhile (version 0 taken by other bytes), the records published here are
    deleted again and the clone fails as diverged."""
    prefix = layout.table_dir(plan.table)
    _check_commits(plan, copied)
    tally = _Tally(plan, copied)
    first, rest = plan.parts[0], [p for p in plan.parts[1:] if _problem(plan, p, copied) is None]
    assert first.kind == COMMIT and first.version == 0
    published: list[str] = []

    def put(part: Part) -> None:
        path = layout.join(prefix, part.record)
        data = part.data
        if destination.put_if_absent(path, data):
            published.append(path)
            tally.add(part, len(data))
            meter.add(0, 0)
        else:
            _taken(destination, plan, part, path)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(put, rest))
    try:
        put(first)
    except DivergedError:
        for path in published:
            destination.delete(path)
        raise DivergedError(plan.table, 0, "a table of this name was created on the destination while it was being cloned") from None
    return tally.done(destination)


def _taken(destination: Any, plan: TablePlan, part: Part, path: str) -> None:
    """Record `path` exists at the destination already (a writer there, or an earlier transfer): identical is fine; a
    different commit record or tag is a divergence; a different derived record is the destination's own (fine)."""
    if part.kind == COMMIT:
        assert part.version is not None
        if not _same_record(destination.read(path), plan.history.commits[part.version], path, part.version):
            raise DivergedError(plan.table, part.version, "a writer on the destination committed this version while it was being sent")
    elif part.kind == TAG:
        _same_tag(destination, plan.history, part, path)


def _same_tag(destination: Any, found: History, part: Part, path: str) -> None:
    """DivergedError unless the destination's record of the tag `part` carries names the same version."""
    tag = layout.tag_of(part.record.rsplit("/", 1)[-1]) or ""
    theirs = _tag_version(destination.read(path), path, tag, found.commits[0].get("table_id"), None)
    if theirs != part.version:
        raise DivergedError(found.table, part.version, f"the tag names version {part.version} here and version {theirs} there", tag=tag)


# --- the public verbs -----------------------------------------------------------------------------------------------


def push(store: Store, remote: str | None, tables: Sequence[str] | None, storage_options: dict[str, Any] | None, progress: ProgressCallback | None) -> SyncReport:
    other = _open_remote(store, remote, storage_options)
    return transfer(store._storage, other._storage, "push", tables, progress)


def pull(store: Store, remote: str | None, tables: Sequence[str] | None, storage_options: dict[str, Any] | None, progress: ProgressCallback | None, *, direction: Direction = "pull") -> SyncReport:
    other = _open_remote(store, remote, storage_options)
    return transfer(other._storage, store._storage, direction, tables, progress)


def _open_remote(store: Store, name: str | None, storage_options: dict[str, Any] | None) -> Store:
    from . import store as stores
    from .remote import Remotes

    remote = Remotes(store._storage).get(name)
    options = {**remote.options, **(storage_options or {})}
    return stores.open(remote.url, storage_options=options or None)


def clone(
    url: Any,
    path: Any,
    *,
    tables: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    lazy: bool = False,
) -> tuple[Store, SyncReport]:
    """A new store at `path` holding the tables of the store at `url` (all, or `tables`), with `url` as its remote
    'origin' (storage options without the secret ones); with `lazy`, the records only (ondemand.py)."""
    from . import store as stores
    from .remote import DEFAULT, Remotes, check_url

    check_url(url)
    stores.open(url, storage_options=storage_options)  # StoreNotFoundError before anything is created
    local = stores.init(path)
    Remotes(local._storage).add(DEFAULT, url, storage_options, drop_secrets=True)
    if lazy:
        Remotes(local._storage).set_lazy(DEFAULT)
        local = stores.Store(path, ondemand.wrap(local._storage, storage_options))
    report = pull(local, DEFAULT, tables, storage_options, progress, direction="clone")
    return local, report


def describe(report: SyncReport) -> list[dict[str, Any]]:
    """The report as one plain dict per table (the CLI's JSON)."""
    return [
        {
            "table": t.table,
            "head_before": t.head_before,
            "head": t.head,
            "versions": t.versions,
            "files": t.files,
            "bytes": t.bytes,
            "records": t.records,
            "created": t.created,
        }
        for t in report.tables
    ]

