"""The writer's decoded head: one recent version of a table held in a private in-memory DuckDB table.

An update, delete, upsert, overwrite or restore finds the rows it changes in the head state, with every column
(change rows are full row images, and the content fingerprint needs the old images). From Parquet that decodes
every page of the base files even for a few random keys: ~200 ms per commit on a 1M-row table. A thread that
writes a table repeatedly keeps the rows of some version c decoded instead, and plans the head as that table
plus the change files of versions c+1..head: the same Plan and the same materialization rule as every read, with
the cached table in place of the snapshot.

  - Built by the second operation of a thread that reads a table's head state (a one-off writer never pays for
    it); never for a head of more than max_rows() rows (LOGSTORE_HEAD_CACHE_ROWS, default 20,000,000; 0 turns
    the cache off).
  - Caught up when more than CATCH_UP_FILES change files or CATCH_UP_ROWS update/delete rows lie between c and
    the head: a new table is built from the plan over (cache, files) and replaces the old one (~70 ms for 1M
    rows; unsorted, since every operation orders its own result; in-place DELETE + INSERT was measured to slow
    every later scan of the table 2x).
  - Dropped, and rebuilt by the next operation, when the columns change, when version c's commit record is no
    longer the record it was built from (the store at this path was re-created), or when building or catching up
    fails (the operation then reads the files, as without a cache).

Key lookups (`rows_where_in`): an update or delete whose predicate is `key IN (<many integers>)` needs only the
rows holding those keys, but a scan of the cache table still decodes all of it (~40 ms for 1M rows). For a table
with one integer key column, the second such operation of a thread keeps, besides (and independently of) the
cache table, the rows of some version c as an Arrow table with its keys sorted (numpy), plus the change rows of
versions c+1..head in memory (read from their change files, each checked like every read checks it). The rows of
the head holding given keys are then found by binary search in the base and in the change rows (indexed in sorted numpy arrays),
applying the materialization rule (per row id the newest change wins; a delete removes the row) to those rows
alone: ~1 ms. Once more than LOOKUP_MAX_CHANGE_ROWS change rows lie beside the base, they are merged into it (the
same rule, in Arrow: ~0.1 s for 1M rows, against ~1 s to build it from the files); dropped (the operation then
reads the head state as usual) when the columns change, when version c's record is no longer
the one it was built from, or when a change file cannot be read or fails its check.

Each thread has its own cache and its own DuckDB connection (which no user query sees), so nothing is shared
between threads; another writer's commits are simply change files the next catch-up applies. The cache never
changes what is stored: it only decides where the head's rows are read from.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import integrity, planner
from .errors import CorruptionError
from .layout import DELETE, OP, ROW_ID, VERSION
from .log import CommitRecord
from .materialize import Plan, Source
from .planner import TableFiles
from .schema import arrow_schema, quote

DEFAULT_MAX_ROWS = 20_000_000
CATCH_UP_FILES = 32
CATCH_UP_ROWS = 16384  # pending update/delete change rows (each one more row for the anti-join of every operation)
BUILD_ON_USE = 2  # the n-th head-state read of a table in a thread builds its cache
LOOKUP_MAX_CHANGE_ROWS = 131072  # change rows kept beside a key lookup's base before the base is rebuilt

PURGE = "PURGE"  # purge.OPERATION
_names = itertools.count()


def max_rows() -> int:
    value = os.environ.get("LOGSTORE_HEAD_CACHE_ROWS", "").strip()
    try:
        return max(int(value), 0) if value else DEFAULT_MAX_ROWS
    except ValueError:
        return DEFAULT_MAX_ROWS


@dataclass(frozen=True)
class _Entry:
    name: str  # the DuckDB table holding _row_id and the table's columns at `record.version`
    record: CommitRecord

    def source(self) -> Source:
        return Source(self.name, frozenset(c.name for c in self.record.columns), table=True)


class _Stale(Exception):
    """A key lookup cannot be brought up to the head (columns changed, a change file unreadable or damaged)."""


_EMPTY: np.ndarray = np.empty(0, np.int64)


@dataclass
class _Lookup:
    """The rows of version `record.version` (the base) with the key column sorted, and the change rows after it.

    The change rows are indexed as they come in (a few thousand per commit), in numpy arrays (no Python object per
    row): `touched` holds, sorted, each row id they touch and `newest` the position (in version order) of its newest
    change row; `held_keys` holds, sorted, the key of each change row that is not a delete and `held_ids` its row id."""

    record: CommitRecord
    column: str
    base: pa.Table  # _row_id and the table's columns, one chunk
    keys: np.ndarray  # the base's key values, sorted (unique: a version holds each key once)
    order: np.ndarray  # the base position of each of `keys`
    version: int  # `changes` holds the change rows of versions record.version+1 .. version
    base_ids: np.ndarray = field(default_factory=lambda: _EMPTY)  # the base's row ids, in the order of `keys`
    changes: list[pa.Table] = field(default_factory=list)  # _row_id, _op, _version and the columns, in version order
    change_rows: int = 0
    touched: np.ndarray = field(default_factory=lambda: _EMPTY)
    newest: np.ndarray = field(default_factory=lambda: _EMPTY)
    held_keys: np.ndarray = field(default_factory=lambda: _EMPTY)
    held_ids: np.ndarray = field(default_factory=lambda: _EMPTY)
    pending: list[pa.Table] = field(default_factory=list)  # change rows after `changes`, not indexed yet
    pending_rows: int = 0
    _all: pa.Table | None = None  # `changes` concatenated (built when a lookup needs it)

    def add(self, rows: pa.Table) -> None:
        """Take the change rows of the next version; indexed when a lookup needs them (appends never do)."""
        self.pending.append(rows)
        self.pending_rows += rows.num_rows

    def index(self) -> None:
        import pyarrow.compute as pc
        if not self.pending:
            return
        rows = pa.concat_tables(self.pending) if len(self.pending) > 1 else self.pending[0]
        row_ids = _int64s(rows.column(ROW_ID))
        positions = np.arange(self.change_rows, self.change_rows + len(row_ids), dtype=np.int64)
        # newest change row per row id: the later of equal row ids wins (a stable sort keeps version order)
        self.touched, self.newest = _last_of_each(np.concatenate([self.touched, row_ids]), np.concatenate([self.newest, positions]))
        live = _bools(pc.not_equal(rows.column(OP), DELETE))
        keys = _int64s(rows.filter(pa.array(live)).column(self.column))  # a delete's key is NULL
        keys_all = np.concatenate([self.held_keys, keys])
        by_key = np.argsort(keys_all, kind="stable")
        self.held_keys, self.held_ids = keys_all[by_key], np.concatenate([self.held_ids, row_ids[live]])[by_key]
        self.changes.extend(self.pending)
        self.change_rows += rows.num_rows
        self._all = None
        self.pending, self.pending_rows = [], 0

    def all_changes(self) -> pa.Table:
        if self._all is None:
            self._all = pa.concat_tables(self.changes)
        return self._all



def _int64s(column: pa.ChunkedArray) -> np.ndarray:
    """An integer column without NULLs as int64 (row ids and key values of change rows that are not deletes)."""
    return np.asarray(column.to_numpy(), dtype=np.int64)


def _bools(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=bool)


def _last_of_each(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `ids`, sorted, with the value of the last occurrence of each."""
    by_id = np.argsort(ids, kind="stable")
    ids, values = ids[by_id], values[by_id]
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[1:] != ids[:-1]
    return ids[last], values[last]


def _positions_of(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `ids`: whether `sorted_ids` holds it, and where (meaningful where it does)."""
    if not len(sorted_ids):
        return np.zeros(len(ids), dtype=bool), np.zeros(len(ids), dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return sorted_ids[at] == ids, at


class HeadCache:
    """The head caches of one thread, and the DuckDB connection that holds them and runs its writes."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._entries: dict[str, _Entry] = {}
        self._uses: Counter = Counter()
        self._lookups: dict[str, _Lookup] = {}
        self._lookup_uses: Counter = Counter()

    def rows_where_in(self, files: TableFiles, record: CommitRecord, files_plan: Plan, column: str, values: pa.Array) -> pa.Table | None:
        """The rows (_row_id and the table's columns) of the head `record` whose `column` holds one of `values`,
        found through the key lookup; None when there is none (yet) for this table (the caller reads the state).

        Only for the table's single integer key column. Builds the lookup on the BUILD_ON_USE-th call of a thread
        (a one-off writer never pays for it) from `files_plan`, the head's plan over the store's files.
        """
        if record.key != (column,) or not lookup_type(record, column) or len(values) == 0:
            return None
        key = files.prefix
        lookup = self._current_lookup(files, key, record)
        if lookup is None:
            self._lookup_uses[key] += 1
            if self._lookup_uses[key] < BUILD_ON_USE or not 0 < record.commit.num_rows <= max_rows():
                return None
            try:
                lookup = self._build_lookup(record, files_plan, column)
            except (duckdb.Error, pa.ArrowException, ValueError):
                return None
            self._lookups[key] = lookup
        return _find(lookup, values)

    def drop_lookup(self, files: TableFiles) -> None:
        """Forget the table's key lookup (a commit whose change rows it did not see: ingest.py's staged appends)."""
        self._lookups.pop(files.prefix, None)

    def note_commit(self, files: TableFiles, record: CommitRecord, rows: pa.Table | None) -> None:
        """This thread just committed `record` with change rows `rows` (_row_id, _op, _version and the columns, as
        written to its change file; None if it wrote none): a key lookup at the version before takes them as they
        are, instead of reading the file back. Any other lookup is left to catch up from the files."""
        if record.commit.operation == PURGE:  # rows left every version: nothing cached of the table stays true
            self._lookups.pop(files.prefix, None)
            self._drop(files.prefix)
            return
        lookup = self._lookups.get(files.prefix)
        if lookup is None or lookup.version != record.version - 1 or record.columns != lookup.record.columns:
            return
        if rows is not None and rows.num_rows:
            schema = _change_schema(record)
            lookup.add(rows.select(schema.names).cast(schema))
        lookup.version = record.version
        if lookup.change_rows + lookup.pending_rows > 2 * LOOKUP_MAX_CHANGE_ROWS:
            self._lookups.pop(files.prefix, None)  # a writer that only appends: not worth the memory

    def _current_lookup(self, files: TableFiles, key: str, record: CommitRecord) -> _Lookup | None:
        """The table's lookup brought up to `record` (reading the change files of the versions it lacks), or None."""
        lookup = self._lookups.get(key)
        if lookup is None:
            return None
        base = lookup.record
        try:
            if not (base.version <= lookup.version <= record.version and base.columns == record.columns):
                raise _Stale()
            if files.log.read(base.version) != base:
                raise _Stale()
            for version in range(lookup.version + 1, record.version + 1):
                if files.log.read(version).commit.operation == PURGE:
                    raise _Stale()
                lookup.add(_change_rows(files, files.log.read(version), lookup))
                lookup.version = version
            lookup.index()
        except (_Stale, CorruptionError, OSError, pa.ArrowException, ValueError, KeyError):
            self._lookups.pop(key, None)
            return None
        if lookup.change_rows > LOOKUP_MAX_CHANGE_ROWS:
            try:
                lookup = self._lookups[key] = _merged(lookup, record)
            except (pa.ArrowException, ValueError):
                self._lookups.pop(key, None)
                return None
        return lookup

    def _build_lookup(self, record: CommitRecord, plan: Plan, column: str) -> _Lookup:
        names = [ROW_ID] + [c.name for c in record.columns]
        sql = f"SELECT {', '.join(quote(n) for n in names)} FROM ({plan.relation_sql()}) AS v"
        base = self.con.sql(sql).to_arrow_table()
        base = base.cast(pa.schema([pa.field(ROW_ID, pa.int64()), *_arrow_fields(record)])).combine_chunks()
        return _indexed(record, column, base)

    def state_plan(self, files: TableFiles, record: CommitRecord, files_plan: Plan) -> Plan:
        """The plan of the head `record` to read its rows from: over the cache if there is (or now should be) one."""
        key = files.prefix
        entry = self._valid_entry(files, key, record)
        if entry is None:
            self._uses[key] += 1
            if self._uses[key] < BUILD_ON_USE or not 0 < record.commit.num_rows <= max_rows():
                return files_plan
            entry = self._attempt(key, lambda: self._build(key, record, files_plan))
            if entry is None:
                return files_plan
        plan = planner.plan_over(files, record.version, entry.source(), entry.record.version)
        pending_rows = record.change_rows_total - entry.record.change_rows_total
        if len(plan.inserts) + len(plan.changes) <= CATCH_UP_FILES and pending_rows <= CATCH_UP_ROWS:
            return plan
        entry = self._attempt(key, lambda: self._build(key, record, plan))
        return files_plan if entry is None else planner.plan_over(files, record.version, entry.source(), record.version)

    def _valid_entry(self, files: TableFiles, key: str, record: CommitRecord) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        cached = entry.record
        if cached.version <= record.version and cached.columns == record.columns:
            if cached.version == record.version and cached == record:
                return entry
            if cached.version < record.version and files.log.read(cached.version) == cached and not _purged(files, cached.version, record.version):
                return entry
        self._drop(key)
        return None

    def _attempt(self, key: str, action) -> _Entry | None:
        """Run a build or catch-up; on any DuckDB failure drop the cache (the caller falls back to the files)."""
        try:
            entry = action()
        except duckdb.Error:
            self._drop(key)
            return None
        self._entries[key] = entry
        return entry

    def _build(self, key: str, record: CommitRecord, plan: Plan) -> _Entry:
        """A new cache table with the rows of `plan` (over the files, or over the old cache: a catch-up)."""
        name = f"logstore_head_{next(_names)}"
        columns = ", ".join([ROW_ID] + [quote(c.name) for c in record.columns])
        self.con.execute(f"CREATE TABLE {quote(name)} AS SELECT {columns} FROM ({plan.relation_sql()}) AS v")
        self._drop(key)
        return _Entry(name, record)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.con.execute(f"DROP TABLE IF EXISTS {quote(entry.name)}")


def _purged(files: TableFiles, after: int, upto: int) -> bool:
    """Whether a PURGE was committed in versions after+1..upto (it removed rows from the versions before it)."""
    return any(r.commit.operation == PURGE for r in files.log.read_range(after + 1, upto))


def _indexed(record: CommitRecord, column: str, base: pa.Table) -> _Lookup:
    """A lookup whose base is `base`, the rows of `record`'s version (one chunk)."""
    keys = base.column(column).to_numpy()
    order = np.argsort(keys, kind="stable")
    base_ids = _int64s(base.column(ROW_ID))[order]
    return _Lookup(record, column, base, keys[order], order, record.version, base_ids=base_ids)


def _merged(lookup: _Lookup, record: CommitRecord) -> _Lookup:
    """The lookup with its change rows applied to its base (`record` is the version they reach): the base rows no
    change row replaced, plus the newest change row of each row id unless it is a delete."""
    import pyarrow.compute as pc
    base = lookup.base
    if len(lookup.touched):
        replaced, _ = _positions_of(lookup.touched, _int64s(base.column(ROW_ID)))
        kept = base.filter(pa.array(~replaced))
        newest = lookup.all_changes().take(pa.array(np.sort(lookup.newest)))
        live = newest.filter(pc.not_equal(newest.column(OP), DELETE)).select(base.column_names)
        base = pa.concat_tables([kept, live]).combine_chunks()
    return _indexed(record, lookup.column, base)


def lookup_type(record: CommitRecord, column: str) -> bool:
    """Whether `column` is of a type key lookups handle: a signed integer (exact, sortable as int64)."""
    return any(c.name == column and c.type.upper() in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT") for c in record.columns)


def _arrow_fields(record: CommitRecord) -> list[pa.Field]:
    return list(arrow_schema(record.columns))


def _change_schema(record: CommitRecord) -> pa.Schema:
    return pa.schema([pa.field(ROW_ID, pa.int64()), pa.field(OP, pa.string()), pa.field(VERSION, pa.int64()), *_arrow_fields(record)])


def _change_rows(files: TableFiles, record: CommitRecord, lookup: _Lookup) -> pa.Table:
    """The change rows of `record`'s version (its own change files, checked as every read checks them)."""
    if record.columns != lookup.record.columns:
        raise _Stale()
    schema = _change_schema(record)
    parts = []
    files.storage.prefetch([files.path(f.path) for f in record.files])
    for f in record.files:
        path = files.path(f.path)
        integrity.check_file(files.storage, path, f.size, f.sha256, record.version, what=f"change file (needed by version {record.version})")
        parts.append(pq.read_table(files.storage.url(path), columns=schema.names).cast(schema))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)


def _find(lookup: _Lookup, values: pa.Array) -> pa.Table:
    """The head rows whose key is one of `values`: the base rows holding them (binary search), except those a change
    row replaced, plus the newest change row of every row id that held one of them or replaced such a base row,
    unless it is a delete (a superset of the head rows holding the keys: the predicate is applied to them again)."""
    import pyarrow.compute as pc
    wanted = np.unique(values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False))
    found, at = _positions_of(lookup.keys, wanted)
    at = at[found]
    if not len(lookup.touched):
        return lookup.base.take(pa.array(lookup.order[at]))
    replaced, where = _positions_of(lookup.touched, lookup.base_ids[at])
    positions = [lookup.newest[where[replaced]]]
    if len(lookup.held_keys):  # the row ids whose change rows held a wanted key: their newest change rows
        start = np.searchsorted(lookup.held_keys, wanted, side="left")
        count = np.searchsorted(lookup.held_keys, wanted, side="right") - start
        held = lookup.held_ids[np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())]
        _, where = _positions_of(lookup.touched, held)  # every held row id is touched
        positions.append(lookup.newest[where])
    base = lookup.base.take(pa.array(lookup.order[at[~replaced]]))
    chosen = np.unique(np.concatenate(positions))
    if not len(chosen):
        return base
    changed = lookup.all_changes().take(pa.array(chosen))
    live = changed.filter(pc.not_equal(changed.column(OP), DELETE)).select(base.column_names)
    return pa.concat_tables([base, live])
