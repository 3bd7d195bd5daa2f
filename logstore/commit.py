"""Publishing an operation as the next version: change file first, then the commit record with put-if-absent.

A writer that loses the race for version N re-reads the head and re-runs its operation against it (operations
are re-evaluated, not replayed as file lists), with jittered exponential backoff, until it has tried at least
MAX_ATTEMPTS times for at least RETRY_SECONDS.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import warnings
from collections.abc import Callable
from concurrent.futures import wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from . import author as authors
from . import evolution, fingerprint, layout, marker, recent, threads, timestamps
from .errors import CommitConflictError, FileTableWriteError, InvalidInputError
from .layout import DELETE, INSERT, ROW_ID, UPDATE, VERSION
from .log import Commit, CommitRecord, DataFile
from .operations import ChangeSet, Head

if TYPE_CHECKING:
    from .planner import TableFiles

MAX_ATTEMPTS = 60
RETRY_SECONDS = 300.0
FIRST_BACKOFF = 0.002
MAX_BACKOFF = 0.25
# a writer publishes the record referencing a change file within this many seconds of starting to write the file,
# or gives the attempt up (and retries): vacuum relies on it to never remove a file an in-flight commit will reference
PUBLISH_WINDOW = 300.0
# row groups of at most 512Ki rows: a 1M-row base file scans on two threads (pyarrow's default, 1Mi rows, gives one
# row group and one thread) for ~4% more bytes (measured on the benchmark base: dictionaries are per row group)
ROW_GROUP_ROWS = 512 * 1024


@dataclass(frozen=True)
class CommitInfo:
    """What the caller says about a commit.

    `author=None` records logstore.author.default_author() (LOGSTORE_AUTHOR, else `git config user.name`, else the
    login name). A `timestamp` is checked here, before any work: it must parse and not lie in the future
    (TimestampError); that it lies after the previous commit is checked against the head when publishing.
    """

    message: str | None = None
    author: str | None = None
    timestamp: object = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})
        if not isinstance(self.metadata, dict):
            raise InvalidInputError(self.metadata, f"metadata must be a dict, not {type(self.metadata).__name__}")
        for name in ("message", "author"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(value, f"{name} must be a string, not {type(value).__name__}")
        if self.author is None:
            object.__setattr__(self, "author", authors.default_author())
        if self.timestamp is not None:
            timestamps.next_commit_time(None, self.timestamp)  # parses it and refuses the future, before any work


# the operations that write a table's rows or columns from the caller's data: a file table's rows change only by
# `add_files` (its rows must name blobs it stored), by restore and by purge
ROW_VERBS = frozenset({"APPEND", "UPSERT", "UPDATE", "DELETE", "OVERWRITE", "MERGE", "ALTER"})
FILE_TABLE = "file_table"  # the table property (true) that makes a table a file table (filetable.py)


def commit(table, operation: str, build: Callable[[Head], ChangeSet], info: CommitInfo, *, head: Callable[[], Head] | None = None) -> Commit:
    """Run `build` against the head and publish its changes as the next version; retry on conflicts.

    Gives up only after MAX_ATTEMPTS attempts *and* RETRY_SECONDS of trying: with several writers committing
    back to back, the one that lost a race and backed off keeps losing (the others' commit windows cover nearly
    all of the time; 4 processes on 2 cores starved one within 60 attempts), and only wins once they pause.
    """
    first_base = None
    delay = FIRST_BACKOFF
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        base = (head or table._head)()
        if operation in ROW_VERBS and base.record.properties.get(FILE_TABLE) is True:
            raise FileTableWriteError(table.name, operation)
        first_base = base.record.version if first_base is None else first_base
        published = _publish(table._files, operation, base, build(base), info)
        if published is not None:
            record, rows = published
            table._after_commit(record, rows)
            return record.commit
        if attempt >= MAX_ATTEMPTS and time.monotonic() - started >= RETRY_SECONDS:
            raise CommitConflictError(table.name, first_base, table._log.head_version(), attempt)
        time.sleep(random.uniform(0, delay))
        delay = min(delay * 2, MAX_BACKOFF)


def _publish_once(files: TableFiles, operation: str, head: Head, changes: ChangeSet, info: CommitInfo) -> CommitRecord | None:
    """Publish `changes` as the version after `head`; None if another writer published that version first."""
    published = _publish(files, operation, head, changes, info)
    return None if published is None else published[0]


def _publish(files: TableFiles, operation: str, head: Head, changes: ChangeSet, info: CommitInfo) -> tuple[CommitRecord, pa.Table | None] | None:
    """_publish_once, also returning the change rows as written (with _version, sorted; None if there were none)."""
    base = head.record
    version = base.version + 1
    changes = replace(changes, columns=evolution.assign_ids(base.columns, changes.columns, version))
    moment = timestamps.next_commit_time(base.commit.timestamp, info.timestamp)
    inserted, updated, deleted = (changes.count(op) for op in (INSERT, UPDATE, DELETE))
    staged = getattr(changes, "staged", None)  # change files written already: ingest.py's, distributed.py's
    fresh = getattr(changes, "inserts_only", True) if staged is not None else (inserted == changes.rows.num_rows and _min_row_id(changes.rows) >= base.next_row_id)
    started = time.monotonic()
    rows = _with_version(changes.rows, version) if changes.rows.num_rows else None
    preimages = changes.preimages and deleted > 0
    if preimages:
        _require_format_5(files.storage)  # format-4 logstores must refuse a store whose delete rows hold values
    new_fingerprint, written = _fingerprint_beside_files(files, head, changes, fresh=fresh, write=lambda: _write_files(files, version, rows, changes, fresh=fresh))
    record = CommitRecord(
        commit=Commit(
            version=version,
            timestamp=moment,
            operation=operation,
            author=info.author,
            message=info.message,
            metadata=dict(info.metadata),
            parameters=_jsonable(changes.parameters),
            rows_inserted=inserted,
            rows_updated=updated,
            rows_deleted=deleted,
            num_rows=changes.num_rows if changes.num_rows is not None else base.commit.num_rows + inserted - deleted,
        ),
        columns=changes.columns,
        key=changes.key if changes.key is not None else base.key,
        files=written,
        next_row_id=changes.next_row_id,
        change_rows_total=base.change_rows_total + (0 if fresh else getattr(changes, "staged_rows", changes.rows.num_rows)),
        properties=changes.properties if changes.properties is not None else base.properties,
        fingerprint=fingerprint.encode(new_fingerprint),
        table_id=base.table_id,
        preimages=preimages,
    )
    # If publishing raises, the record may or may not be on disk (e.g. the directory fsync failed after the
    # link), so the change file is left for vacuum; only a lost race proves that nothing references it.
    published = time.monotonic() - started < PUBLISH_WINDOW and files.log.publish(record)
    if not published:
        for f in written:  # never referenced by any commit: remove it now rather than leave it to vacuum
            files.storage.delete(files.path(f.path))
        return None
    try:
        files.log.write_hint(version)
    except OSError as e:  # the commit stands; without the hint a lost newest record is only harder to detect
        warnings.warn(f"logstore: could not write the head hint of version {version}: {e}", RuntimeWarning, stacklevel=3)
    return record, rows


def _write_files(files: TableFiles, version: int, rows: pa.Table | None, changes: ChangeSet, *, fresh: bool) -> tuple[DataFile, ...]:
    """The commit's data files: its change rows written now, or the ones ingest.py/distributed.py staged."""
    if getattr(changes, "staged", None) is not None:
        return changes.publish(files, version)  # type: ignore[attr-defined]
    return (_write_rows(files, version, rows, inserts_only=fresh),) if rows is not None else ()


def _fingerprint_beside_files(files: TableFiles, head: Head, changes: ChangeSet, *, fresh: bool, write: Callable[[], tuple[DataFile, ...]]) -> tuple[int | None, tuple[DataFile, ...]]:
    """The new fingerprint and the written data files. The fingerprint's DuckDB query (~2-4 ms, mostly binding its
    expression) runs on a worker thread while this one encodes, writes and fsyncs the change file (both release
    the GIL). If either fails, the files written are removed: nothing references them."""
    if changes.fingerprint is not None:
        return changes.fingerprint, write()
    computing = threads.submit(
        fingerprint.advance, _base_fingerprint(head), head, changes.rows, changes.columns,
        old_hash=changes.old_hash, new_hash=changes.new_hash, fresh=fresh,
    )
    written: tuple[DataFile, ...] = ()
    try:
        written = write()
    finally:
        wait([computing])  # never leave the head's connection in use by the worker
    try:
        return computing.result(), written
    except BaseException:
        for f in written:
            files.storage.delete(files.path(f.path))
        raise


def _require_format_5(storage) -> None:
    """Raise the store's marker to 5 before the first commit whose delete rows hold pre-images (docs/format.md): one
    small read of the marker per such commit (no cache: a store may be replaced under the same location)."""
    marker.upgrade(storage, 5)


def _base_fingerprint(head: Head) -> int:
    """The head's fingerprint: 0 before version 0; computed once by a full scan for a record without one."""
    if head.record.version < 0:
        return 0
    if head.record.fingerprint is not None:
        return fingerprint.decode(head.record.fingerprint)
    return fingerprint.of_plan(head.con, head.plan)


def _min_row_id(rows: pa.Table) -> int:
    import pyarrow.compute as pc
    return pc.min(rows.column(ROW_ID)).as_py() if rows.num_rows else 0


def write_change_file(files: TableFiles, version: int, rows: pa.Table, *, inserts_only: bool) -> DataFile:
    """Write change rows (without _version) as a Parquet file under a unique name; return its description."""
    return _write_rows(files, version, _with_version(rows, version), inserts_only=inserts_only)


def _with_version(rows: pa.Table, version: int) -> pa.Table:
    """Change rows as stored: _version third, sorted by _row_id."""
    return rows.add_column(2, VERSION, pa.repeat(pa.scalar(version, pa.int64()), rows.num_rows)).sort_by(ROW_ID)


def _write_rows(files: TableFiles, version: int, rows: pa.Table, *, inserts_only: bool) -> DataFile:
    """Write stored change rows as a Parquet file under a unique name; return its description."""
    relative = layout.new_change_file(version)
    size, digest = write_parquet(files.storage, files.path(relative), rows)
    return DataFile(path=relative, rows=rows.num_rows, size=size, sha256=digest, inserts_only=inserts_only)


def write_parquet(storage, path: str, rows: pa.Table, *, row_group_size: int | None = None, sync_directory: bool = True, in_memory: bool = True) -> tuple[int, str]:
    """Publish rows (a change file's or a compacted file's, at a unique `path`) as Parquet; return size and SHA-256.

    `in_memory` (these files are usually small): the file is built in memory and hashed there, then written to a
    staging file in one write, with no second pass over the file to hash it; and the table is kept for a compaction
    of this process that will merge the file (recent.py). Else it is written to the staging file and hashed from
    there. Row groups of ROW_GROUP_ROWS unless `row_group_size` says otherwise."""
    staged = storage.staging_file(".parquet")
    data = None
    try:
        if in_memory:
            data = encode_parquet(rows, row_group_size=row_group_size)
            with open(staged, "wb") as f:
                f.write(data)
        else:
            pq.write_table(rows, staged, **_parquet_options(rows, row_group_size))
    except BaseException:
        storage.delete_staged(staged)
        raise
    if data is None:
        return publish_staged(storage, path, staged, sync_directory=sync_directory)
    digest = hashlib.sha256(data).hexdigest()
    storage.put_staged_if_absent(path, staged, sync_directory=sync_directory)
    recent.remember(storage.location, path, digest, rows, data)
    return data.size, digest


def encode_parquet(rows: pa.Table, *, row_group_size: int | None = None) -> pa.Buffer:
    """The Parquet file of `rows` as logstore writes change and compacted files (row groups of ROW_GROUP_ROWS
    unless `row_group_size` says otherwise)."""
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink, **_parquet_options(rows, row_group_size))
    return sink.getvalue()


def _parquet_options(rows: pa.Table, row_group_size: int | None) -> dict:
    options = {"compression": "zstd", "row_group_size": row_group_size or ROW_GROUP_ROWS, **change_file_encoding(rows.column_names)}
    options["use_dictionary"] = dictionary_columns(rows)
    return options


DICTIONARY_PAGE_BYTES = 16 << 10  # a column's dictionary page grows to this, then the column is written plain


def change_file_encoding(names) -> dict:
    """pq.write_table / ParquetWriter options of every file logstore writes with pyarrow: `_row_id`
    DELTA_BINARY_PACKED (ascending ids cost a few bits a row instead of ~1.5 bytes under zstd: 2.2 MB of the standard
    workload), the other columns dictionary-encoded until a column's dictionary page reaches DICTIONARY_PAGE_BYTES,
    then plain. pyarrow's 1 MiB default keeps a row group of 65,536 distinct values (ids, text) in a dictionary of
    its own, which is larger and slower to write than plain values under zstd (benchmarks/README.md, "Commit latency",
    round 3); low-cardinality columns stay dictionary-encoded."""
    if ROW_ID not in names:
        return {"dictionary_pagesize_limit": DICTIONARY_PAGE_BYTES}
    return {
        "use_dictionary": [n for n in names if n != ROW_ID],
        "column_encoding": {ROW_ID: "DELTA_BINARY_PACKED"},
        "dictionary_pagesize_limit": DICTIONARY_PAGE_BYTES,
    }


DICTIONARY_SAMPLE = 1024  # rows looked at per column to decide whether to try a dictionary
PLAIN_DISTINCT = 0.9  # share of distinct values in that sample above which a column is written plain
DICTIONARY_RULE_ROWS = 4096  # smaller files keep pyarrow's own choice: the rule would cost what it saves


def dictionary_columns(rows: pa.Table) -> list[str]:
    """The columns (not `_row_id`) worth a dictionary in a file of `rows`: for a file of DICTIONARY_RULE_ROWS rows
    or more, those whose evenly spaced sample of DICTIONARY_SAMPLE values repeats values. A column with more than
    PLAIN_DISTINCT of its sample distinct is written plain from the start: its dictionary would outgrow
    DICTIONARY_PAGE_BYTES, and pyarrow builds it before falling back, which costs time and leaves a useless
    dictionary page. A column whose dictionary fits that page (at most 2,048 eight-byte values) shows ~80%
    distinct in such a sample, so it keeps its dictionary. Only the file's encoding changes, never its rows."""
    names = [n for n in rows.column_names if n != ROW_ID]
    if rows.num_rows < DICTIONARY_RULE_ROWS:
        return names
    step = rows.num_rows // DICTIONARY_SAMPLE
    positions = pa.array(range(0, step * DICTIONARY_SAMPLE, step), pa.int64())
    kept = []
    for name in names:
        try:
            distinct = len(rows.column(name).take(positions).unique())
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            distinct = 0  # a type without a hash kernel (nested): keep pyarrow's own choice, a dictionary
        if distinct <= PLAIN_DISTINCT * DICTIONARY_SAMPLE:
            kept.append(name)
    return kept


def publish_staged(storage, path: str, staged: str, *, sync_directory: bool = True) -> tuple[int, str]:
    """Publish a staged file; return its size and SHA-256, computed from the staged file.
    sync_directory=False: as for storage.put_staged_if_absent."""
    with open(staged, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    size = os.path.getsize(staged)
    storage.put_staged_if_absent(path, staged, sync_directory=sync_directory)
    return size, digest


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
