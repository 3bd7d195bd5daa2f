"""Streaming writes: append, create_table, upsert and overwrite from inputs larger than memory (inputs.to_reader's
streams). Upsert and overwrite: see "upsert and overwrite of a staged input" below; the rest of this text is append's.

A streamed input is read batch by batch. If it ends within BUFFER_ROWS rows, it is one Arrow table and takes the
ordinary path (operations.append). Otherwise it is staged: the batches are written as they come to a Parquet file
in the store's staging area (a path or glob of Parquet files is re-readable and is not copied), and the commit
builds its change file from it batch by batch, never holding more than a row group (commit.ROW_GROUP_ROWS rows):

1. each batch is conformed to the head's columns (schema.conform, the rule every write uses), given the row ids
   next_row_id + its offset, `_op = 'I'` and `_version`, and written to a staged change file (zstd, row groups of
   ROW_GROUP_ROWS rows, sorted by _row_id since ids rise with the input's order);
2. a keyed table's key checks run as for any append (operations._check_batch_keys, _check_new_keys: nulls, NaN,
   duplicates across the whole input, keys already in the table) over the key columns of that file, read alone;
3. the fingerprint grows by the row-hash sum of the file, computed by DuckDB over the file (fingerprint.py);
4. commit.py publishes the staged change file as the version's one change file, then the commit record with
   put-if-absent. A lost race re-runs 1-3 against the new head (a new change file, the old one removed).

Memory: a row group of rows, plus the key columns of the input for the key checks (8 bytes a row for an integer
key). A failure anywhere (a bad batch mid-stream, a key violation, a crash) leaves no version and no referenced
file: the staged files are removed, and nothing is published before the whole input was read.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import fingerprint, layout
from .commit import ROW_GROUP_ROWS, _base_fingerprint, change_file_encoding, publish_staged
from .errors import InvalidInputError
from .layout import DELETE, INSERT, OP, ROW_ID, UPDATE, VERSION
from .log import DataFile
from .operations import ChangeSet, Head, _check_batch_keys, _check_new_keys, change_schema
from .schema import Column, arrow_schema, conform, literal, quote

if TYPE_CHECKING:
    from .log import Commit
    from .planner import TableFiles

BUFFER_ROWS = 1 << 20  # rows of a streamed input held in memory before it is staged to Parquet instead


@dataclass(frozen=True)
class Staged:
    """A streamed input too big for the buffer: Parquet files holding its rows, in order."""

    paths: tuple[str, ...]
    rows: int
    schema: pa.Schema
    owned: bool  # the files are staging files of this write (removed after it), not the user's

    def batches(self):
        import pyarrow.dataset as ds

        dataset = ds.dataset(list(self.paths), format="parquet", schema=self.schema)
        # no read-ahead: pyarrow's default reads up to 16 batches and 4 files ahead, ~900 MB of a 10M-row input
        return dataset.to_batches(batch_size=64 * 1024, batch_readahead=0, fragment_readahead=0)

    def remove(self, storage) -> None:
        if self.owned:
            for p in self.paths:
                storage.delete_staged(p)


def buffered(reader: pa.RecordBatchReader, storage, *, source: str | None = None) -> pa.Table | Staged:
    """The rows of `reader`: an Arrow table if they fit in BUFFER_ROWS rows, else staged to Parquet. `source` is the
    path or glob the reader reads, if any: its files, counted from their footers, stand for the staged copy."""
    if source is not None:
        paths = tuple(_source_paths(source))
        try:
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
        except (pa.ArrowException, OSError) as e:
            raise InvalidInputError(source, f"cannot read {source!r} as Parquet: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        return reader.read_all() if rows <= BUFFER_ROWS else Staged(paths, rows, reader.schema, owned=False)
    held: list[pa.RecordBatch] = []
    rows = 0
    batches = iter(reader)
    for batch in batches:
        held.append(batch)
        rows += batch.num_rows
        if rows > BUFFER_ROWS:
            break
    else:
        return pa.Table.from_batches(held, schema=reader.schema)
    staged = storage.staging_file(".parquet")
    try:
        with pq.ParquetWriter(staged, reader.schema, compression="zstd") as writer:
            for batch in held:
                writer.write_batch(batch)
            del held
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
    except BaseException:
        storage.delete_staged(staged)
        raise
    return Staged((staged,), rows, reader.schema, owned=True)


def _source_paths(pattern: str) -> list[str]:
    import glob

    return sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]


@dataclass(frozen=True)
class StagedChanges(ChangeSet):
    """A ChangeSet whose rows are in a staged change file, written already: all inserts of new row ids (an append),
    or the change rows of an upsert or overwrite, counted by operation in `counts`."""

    staged: str = ""
    staged_rows: int = 0
    counts: tuple[int, int, int] | None = None  # inserts, updates, deletes; None: staged_rows inserts
    inserts_only: bool = True  # every row inserts a new row id

    def count(self, op: str) -> int:
        if self.counts is None:
            return self.staged_rows if op == INSERT else 0
        return dict(zip((INSERT, UPDATE, DELETE), self.counts))[op]

    def publish(self, files: TableFiles, version: int) -> tuple[DataFile, ...]:
        """Publish the staged change file as the change file of `version` (none if it holds no rows, as a commit of
        no change rows writes none)."""
        if not self.staged_rows:
            return ()
        relative = layout.new_change_file(version)
        size, digest = publish_staged(files.storage, files.path(relative), self.staged)
        return (DataFile(path=relative, rows=self.staged_rows, size=size, sha256=digest, inserts_only=self.inserts_only),)


def append(head: Head, staged: Staged, *, merge: bool, storage) -> StagedChanges:
    """The change set of appending the staged input to `head` (see the module docstring)."""
    version = head.record.version + 1
    target = storage.staging_file(".parquet")
    try:
        columns = _write_changes(head, staged, target, version, merge)
        if head.key:
            keys = pq.read_table(target, columns=list(head.key))
            _check_batch_keys(head, keys)
            if head.record.version >= 0:
                _check_new_keys(head, keys)
            del keys
        added = _row_hash_sum(head, target, columns)
    except BaseException:
        storage.delete_staged(target)
        raise
    old = _base_fingerprint(head) if head.record.version >= 0 else 0
    empty = change_schema(columns).empty_table()
    next_id = head.record.next_row_id + staged.rows
    return StagedChanges(empty, columns, next_id, fingerprint=(old + added) % fingerprint.MOD, staged=target, staged_rows=staged.rows)


def _write_changes(head: Head, staged: Staged, target: str, version: int, merge: bool) -> tuple[Column, ...]:
    """Write the staged input as the change rows of `version` to `target`, a row group at a time; the columns."""
    columns: tuple[Column, ...] = head.columns
    next_id = head.record.next_row_id
    with _RowGroups(target) as out:
        for batch in staged.batches():
            conformed, columns = conform(pa.Table.from_batches([batch]), head.columns, merge=merge or not head.columns)
            ids = pa.array(range(next_id, next_id + conformed.num_rows), pa.int64())
            next_id += conformed.num_rows
            rows = conformed.add_column(0, ROW_ID, ids)
            rows = rows.add_column(1, OP, pa.repeat(pa.scalar(INSERT, pa.string()), rows.num_rows))
            out.add(rows.add_column(2, VERSION, pa.repeat(pa.scalar(version, pa.int64()), rows.num_rows)))
        out.finish(change_schema(columns, version=True))
    if next_id - head.record.next_row_id != staged.rows:
        raise InvalidInputError(staged.paths[0], f"the input changed while it was written: {next_id - head.record.next_row_id} rows read, {staged.rows} expected")
    return columns


class _RowGroups:
    """A change file written a row group at a time: tables are buffered until they make ROW_GROUP_ROWS rows, zstd,
    `_row_id` in the change files' encoding (commit.change_file_encoding). `finish(schema)` writes the rest (an empty
    file of `schema` when no row came); leaving the `with` block closes the file, also on an error."""

    def __init__(self, target: str):
        self.target = target
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.rows = 0

    def __enter__(self) -> _RowGroups:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    def add(self, rows: pa.Table) -> None:
        self.pending.append(rows)
        self.rows += rows.num_rows
        if self.rows >= ROW_GROUP_ROWS:
            self._write(pa.concat_tables(self.pending))

    def finish(self, schema: pa.Schema) -> None:
        if self.pending or self.writer is None:
            self._write(pa.concat_tables(self.pending) if self.pending else schema.empty_table())

    def _write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.target, table.schema, compression="zstd", **change_file_encoding(table.schema.names))
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.pending, self.rows = [], 0


def _row_hash_sum(head: Head, path: str, columns: tuple[Column, ...]) -> int:
    """The fingerprint row-hash sum of the rows of a change file, computed by DuckDB over the file."""
    relation = f"read_parquet('{path.replace(chr(39), chr(39) * 2)}')"
    return int(head.con.execute(fingerprint.sum_sql(relation, columns)).fetchall()[0][0])


def stream_input(data: Any, storage) -> pa.Table | Staged:
    """A streamed write input (inputs.is_stream) as an Arrow table if it fits the buffer, else staged."""
    import os

    from .inputs import to_reader

    reader = to_reader(data)
    source = os.fspath(data) if isinstance(data, (str, os.PathLike)) else None
    return buffered(reader, storage, source=source)


def loaded(data: Any, storage) -> pa.Table | Staged:
    """What a write of `data` works on: an Arrow table (inputs.to_arrow), or a streamed input too big for the buffer,
    staged."""
    from .inputs import is_stream, to_arrow

    return stream_input(data, storage) if is_stream(data) else to_arrow(data)


def append_changes(head: Head, data: pa.Table | Staged, *, merge: bool, storage, staged_files: list[str]) -> ChangeSet:
    """operations.append for an Arrow table, `append` (above) for a staged input; the staged change files it
    writes are listed in `staged_files` (for the caller to remove what was not published)."""
    from . import operations

    if isinstance(data, pa.Table):
        return operations.append(head, data, merge=merge)
    changes = append(head, data, merge=merge, storage=storage)
    staged_files.append(changes.staged)
    return changes


def commit_append(table, data: Any, *, merge: bool, info) -> Commit:
    """Table.append of a streamed input (inputs.is_stream): one commit, memory bounded (module docstring)."""
    from .commit import commit

    storage = table._storage
    rows = stream_input(data, storage)
    staged_files: list[str] = []
    try:
        done = commit(table, "APPEND", lambda h: append_changes(h, rows, merge=merge, storage=storage, staged_files=staged_files), info)
    finally:
        cleanup(storage, rows, staged_files)
    if isinstance(rows, Staged):
        table._store._head_cache().drop_lookup(table._files)
    return done


def cleanup(storage, rows: pa.Table | Staged | None, staged_files: list[str]) -> None:
    """Remove the staging files of a write (those published were moved already)."""
    for path in staged_files:
        storage.delete_staged(path)
    if isinstance(rows, Staged):
        rows.remove(storage)


# --- upsert and overwrite of a staged input ------------------------------------------------------------------------
#
# The same change rows as operations.upsert / operations.overwrite, computed by the same SQL (operations.upsert_sql,
# overwrite_sql) over the staged input instead of an Arrow table in memory:
#
# 1. the input is conformed batch by batch (schema.conform, as in memory) and written with its position (__pos) to
#    a staged Parquet file; the key checks (nulls, NaN, duplicates) run over its key columns, read alone;
# 2. DuckDB runs the operation's SQL over that file and the head version's files (the files plan, not the head
#    cache's decoded state, which would hold the whole head in memory), on a connection of its own whose memory is
#    bounded by DUCKDB_MEMORY (its joins and sorts spill to a staging directory beyond that);
# 3. the result is streamed into the staged change file, a row group at a time, counted by operation;
# 4. the fingerprint moves by the row-hash sums DuckDB computes over that file (new images) and over the head rows
#    whose ids it changes (old images): fingerprint.advance's arithmetic, over files instead of Arrow tables.

DUCKDB_MEMORY = "512MB"  # DuckDB's memory for a staged upsert's or overwrite's joins and sorts


def rewrite(head: Head, staged: Staged, operation: str, *, merge: bool, storage, staged_files: list[str]) -> StagedChanges:
    """The change set of an UPSERT or OVERWRITE of a staged input (see above); the staged change file it writes is
    listed in `staged_files` before it is written (for the caller to remove what is not published)."""
    from . import connection, operations
    from .errors import KeyRequiredError

    if operation == "UPSERT" and not head.key:
        raise KeyRequiredError(head.table_name, "upsert")
    source = storage.staging_file(".parquet")
    spill = storage.staging_file()
    con = connection.new(
        files=connection.Confined(directories=(str(storage.local_root),)),
        settings={"memory_limit": DUCKDB_MEMORY, "temp_directory": spill},
    )
    try:
        columns = _write_input(head, staged, source, merge)
        local = Head(head.record, head.plan, con, head.table_name, state=lambda: head.plan)
        if head.key:
            _check_staged_keys(local, source)
        name = "upsert_batch" if operation == "UPSERT" else "overwrite_batch"
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet({literal(source)})")
        sql = operations.upsert_sql(local, columns) if operation == "UPSERT" else operations.overwrite_sql(local, columns)
        target = storage.staging_file(".parquet")
        staged_files.append(target)
        counts, next_id = _write_result(con, sql, target, columns, head.record.version + 1, head.record.next_row_id)
        old = _base_fingerprint(head) if head.record.version >= 0 else 0
        new = _advance(local, old, target, columns) if sum(counts) else old
    finally:
        con.close()
        storage.delete_staged(source)
        shutil.rmtree(spill, ignore_errors=True)
    empty = change_schema(columns).empty_table()
    fresh = counts[1] == 0 and counts[2] == 0  # new rows always take new row ids
    return StagedChanges(empty, columns, next_id, fingerprint=new, staged=target, staged_rows=sum(counts), counts=counts, inserts_only=fresh)


def _write_input(head: Head, staged: Staged, target: str, merge: bool) -> tuple[Column, ...]:
    """Write the staged input, conformed to the head's columns, with its position (__pos) to `target`; the columns."""
    columns: tuple[Column, ...] = head.columns
    writer: pq.ParquetWriter | None = None
    position = 0
    try:
        for batch in staged.batches():
            conformed, columns = conform(pa.Table.from_batches([batch]), head.columns, merge=merge or not head.columns)
            rows = conformed.append_column("__pos", pa.array(range(position, position + conformed.num_rows), pa.int64()))
            position += conformed.num_rows
            if writer is None:
                writer = pq.ParquetWriter(target, rows.schema, compression="zstd")
            writer.write_table(rows, row_group_size=ROW_GROUP_ROWS)
        if writer is None:  # no batch at all
            schema = arrow_schema(columns).append(pa.field("__pos", pa.int64()))
            writer = pq.ParquetWriter(target, schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
    if position != staged.rows:
        raise InvalidInputError(staged.paths[0], f"the input changed while it was written: {position} rows read, {staged.rows} expected")
    return columns


def _check_staged_keys(head: Head, source: str) -> None:
    """operations._check_batch_keys over the key columns of a staged input file, in that order (nulls, NaN,
    duplicates) and with the same errors, run by DuckDB within its memory limit rather than over Arrow arrays of the
    whole input (pyarrow's hash table of 10M keys holds ~500 MB, and its pool keeps them)."""
    from .errors import KeyViolationError
    from .operations import _key_value, _nan_keys

    key = list(head.key)
    cols = ", ".join(quote(k) for k in key)
    relation = f"read_parquet({literal(source)})"
    nulls = head.con.sql(f"SELECT {cols} FROM {relation} WHERE {' OR '.join(f'{quote(k)} IS NULL' for k in key)} LIMIT 6").fetchall()
    if nulls:
        raise KeyViolationError(key, "null values", [_key_value(r) for r in nulls])
    schema = pq.read_schema(source)
    if any(_may_hold_nan(schema.field(k).type) for k in key):
        nans: list = []
        for batch in pq.ParquetFile(source).iter_batches(batch_size=64 * 1024, columns=key):
            nans += _nan_keys(pa.Table.from_batches([batch]), key)[: 6 - len(nans)]
            if len(nans) == 6:
                break
        if nans:
            raise KeyViolationError(key, "NaN values (NaN cannot be a key)", nans)
    dups = head.con.sql(f"SELECT {cols} FROM {relation} GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 6").fetchall()
    if dups:
        raise KeyViolationError(key, "duplicate values in the batch", [_key_value(r) for r in dups])


def _may_hold_nan(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_nested(t)


def _write_result(con, sql: str, target: str, columns: tuple[Column, ...], version: int, next_row_id: int) -> tuple[tuple[int, int, int], int]:
    """Stream the change rows `sql` returns into `target` as a change file of `version` (cast to the change file's
    schema, as operations._change_set casts them); their counts (inserts, updates, deletes) and the next row id."""
    import pyarrow.compute as pc

    schema = change_schema(columns)
    reader = con.sql(sql).to_arrow_reader(batch_size=ROW_GROUP_ROWS)
    counts = dict.fromkeys((INSERT, UPDATE, DELETE), 0)
    next_id = next_row_id
    with _RowGroups(target) as out:
        for batch in reader:
            rows = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
            for op, n in _op_counts(rows):
                counts[op] += n
            inserted = rows.filter(pc.equal(rows.column(OP), INSERT)).column(ROW_ID)
            if len(inserted):
                next_id = max(next_id, pc.max(inserted).as_py() + 1)
            out.add(rows.add_column(2, VERSION, pa.repeat(pa.scalar(version, pa.int64()), rows.num_rows)))
        out.finish(change_schema(columns, version=True))
    return (counts[INSERT], counts[UPDATE], counts[DELETE]), next_id


def _op_counts(rows: pa.Table) -> list[tuple[str, int]]:
    import pyarrow.compute as pc

    counted = pc.value_counts(rows.column(OP).combine_chunks())
    return list(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))


def _advance(head: Head, old: int, changes: str, columns: tuple[Column, ...]) -> int:
    """fingerprint.advance over a change file: the head's fingerprint `old`, less the row hashes of the head rows
    whose ids the file changes (old images), plus those of its rows that are not deletes (new images)."""
    relation = f"read_parquet({literal(changes)})"
    added = int(head.con.execute(fingerprint.sum_sql(f"(SELECT * FROM {relation} WHERE {OP} <> '{DELETE}') AS c", columns)).fetchall()[0][0])
    if head.record.version < 0:
        return added % fingerprint.MOD
    old_rows = f"(SELECT * FROM {head.state_sql()} AS h SEMI JOIN (SELECT {ROW_ID} FROM {relation}) AS c USING ({ROW_ID})) AS o"
    removed = int(head.con.execute(fingerprint.sum_sql(old_rows, head.columns)).fetchall()[0][0])
    return (old - removed + added) % fingerprint.MOD


def rewrite_changes(head: Head, data: pa.Table | Staged, operation: str, *, merge: bool, storage, staged_files: list[str]) -> ChangeSet:
    """operations.upsert / overwrite for an Arrow table, `rewrite` (above) for a staged input."""
    from . import operations

    if isinstance(data, pa.Table):
        build = operations.upsert if operation == "UPSERT" else operations.overwrite
        return build(head, data, merge=merge)
    return rewrite(head, data, operation, merge=merge, storage=storage, staged_files=staged_files)


def commit_rewrite(table, data: Any, operation: str, *, merge: bool, info) -> Commit:
    """Table.upsert or Table.overwrite of a streamed input (inputs.is_stream): one commit, memory bounded."""
    from .commit import commit

    storage = table._storage
    rows = stream_input(data, storage)
    staged_files: list[str] = []
    try:
        done = commit(table, operation, lambda h: rewrite_changes(h, rows, operation, merge=merge, storage=storage, staged_files=staged_files), info)
    finally:
        cleanup(storage, rows, staged_files)
    if isinstance(rows, Staged):
        table._store._head_cache().drop_lookup(table._files)
    return done
