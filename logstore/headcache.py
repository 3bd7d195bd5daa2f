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
  - Caught up when more than CATCH_UP_FILES change files lie between c and the head: the rows those files touch
    are computed by the plan over (cache, files) and replace the cached ones (DELETE + INSERT, one transaction).
  - Dropped, and rebuilt by the next operation, when the columns change, when version c's commit record is no
    longer the record it was built from (the store at this path was re-created), or when building or catching up
    fails (the operation then reads the files, as without a cache).

Each thread has its own cache and its own DuckDB connection (which no user query sees), so nothing is shared
between threads; another writer's commits are simply change files the next catch-up applies. The cache never
changes what is stored: it only decides where the head's rows are read from.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass

import duckdb

from .log import CommitRecord
from .materialize import ROW_ID, Plan, Source
from .schema import quote

DEFAULT_MAX_ROWS = 20_000_000
CATCH_UP_FILES = 32
BUILD_ON_USE = 2  # the n-th head-state read of a table in a thread builds its cache

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


class HeadCache:
    """The head caches of one thread, and the DuckDB connection that holds them and runs its writes."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._entries: dict[str, _Entry] = {}
        self._uses: Counter = Counter()

    def state_plan(self, table, record: CommitRecord, files_plan: Plan) -> Plan:
        """The plan of the head `record` to read its rows from: over the cache if there is (or now should be) one."""
        key = table._prefix
        entry = self._valid_entry(table, key, record)
        if entry is None:
            self._uses[key] += 1
            if self._uses[key] < BUILD_ON_USE or not 0 < record.commit.num_rows <= max_rows():
                return files_plan
            entry = self._attempt(key, lambda: self._build(key, record, files_plan))
            if entry is None:
                return files_plan
        plan = table._plan_over(record.version, entry.source(), entry.record.version)
        if len(plan.inserts) + len(plan.changes) <= CATCH_UP_FILES:
            return plan
        entry = self._attempt(key, lambda: self._catch_up(key, entry, record, plan))
        return files_plan if entry is None else table._plan_over(record.version, entry.source(), record.version)

    def _valid_entry(self, table, key: str, record: CommitRecord) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        cached = entry.record
        if cached.version <= record.version and cached.columns == record.columns:
            if cached.version == record.version and cached == record:
                return entry
            if cached.version < record.version and table._log.read(cached.version) == cached:
                return entry
        self._drop(key)
        return None

    def _attempt(self, key: str, action) -> _Entry | None:
        """Run a build or catch-up; on any DuckDB failure drop the cache (the caller falls back to the files)."""
        try:
            entry = action()
        except duckdb.Error:
            self._rollback()
            self._drop(key)
            return None
        self._entries[key] = entry
        return entry

    def _build(self, key: str, record: CommitRecord, files_plan: Plan) -> _Entry:
        self._drop(key)
        name = f"logstore_head_{next(_names)}"
        columns = ", ".join([ROW_ID] + [quote(c.name) for c in record.columns])
        self.con.execute(f"CREATE TABLE {quote(name)} AS SELECT {columns} FROM ({files_plan.relation_sql()}) AS v ORDER BY {ROW_ID}")
        return _Entry(name, record)

    def _catch_up(self, key: str, entry: _Entry, record: CommitRecord, plan: Plan) -> _Entry:
        """Apply the change files between the cached version and the head to the cached rows."""
        touched = f"SELECT DISTINCT {ROW_ID} FROM ({plan.touched_sql()}) AS t"
        columns = ", ".join([ROW_ID] + [quote(c.name) for c in record.columns])
        fresh = self.con.sql(f"SELECT {columns} FROM ({plan.relation_sql()}) AS v WHERE {ROW_ID} IN ({touched})").to_arrow_table()
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute(f"DELETE FROM {quote(entry.name)} WHERE {ROW_ID} IN ({touched})")
        self.con.register("logstore_head_fresh", fresh)
        try:
            self.con.execute(f"INSERT INTO {quote(entry.name)} SELECT * FROM logstore_head_fresh")
        finally:
            self.con.unregister("logstore_head_fresh")
        self.con.execute("COMMIT")
        return _Entry(entry.name, record)

    def _rollback(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:  # no transaction was open
            pass

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.con.execute(f"DROP TABLE IF EXISTS {quote(entry.name)}")
