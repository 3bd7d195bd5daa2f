"""A versioned table: the public verbs. A read resolves its selector (selectors.py), plans (planner.py), runs the
plan in DuckDB and wraps the result; a write runs an operation (operations.py) against the head and publishes it
(commit.py). Other modules work on the table's TableFiles (`Table._files`, planner.py), not on the Table."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeAlias, TypeVar, cast

import duckdb
import pyarrow as pa

from . import checkpoint, compaction, fingerprint, layout, operations, planner, selectors, snapshot, timestamps
from .commit import CommitInfo, commit, publish_staged
from .errors import (
    CorruptionError,
    HeadMissingError,
    HeadUnreadableError,
    InvalidInputError,
    LogstoreError,
    SelectorError,
)
from .inputs import is_distributed, is_stream, to_arrow
from .log import Commit, CommitRecord, Log
from .materialize import Plan
from .operations import Head
from .planner import TableFiles
from .scan import ScanPlan
from .schema import arrow_schema
from .snapshot import SnapshotRecord
from .tags import Tags

if TYPE_CHECKING:
    from collections.abc import Iterator

    import dask.dataframe
    import pandas
    import polars
    import ray.data

    from .changes import DiffSummary
    from .compaction import CompactionRecord
    from .expiry import ExpireReport
    from .fragments import Fragment
    from .info import TableInfo
    from .inputs import DataLike
    from .lazy import PlanFiles
    from .merge import MergeBuilder
    from .repair import RepairReport
    from .selectors import Moment, Selector, Tag, Version
    from .store import Store
    from .stream import TableVersion
    from .vacuum import VacuumReport
    from .verify import VerifyReport

SCHEMA_MODES = (None, "strict", "merge")

SchemaMode: TypeAlias = Literal["strict", "merge"] | None
"""How a write treats columns the table lacks: None or 'strict' refuses them, 'merge' adds them (nullable)."""
Columns: TypeAlias = Sequence[str] | None
"""The columns a read returns (None: all)."""
Metadata: TypeAlias = dict[str, Any] | None
"""A commit's user metadata."""
_T = TypeVar("_T")


class Table:
    """One table of a store. Reads never change it; every write adds exactly one version."""

    def __init__(self, store: Store, name: str) -> None:
        self._store = store
        self.name = name
        self._storage = store._storage
        self._prefix = layout.table_dir(name)
        self._log = Log(self._storage, self._prefix)
        self._tags = Tags(self._storage, self._prefix, self._log.table_id)
        # what the rest of logstore works on (planner.py): the one handle other modules take instead of the Table
        self._files = TableFiles(name, self._storage, self._prefix, self._log, self._tags, store._connection)

    def __repr__(self) -> str:
        return f"<logstore.Table {self.name!r} at version {self.version}>"

    # --- versions ------------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The latest version (HeadMissingError if the head hint shows that the newest commit record was lost)."""
        return self._log.latest()

    @property
    def key(self) -> tuple[str, ...]:
        try:  # the latest version's names: an ALTER renaming a key column keeps it in the key
            return self._log.head().key
        except LogstoreError:
            return self._log.read(0).key

    @property
    def properties(self) -> dict[str, Any]:
        return {**snapshot.DEFAULT_PROPERTIES, **self._log.head().properties}

    def history(self, limit: int | None = None) -> list[Commit]:
        """Commits, newest first. Damage at the top of the log (a damaged newest record, a lost one) is warned
        about and the history starts below it; a damaged record further down raises CorruptionError."""
        latest = cast(int, self._log.head_version())  # not None: the table exists (Store.table checked)
        try:
            self._log.latest()
        except HeadMissingError as e:
            warnings.warn(f"logstore: {e}", RuntimeWarning, stacklevel=2)
        stop = -1 if limit is None else max(latest - limit, -1)
        commits: list[Commit] = []
        from . import expiry, purge

        purge.settle(self._files)
        for v in range(latest, stop, -1):
            try:
                commits.append(self._log.read(v).commit)
            except CorruptionError as e:
                if commits or v == 0 or e.version != v:  # only the newest records' own damage is stepped over
                    raise
                warnings.warn(f"logstore: {e}; history starts below it (run repair)", RuntimeWarning, stacklevel=2)
        if commits:
            cutoff, kept = expiry.cutoff_of(self._log.read(commits[0].version))
            commits = [dataclasses.replace(c, expired=True) if c.version < cutoff and c.version not in kept else c for c in commits]
        return commits

    def commit_info(self, version: Version | None = None, *, as_of: Moment | None = None, tag: Tag | None = None) -> Commit:
        return self._log.read(selectors.resolve(self._files, version, as_of=as_of, tag=tag)).commit

    def version_at(self, timestamp: Moment) -> int:
        """The latest version committed at or before `timestamp`."""
        return self._log.version_at(timestamps.parse(timestamp), self.version)

    def schema(self, version: Version | None = None, *, as_of: Moment | None = None, tag: Tag | None = None) -> pa.Schema:
        return arrow_schema(self._log.read(selectors.resolve(self._files, version, as_of=as_of, tag=tag)).columns)

    # --- reads ---------------------------------------------------------------------------------------------

    def read(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
    ) -> pa.Table:
        """The rows of one version (the latest by default) as a pyarrow Table, in the table's row order."""
        return self._query(version, as_of, tag, columns, where, lambda rel: rel.to_arrow_table())

    def to_pandas(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
    ) -> pandas.DataFrame:
        frame: pandas.DataFrame = self._query(version, as_of, tag, columns, where, lambda rel: rel.df())
        return frame

    def to_polars(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
    ) -> polars.DataFrame:
        frame: polars.DataFrame = self._query(version, as_of, tag, columns, where, lambda rel: rel.pl())
        return frame

    def scan_polars(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
    ) -> polars.LazyFrame:
        """A polars LazyFrame over one version; projections and filters reach the Parquet scans. Collecting it
        after vacuum removed files it was planned over raises VersionFilesGoneError (see logstore/lazy.py)."""
        from . import lazy

        return lazy.lazy_frame(*self._planned_relation(version, as_of, tag, columns, where, None))

    def to_duckdb(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
        connection: duckdb.DuckDBPyConnection | None = None,
    ) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation over one version (on `connection`, or the store's own). Fetching it after vacuum
        removed files it was planned over raises VersionFilesGoneError (see logstore/lazy.py)."""
        from . import lazy

        return lazy.relation(*self._planned_relation(version, as_of, tag, columns, where, connection))

    def to_batches(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
        batch_size: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """The rows of one version as pyarrow RecordBatches of at most `batch_size` rows, streamed: memory stays
        bounded by the batch size, not the version's size (logstore/stream.py)."""
        return iter(self.to_arrow_reader(version=version, as_of=as_of, tag=tag, columns=columns, where=where, batch_size=batch_size))

    def to_arrow_reader(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
        batch_size: int | None = None,
    ) -> pa.RecordBatchReader:
        """The rows of one version as a streaming pyarrow RecordBatchReader (see to_batches)."""
        from . import stream

        resolved = selectors.resolve(self._files, version, as_of=as_of, tag=tag)
        return stream.arrow_reader(self, resolved, columns=columns, where=where, batch_size=batch_size)

    def at(self, version: Version | None = None, *, as_of: Moment | None = None, tag: Tag | None = None) -> TableVersion:
        """A read-only handle pinned to one version (the latest by default): version, timestamp, schema, num_rows,
        the readers, fragments, and the Arrow C stream interface (pyarrow.table(tv), DuckDB `FROM tv`)."""
        from . import stream

        return stream.at(self, version, as_of=as_of, tag=tag)

    def fragments(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        rows_per_fragment: int | None = None,
    ) -> list[Fragment]:
        """One version as picklable Fragments, each reading its share on its own in any process that can reach
        the store; together exactly the version's rows, in order, each row once (logstore/fragments.py)."""
        from . import fragments

        resolved = selectors.resolve(self._files, version, as_of=as_of, tag=tag)
        return fragments.fragments(self, resolved, columns=columns, rows_per_fragment=rows_per_fragment)

    def to_dask(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        rows_per_fragment: int | None = None,
    ) -> dask.dataframe.DataFrame:
        """One version as a dask DataFrame, one partition per fragment (columns are pandas.ArrowDtype); the driver
        reads no rows. Needs logstore[dask]."""
        from . import fragments

        return fragments.to_dask(self.fragments(version=version, as_of=as_of, tag=tag, columns=columns, rows_per_fragment=rows_per_fragment))

    def to_ray(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        rows_per_fragment: int | None = None,
    ) -> ray.data.Dataset:
        """One version as a ray Dataset, one read task per fragment; the driver reads no rows. Needs logstore[ray]."""
        from . import fragments

        return fragments.to_ray(self.fragments(version=version, as_of=as_of, tag=tag, columns=columns, rows_per_fragment=rows_per_fragment))

    def _planned_relation(
        self,
        version: Version | None,
        as_of: Moment | None,
        tag: Tag | None,
        columns: Columns,
        where: str | None,
        connection: duckdb.DuckDBPyConnection | None,
    ) -> tuple[duckdb.DuckDBPyRelation, PlanFiles]:
        """A lazy relation over one version (on `connection`, or the store's own) and the files it was planned over."""
        from . import lazy

        plan = planner.checked_plan(self._files, selectors.resolve(self._files, version, as_of=as_of, tag=tag), build=planner.scan_plan)
        con = connection if connection is not None else self._store._connection()
        return con.sql(planner.select_sql(self._files, plan, columns, where)), lazy.PlanFiles.of(self._files, plan)

    def _query(
        self,
        version: Version | None,
        as_of: Moment | None,
        tag: Tag | None,
        columns: Columns,
        where: str | None,
        fetch: Callable[[Any], _T],
    ) -> _T:
        """resolve -> plan -> run -> wrap: `fetch` the rows of the selected version (planner.read skips a damaged
        snapshot)."""

        def run(plan: ScanPlan) -> _T:
            if not plan.columns:  # created without data or schema: no columns yet, and SQL cannot select none
                return fetch(_NoColumns())
            return fetch(self._store._connection().sql(planner.select_sql(self._files, plan, columns, where)))

        return planner.read(self._files, selectors.resolve(self._files, version, as_of=as_of, tag=tag), run, build=planner.scan_plan)

    # --- writes --------------------------------------------------------------------------------------------

    def append(
        self,
        data: DataLike,
        *,
        schema_mode: SchemaMode = None,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> Commit:
        """Add rows. schema_mode='merge' adds new columns (nullable) instead of refusing them. A stream (a
        RecordBatchReader, an Arrow C stream, an iterable of record batches, a path or glob of Parquet files) is
        written with bounded memory (logstore/ingest.py); a Dask DataFrame or a Ray Dataset is written by the engine's
        workers, one change file per partition, in one commit (logstore/distributed.py)."""
        if is_distributed(data) or is_stream(data):
            from . import distributed, ingest

            info = CommitInfo(message=message, author=author, timestamp=timestamp, metadata=metadata or {})
            if is_distributed(data):  # a Dask DataFrame or Ray Dataset: the workers write (logstore/distributed.py)
                return distributed.append(self, data, merge=_merge(schema_mode), info=info)
            return ingest.commit_append(self, data, merge=_merge(schema_mode), info=info)
        batch, merge = to_arrow(data), _merge(schema_mode)
        return self._write("APPEND", lambda h: operations.append(h, batch, merge=merge), message, author, timestamp, metadata)

    def upsert(
        self,
        data: DataLike,
        *,
        schema_mode: SchemaMode = None,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> Commit:
        """Insert rows with new keys, update rows whose key exists (unchanged rows are not rewritten)."""
        if is_stream(data):  # streamed with bounded memory (logstore/ingest.py)
            from . import ingest

            info = CommitInfo(message=message, author=author, timestamp=timestamp, metadata=metadata or {})
            return ingest.commit_rewrite(self, data, "UPSERT", merge=_merge(schema_mode), info=info)
        batch, merge = to_arrow(data), _merge(schema_mode)
        return self._write("UPSERT", lambda h: operations.upsert(h, batch, merge=merge), message, author, timestamp, metadata)

    def update(
        self,
        set: dict[str, str],
        where: str | None = None,
        *,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> Commit:
        """Set columns to SQL expressions on the rows matching `where` (all rows if None)."""
        return self._write("UPDATE", lambda h: operations.update(h, set, where), message, author, timestamp, metadata)

    def delete(
        self,
        where: str | None = None,
        *,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> Commit:
        """Delete the rows matching `where` (all rows if None)."""
        return self._write("DELETE", lambda h: operations.delete(h, where), message, author, timestamp, metadata)

    def overwrite(
        self,
        data: DataLike,
        *,
        schema_mode: SchemaMode = None,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> Commit:
        """Make `data` the table's full state; stores only the row-level difference from the previous version."""
        if is_stream(data):  # streamed with bounded memory (logstore/ingest.py)
            from . import ingest

            info = CommitInfo(message=message, author=author, timestamp=timestamp, metadata=metadata or {})
            return ingest.commit_rewrite(self, data, "OVERWRITE", merge=_merge(schema_mode), info=info)
        batch, merge = to_arrow(data), _merge(schema_mode)
        return self._write("OVERWRITE", lambda h: operations.overwrite(h, batch, merge=merge), message, author, timestamp, metadata)

    def restore(
        self,
        version: Version | None = None,
        *,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> Commit:
        """Add a commit whose state equals an earlier version (rows keep their identity)."""
        if version is None and as_of is None and tag is None:
            raise SelectorError({})
        target = planner.checked_plan(self._files, selectors.resolve(self._files, version, as_of=as_of, tag=tag))
        try:
            self._head()
        except HeadUnreadableError:
            return self._reset(target, CommitInfo(message=message, author=author, timestamp=timestamp, metadata=metadata or {}))
        known = self._log.read(target.version).fingerprint  # the restored content is the target's
        target_fingerprint = fingerprint.decode(known) if known is not None else None
        return self._write("RESTORE", lambda h: operations.restore(h, target, target_fingerprint), message, author, timestamp, metadata)

    def _reset(self, target: Plan, info: CommitInfo) -> Commit:
        """Restore `target` when the latest version cannot be read (its change files are missing or damaged): a
        commit that rewrites every row of the target and deletes every other row id, so that it needs nothing of
        the head's rows, followed by a snapshot of the new version (taken from the target), so that reading it and
        every later version never needs the unreadable files."""
        known = self._log.read(target.version).fingerprint
        target_fingerprint = fingerprint.decode(known) if known is not None else fingerprint.of_plan(self._store._connection(), target)
        done = commit(self, "RESTORE", lambda h: operations.reset(h, target, target_fingerprint), info, head=self._record_head)
        self._write_snapshot(done.version, source=target)
        return done

    def set_properties(
        self,
        *,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
        **properties: Any,
    ) -> Commit:
        """Change table properties (snapshot_fraction, snapshot_commits) with a commit that changes no rows."""
        updates = snapshot.check_properties(properties)
        return self._write("SET PROPERTIES", lambda h: operations.set_properties(h, updates), message, author, timestamp, metadata)

    def merge(
        self,
        source: DataLike,
        *,
        on: str | Sequence[str],
        source_alias: str = "source",
        target_alias: str = "target",
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> MergeBuilder:
        """A MERGE of `source` into this table (Delta Lake's semantics, merge.py): add when_... clauses to the
        builder, then `.execute()` commits one version (or `.dry_run()` counts what it would do)."""
        from . import merge

        info = CommitInfo(message=message, author=author, timestamp=timestamp, metadata=metadata or {})
        return merge.builder(self, source, on=on, source_alias=source_alias, target_alias=target_alias, info=info)

    def alter(
        self,
        *,
        add: str | Sequence[str] | dict[str, str] | None = None,
        drop: str | Sequence[str] | None = None,
        rename: dict[str, str] | None = None,
        widen: dict[str, str] | None = None,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: Metadata = None,
    ) -> Commit:
        """Change the table's columns in one new version (operation ALTER), rewriting no data: add columns ('c BIGINT
        DEFAULT 0'), drop, rename ({old: new}) or widen ({name: type}) them. Every older version keeps its columns
        (evolution.py; docs/format.md, "Schema evolution")."""
        from . import evolution, marker

        head = self._log.head()
        evolution.alter(head.columns, head.key, head.version + 1, add=add, drop=drop, rename=rename, widen=widen)  # refusals first
        marker.upgrade(self._storage, 4)  # a format-3 logstore would read renamed columns by their old names: it must refuse the store
        build = lambda h: evolution.change_set(h, add=add, drop=drop, rename=rename, widen=widen)  # noqa: E731
        return self._write("ALTER", build, message, author, timestamp, metadata)

    def _write(
        self,
        operation: str,
        build: Callable[[Head], Any],
        message: str | None,
        author: str | None,
        timestamp: Moment | None,
        metadata: Metadata,
    ) -> Commit:
        info = CommitInfo(message=message, author=author, timestamp=timestamp, metadata=metadata or {})
        return commit(self, operation, build, info)

    def _head(self) -> Head:
        record = self._log.head()
        try:
            files_plan = planner.checked_plan(self._files, record.version)
        except CorruptionError as e:
            raise HeadUnreadableError(e.path, record.version, e.reason) from None
        cache = self._store._head_cache()
        return Head(
            record, files_plan, cache.con.cursor(), self.name, lambda: cache.state_plan(self._files, record, files_plan),
            lookup=lambda column, values: cache.rows_where_in(self._files, record, files_plan, column, values),
        )

    def _record_head(self) -> Head:
        """The head as its commit record alone, for a commit that reads none of its rows (_reset)."""
        record = self._log.head()
        return Head(record, None, self._store._head_cache().con.cursor(), self.name)  # type: ignore[arg-type]  # no plan: nothing reads it

    def _after_commit(self, record: CommitRecord, rows: pa.Table | None = None) -> None:
        """What follows a commit of this handle: the head cache takes the change rows it wrote (`rows`, as stored),
        then the derived data that is due (snapshot, log checkpoint, automatic compaction)."""
        self._store._head_cache().note_commit(self._files, record, rows)
        last = snapshot.snapshot_versions(self._storage, self._prefix)
        start = snapshot.newest_ordered(self._storage, self._prefix, last, self._log)
        before = self._log.read(start).change_rows_total if start >= 0 else 0
        if not record.commit.parameters.get("reset") and snapshot.due(  # _reset snapshots from its target itself
            record.properties,
            commits_since=record.version - start,
            change_rows_since=record.change_rows_total - before,
            num_rows=record.commit.num_rows,
        ):
            try:
                self._write_snapshot(record.version)
            except (LogstoreError, OSError, duckdb.Error) as e:  # the commit stands; a snapshot is only derived data
                warnings.warn(f"logstore: could not write a snapshot of version {record.version}: {e}", RuntimeWarning, stacklevel=3)
        try:  # log checkpoints and automatic compaction: derived data too, the commit stands without them
            checkpoint.write_due(self._log, record.version)
            compaction.after_commit(self._files, record.version)
        except (LogstoreError, OSError, ValueError) as e:
            warnings.warn(f"logstore: could not checkpoint/compact after version {record.version}: {e}", RuntimeWarning, stacklevel=3)

    def compact(self) -> list[CompactionRecord]:
        """Merge small change files into larger ones, every version reading exactly as before (compaction.py).

        Commit-free: adds no version. Returns the compaction records it published.
        """
        return compaction.compact(self._files)

    # --- retention and erasure (logstore/expiry.py, logstore/purge.py) ---------------------------------------

    def expire(
        self,
        *,
        before: Moment | None = None,
        keep_last: int | None = None,
        keep_tags: bool = True,
        dry_run: bool = False,
        message: str | None = None,
        author: str | None = None,
    ) -> ExpireReport:
        """Make the versions before a cut-off unreadable (VersionExpiredError), so vacuum can reclaim the files only
        they need: those committed before `before`, and/or all but the `keep_last` newest. Tagged versions stay
        readable unless keep_tags=False; the latest version is never expired. Commits an EXPIRE version."""
        from .expiry import expire

        return expire(self, before=before, keep_last=keep_last, keep_tags=keep_tags, dry_run=dry_run, info=CommitInfo(message=message, author=author))

    def purge(
        self,
        *,
        where: str,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        dry_run: bool = False,
    ) -> Any:
        """Remove every row whose image matches `where` in any version from every version (its whole lineage, by
        row id), rewriting only the files that hold them; recorded as a PURGE commit (who, when, how many rows, a
        hash of the predicate). Returns that Commit, None if nothing matched (no version is made), or a PurgeReport
        when dry_run=True. See logstore/purge.py."""
        from . import filetable
        from .purge import purge

        info = CommitInfo(message=message, author=author, timestamp=timestamp)
        if filetable.is_file_table(self):  # its purged files' blobs go too (filetable.purge)
            return filetable.purge(self, where=where, info=info, dry_run=dry_run)
        return purge(self, where=where, info=info, dry_run=dry_run)

    # --- tags and snapshots --------------------------------------------------------------------------------

    def tag(self, name: Tag, version: Version | None = None, *, as_of: Moment | None = None) -> int:
        """Name a version (the latest by default); returns the version tagged."""
        resolved = selectors.resolve(self._files, version, as_of=as_of)
        self._tags.create(name, resolved)
        return resolved

    def tags(self) -> dict[str, int]:
        return self._tags.all()

    def delete_tag(self, name: Tag) -> None:
        self._tags.delete(name)

    def snapshot(self) -> int:
        """Write a snapshot of the latest version now; returns its version."""
        latest = self.version
        if latest not in snapshot.snapshot_versions(self._storage, self._prefix) or snapshot.load(self._storage, self._prefix, latest) is None:
            self._write_snapshot(latest)
        return latest

    def snapshots(self) -> list[int]:
        return snapshot.snapshot_versions(self._storage, self._prefix)

    # --- change feed and diff (logstore/changes.py) ---------------------------------------------------------

    def changes(self, start: Selector, end: Selector | None = None) -> pa.Table:
        """Every row change made by the commits start..end (inclusive; end defaults to the latest), with
        _change_type (insert, update_preimage, update_postimage, delete), _version, _timestamp and _row_id.
        start/end: an int version, a tag name, '@<timestamp>' or a datetime (a start moment means the first
        commit at or after it). ChangeRangeError if start is after end."""
        from .changes import changes

        return changes(self._files, start, end)

    def diff(self, a: Selector, b: Selector, *, limit: int | None = None) -> pa.Table:
        """The net row difference from version a to version b (a > b gives the reverse), matched by key (by row
        id without one): _change_type (insert, update, delete), the columns, _old_<col> for changed values,
        _changed_columns. a/b: an int version, a tag name, '@<timestamp>' or a datetime."""
        from .changes import diff

        return diff(self._files, a, b, limit=limit)

    def diff_summary(self, a: Selector, b: Selector) -> DiffSummary:
        """A DiffSummary of diff(a, b): inserted, updated, deleted, changed_columns, columns_added/removed."""
        from .changes import diff_summary

        return diff_summary(self._files, a, b)

    # --- integrity and housekeeping (logstore/verify.py, logstore/vacuum.py) ---------------------------------

    def verify(self, version: Version | None = None, *, full: bool = False) -> VerifyReport:
        """Check the files `version` (the latest by default) needs and its content fingerprint; full=True checks
        every version and snapshot. Returns a VerifyReport listing each problem with its file and version."""
        from . import filetable
        from .verify import verify

        report = verify(self._files, version, full=full)
        if filetable.is_file_table(self):
            filetable.verify_blobs(self, report, report.version if report.version is not None else version, full=full)
        return report

    def vacuum(self, *, dry_run: bool = True, older_than: dt.timedelta | float | None = None) -> VacuumReport:
        """Remove files no version or tag needs, older than `older_than` (timedelta or seconds, default 1 hour).
        Dry run by default. Returns a VacuumReport listing the files and bytes removed (or that would be)."""
        from . import filetable
        from .expiry import apply_retention
        from .vacuum import DEFAULT_MIN_AGE, min_age_seconds, vacuum

        apply_retention(self, dry_run=dry_run)  # the `retention` property: a rolling cut-off (expiry.py)
        report = vacuum(self._files, dry_run=dry_run, older_than=DEFAULT_MIN_AGE if older_than is None else older_than)
        if filetable.is_file_table(self):  # the blob area is the store's: every file table's versions keep theirs
            filetable.vacuum_blobs(self._store, report, dry_run=dry_run, min_age=min_age_seconds(older_than))
        return report

    def repair(self) -> RepairReport:
        """Move damaged or lost newest commits out of the way (to `_quarantine/`, never deleted) so that the table
        can take commits again; returns a RepairReport (repair.py). Run it with no writer active."""
        from .repair import repair

        return repair(self._files)

    def info(self) -> TableInfo:
        """A TableInfo: schema, key, latest version, rows, bytes on disk, snapshots, tags, first and last commit time."""
        from .info import table_info

        return table_info(self._files)

    def changes_relation(self, start: Selector, end: Selector | None = None) -> duckdb.DuckDBPyRelation:
        """changes(start, end) as a lazy DuckDB relation on the store's connection, for results too big for memory
        (e.g. `logstore.export.write_relation(t.changes_relation(0), "changes.parquet")`); _timestamp is a TIMESTAMPTZ."""
        from .changes import changes_relation

        return changes_relation(self._files, start, end)

    def diff_relation(self, a: Selector, b: Selector) -> duckdb.DuckDBPyRelation:
        """diff(a, b) as a lazy DuckDB relation on the store's connection (diff_summary has the schema changes)."""
        from .changes import diff_relation

        return diff_relation(self._files, a, b)

    # --- lineage (logstore/uri.py, logstore/integrations/) ------------------------------------------------------

    def fingerprint(self, *, version: Version | None = None, as_of: Moment | None = None, tag: Tag | None = None) -> str:
        """The content fingerprint of one version (the latest by default): 16 hex digits, as `Commit.fingerprint`."""
        from . import uri

        return uri.version_fingerprint(self._files, selectors.resolve(self._files, version, as_of=as_of, tag=tag))

    def uri(self, *, version: Version | None = None, as_of: Moment | None = None, tag: Tag | None = None) -> str:
        """The dataset URI of one version (the latest by default): the store, the table, the exact version number
        and its fingerprint (`logstore+file:///path#table=t&version=3&fingerprint=...`; see logstore/uri.py).
        logstore.read_uri(uri) reads exactly those rows back."""
        from . import uri

        return uri.of_table(self, version=version, as_of=as_of, tag=tag)

    def to_hf(
        self,
        *,
        version: Version | None = None,
        as_of: Moment | None = None,
        tag: Tag | None = None,
        columns: Columns = None,
        where: str | None = None,
    ) -> Any:
        """One version as a Hugging Face `datasets.Dataset` built from its Arrow rows (no conversion to Python
        objects), its `info.description` naming the version's dataset URI; needs the `hf` extra."""
        from .integrations import hf

        return hf.to_hf(self, version=version, as_of=as_of, tag=tag, columns=columns, where=where)


    # --- file tables (logstore/filetable.py) ---------------------------------------------------------------------

    def checkout(self, directory: str | os.PathLike[str], *, version: Version | None = None, as_of: Moment | None = None, tag: Tag | None = None, overwrite: bool = False) -> int:
        """Write one version of a file table (the latest by default) as a folder, byte for byte, with executable
        bits and mtimes; a non-empty `directory` is refused unless overwrite=True, which makes it exactly that
        version. Returns the version written."""
        from . import filetable

        return filetable.checkout(self, directory, version=version, as_of=as_of, tag=tag, overwrite=overwrite)

    def open(self, path: str, *, version: Version | None = None, as_of: Moment | None = None, tag: Tag | None = None) -> BinaryIO:
        """One file of one version of a file table as a readable binary file object (verified as it is read:
        CorruptionError at the end if the bytes are not the row's)."""
        from . import filetable

        return filetable.open_file(self, path, version=version, as_of=as_of, tag=tag)

    def _write_snapshot(self, version: int, *, source: Plan | None = None) -> SnapshotRecord:
        """Snapshot `version`, read from its own plan or from `source`, a plan of the same rows (checked against the
        version's fingerprint before it is published)."""
        plan: Plan | ScanPlan
        if source is not None:  # a reset restore: version `version` wrote every row, so row-id order is row order
            plan = source
            rows_sql = f"SELECT _row_id, CAST({version} AS BIGINT) AS _version, * EXCLUDE (_row_id) FROM ({source.relation_sql()}) AS v ORDER BY _row_id"
        else:
            plan = planner.checked_plan(self._files, version, build=planner.scan_plan)
            rows_sql = plan.select_sql(row_id=True, version=True)
        staged = self._storage.staging_file(".parquet")
        target = staged.replace("'", "''")
        con = self._store._connection().cursor()
        con.execute(f"COPY ({rows_sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        rows = con.sql(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0]
        expected = self._log.read(version).fingerprint
        actual = fingerprint.encode(fingerprint.of_parquet(con, staged, plan.columns))
        if expected is not None and actual != expected:  # never publish a snapshot that disagrees with the log
            self._storage.delete_staged(staged)
            raise CorruptionError(layout.join(self._prefix, layout.LOG_DIR), version, f"materialized content has fingerprint {actual}, the commit record says {expected}")
        relative = layout.new_snapshot_file(version)
        size, digest = publish_staged(self._storage, layout.join(self._prefix, relative), staged)
        record = SnapshotRecord(version, relative, rows, size, digest, tuple(c.name for c in plan.columns), actual)
        if not snapshot.publish(self._storage, self._prefix, record):
            self._storage.delete(layout.join(self._prefix, relative))  # another writer snapshotted this version first
        return record


def _merge(schema_mode: object) -> bool:
    if schema_mode not in SCHEMA_MODES:
        raise InvalidInputError(schema_mode, f"schema_mode must be 'strict' or 'merge', not {schema_mode!r}")
    return schema_mode == "merge"


class _NoColumns:
    """Stands in for the DuckDB relation of a version without columns (DuckDB has no zero-column relations)."""

    def to_arrow_table(self) -> pa.Table:
        return pa.table({})

    def df(self) -> pandas.DataFrame:
        import pandas

        return pandas.DataFrame()

    def pl(self, lazy: bool = False) -> polars.DataFrame | polars.LazyFrame:
        import polars

        return polars.LazyFrame() if lazy else polars.DataFrame()
