"""Distributed appends: Table.append(dask_dataframe | ray_dataset), one version written by the engine's workers.

1. The driver reads the head and asks the engine for the length of every partition (a first pass that reads the
   rows where they are; nothing comes back but the counts). Partition i gets the row ids next_row_id + (rows of
   the partitions before it) onward.
2. Each worker writes the change file of its own partition straight to the store (`data/<version>-<name>.parquet`,
   put-if-absent; the name starts with the partition's index in hex, so that name order is row-id order): its rows
   conformed to the head's columns (schema.conform), `_row_id`, `_op = 'I'`, `_version = head + 1`. It returns the
   file's size, SHA-256 and rows, and the fingerprint row-hash sum of its rows (fingerprint.py).
3. The driver runs the key checks of any append (operations._check_batch_keys, _check_new_keys: nulls, NaN,
   duplicates across every partition, keys already in the table) over the key columns of the written files, then
   commit.py publishes one commit record listing every file (several change files for one version: format 4, the
   store's marker is raised first).

A commit conflict (another writer took version head + 1, or moved next_row_id) makes the workers write again for the
new head; the files of the lost attempt are removed. A failed worker fails the append: no record is published, the
files the other workers wrote are removed (a file a straggler writes after that is referenced by no record, and
vacuum removes it). Attempts take at most commit.PUBLISH_WINDOW from the first file written to the record.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import fingerprint, layout, marker
from .commit import PUBLISH_WINDOW, ROW_GROUP_ROWS, _base_fingerprint, change_file_encoding, commit
from .errors import InvalidInputError, SchemaMismatchError
from .layout import INSERT, OP, ROW_ID, VERSION
from .log import DataFile
from .operations import ChangeSet, Head, _check_batch_keys, _check_new_keys, change_schema
from .schema import Column, conform

if TYPE_CHECKING:
    from .log import Commit
    from .planner import TableFiles


@dataclass(frozen=True)
class Task:
    """What a worker needs to write the change file of one partition (picklable)."""

    location: str
    storage_options: tuple[tuple[str, Any], ...]
    path: str  # relative to the store root
    version: int
    first_id: int
    columns: tuple[Column, ...]
    merge: bool


@dataclass(frozen=True)
class Written:
    """What a worker wrote: the change file (DataFile, path relative to the table), its columns, its row hashes."""

    file: DataFile
    columns: tuple[Column, ...]
    row_hash: int


def write_partition(part: Any, task: Task) -> Written | None:
    """Worker side: write partition `part` (pandas or Arrow) as the change file `task.path`; None if it is empty."""
    from .fragments import _store

    data = part if isinstance(part, pa.Table) else pa.Table.from_pandas(part, preserve_index=False)
    if data.num_rows == 0:
        return None
    conformed, columns = conform(data, task.columns, merge=task.merge or not task.columns)
    rows = conformed.add_column(0, ROW_ID, pa.array(range(task.first_id, task.first_id + data.num_rows), pa.int64()))
    rows = rows.add_column(1, OP, pa.repeat(pa.scalar(INSERT, pa.string()), rows.num_rows))
    rows = rows.add_column(2, VERSION, pa.repeat(pa.scalar(task.version, pa.int64()), rows.num_rows))
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS, **change_file_encoding(rows.column_names))
    body = sink.getvalue().to_pybytes()
    store = _store(task.location, task.storage_options)
    if not store._storage.put_if_absent(task.path, body):
        raise InvalidInputError(task.path, f"change file {task.path!r} exists already")
    import duckdb

    con = duckdb.connect()
    con.register("partition_rows", rows)
    hashed = int(con.execute(fingerprint.sum_sql("partition_rows", columns)).fetchall()[0][0])
    con.close()
    relative = task.path.split("/", 2)[2]  # tables/<table>/data/... -> data/...
    return Written(DataFile(relative, rows.num_rows, len(body), hashlib.sha256(body).hexdigest(), True), columns, hashed)


class _Dask:
    def __init__(self, frame: Any):
        self.frame = frame

    def lengths(self) -> list[int]:
        import dask

        return [int(n) for n in dask.compute(*[dask.delayed(len)(p) for p in self.frame.to_delayed()])]

    def write(self, tasks: list[Task | None]) -> list[Written | None]:
        import dask

        parts = self.frame.to_delayed()
        jobs = [dask.delayed(write_partition)(p, t) for p, t in zip(parts, tasks) if t is not None]
        return list(dask.compute(*jobs))


class _Ray:
    def __init__(self, dataset: Any):
        import ray

        self.ray = ray
        self.refs = dataset.to_arrow_refs()  # blocks stay in the object store

    def lengths(self) -> list[int]:
        count = self.ray.remote(_num_rows)
        return [int(n) for n in self.ray.get([count.remote(r) for r in self.refs])]

    def write(self, tasks: list[Task | None]) -> list[Written | None]:
        writer = self.ray.remote(write_partition)
        return list(self.ray.get([writer.remote(r, t) for r, t in zip(self.refs, tasks) if t is not None]))


class Local:
    """Partitions already in this process (a list of Arrow tables), written one after the other: the engine-free
    form of a distributed append (tests, and callers holding their partitions themselves)."""

    def __init__(self, parts: list[pa.Table]):
        self.parts = parts

    def lengths(self) -> list[int]:
        return [p.num_rows for p in self.parts]

    def write(self, tasks: list[Task | None]) -> list[Written | None]:
        return [write_partition(p, t) for p, t in zip(self.parts, tasks) if t is not None]


def _num_rows(table: pa.Table) -> int:
    return table.num_rows


@dataclass
class _Attempt:
    """The files written for one head (version and next_row_id)."""

    version: int
    next_row_id: int
    started: float
    written: list[Written] = field(default_factory=list)
    keys: pa.Table | None = None

    def fits(self, head: Head) -> bool:
        """Whether these files are the version after `head`, with its row ids, and still young enough to publish."""
        same = self.version == head.record.version + 1 and self.next_row_id == head.record.next_row_id
        return same and time.monotonic() - self.started < PUBLISH_WINDOW / 2


@dataclass(frozen=True)
class DistributedChanges(ChangeSet):
    """A ChangeSet whose rows (inserts of new row ids) are in change files the workers wrote to the store already."""

    written: tuple[DataFile, ...] = ()
    staged_rows: int = 0

    @property
    def staged(self) -> bool:
        return True

    def count(self, op: str) -> int:
        return self.staged_rows if op == INSERT else 0

    def publish(self, files: TableFiles, version: int) -> tuple[DataFile, ...]:
        if len(self.written) > 1:
            marker.upgrade(files.storage, 4)  # several change files for one version: format 4
        return self.written


def append(table: Any, data: Any, *, merge: bool, info: Any) -> Commit:
    """Table.append of a Dask DataFrame, a Ray Dataset or Local partitions (see the module docstring)."""
    if isinstance(data, Local):
        engine: Any = data
    else:
        engine = _Ray(data) if type(data).__module__.startswith("ray.") else _Dask(data)
    files: TableFiles = table._files
    store = table._store
    options = tuple(sorted(store._storage_options.items()))
    from .fragments import _location

    location = _location(store)
    current: list[_Attempt] = []
    building = [False]  # whether a failure came from building (nothing published) or from publishing

    def build(head: Head) -> ChangeSet:
        building[0] = True
        attempt = current[-1] if current else None
        if attempt is None or not attempt.fits(head):
            if attempt is not None:
                _remove(files, attempt)
            attempt = _write(engine, head, files, location, options, merge)
            current.append(attempt)
        changes = _changes(head, attempt, files)
        building[0] = False
        return changes

    try:
        return commit(table, "APPEND", build, info)
    except BaseException:
        # a failure while publishing may have published the record: its files are left for vacuum (commit.py)
        for attempt in current if building[0] else current[:-1]:
            _remove(files, attempt)
        raise
    finally:
        table._store._head_cache().drop_lookup(files)


def _write(engine: Any, head: Head, files: TableFiles, location: str, options: tuple, merge: bool) -> _Attempt:
    """Have the workers write the change files of every partition for the version after `head`."""
    version = head.record.version + 1
    lengths = engine.lengths()
    tasks: list[Task | None] = []
    first_id = head.record.next_row_id
    batch = uuid.uuid4().hex[:16]
    for i, n in enumerate(lengths):
        name = f"{layout.DATA_DIR}/{layout.number(version)}-{i:08x}{batch}{uuid.uuid4().hex[:8]}{layout.PARQUET_SUFFIX}"
        tasks.append(Task(location, options, files.path(name), version, first_id, head.columns, merge) if n else None)
        first_id += n
    attempt = _Attempt(version, head.record.next_row_id, time.monotonic())
    try:
        results = engine.write(tasks)
    except BaseException:
        for t in tasks:
            if t is not None:
                files.storage.delete(t.path)
        raise
    attempt.written = [w for w in results if w is not None]
    if sum(w.file.rows for w in attempt.written) != sum(lengths):
        _remove(files, attempt)
        raise InvalidInputError(type(engine).__name__, "the partitions changed between counting and writing them (a non-deterministic input)")
    return attempt


def _changes(head: Head, attempt: _Attempt, files: TableFiles) -> DistributedChanges:
    """Key checks and the new fingerprint for the files of `attempt` against `head`."""
    columns = attempt.written[0].columns if attempt.written else head.columns
    if any(w.columns != columns for w in attempt.written):
        raise SchemaMismatchError([f"partitions disagree about the columns: {', '.join(c.name + ' ' + c.type for c in w.columns)}" for w in attempt.written if w.columns != columns][:3])
    if head.key and attempt.written:
        if attempt.keys is None:
            urls = [files.url(w.file.path) for w in attempt.written]
            attempt.keys = pa.concat_tables(pq.read_table(u, columns=list(head.key)) for u in urls)
        _check_batch_keys(head, attempt.keys)
        if head.record.version >= 0:
            _check_new_keys(head, attempt.keys)
    rows = sum(w.file.rows for w in attempt.written)
    old = _base_fingerprint(head) if head.record.version >= 0 else 0
    new = (old + sum(w.row_hash for w in attempt.written)) % fingerprint.MOD
    empty = change_schema(columns).empty_table()
    return DistributedChanges(empty, columns, head.record.next_row_id + rows, fingerprint=new, written=tuple(w.file for w in attempt.written), staged_rows=rows)


def _remove(files: TableFiles, attempt: _Attempt) -> None:
    for w in attempt.written:
        files.storage.delete(files.path(w.file.path))
