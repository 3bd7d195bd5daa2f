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

from . import planner
from .layout import ROW_ID
from .log import CommitRecord
from .materialize import Plan, Source
from .planner import TableFiles
from .schema import quote

DEFAULT_MAX_ROWS = 20_000_000
CATCH_UP_FILES = 32
CATCH_UP_ROWS = 16384  # pending update/delete change rows (each one more row for the anti-join of every operation)
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
            if cached.version < record.version and files.log.read(cached.version) == cached:
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
