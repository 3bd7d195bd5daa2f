"""Streaming reads of one version (Table.to_batches, Table.to_arrow_reader) and the pinned handle TableVersion.

A streaming read runs the version's ScanPlan (scan.py) in DuckDB and hands its result out as an Arrow
RecordBatchReader: DuckDB's streaming result produces the rows batch by batch, so memory stays bounded by the batch
size (and DuckDB's buffers), never by the size of the version. The query runs on a DuckDB connection of its own,
confined to the store's files like the store's connections (connection.py), closed with the stream: other reads on
the store while the stream is open do not close it. It runs on STREAM_THREADS threads: every thread decodes a row
group of its own ahead of the consumer, so one thread keeps the memory at one row group and one batch (measured by
benchmarks/memory.py: 10M rows in about 370 MB with one thread, about 480 MB with two); a parallel read is what
fragments are for. A DuckDB error raised while a file of the plan has gone missing (vacuum removed it between the plan
and the last batch) becomes VersionFilesGoneError, as for the other lazy reads (lazy.py).

`Table.at(version=|as_of=|tag=)` returns a TableVersion: the version resolved once, then every read of the handle
reads that version. It exports the Arrow C stream interface (`__arrow_c_stream__`), so pyarrow
(`pyarrow.table(tv)`, `pyarrow.RecordBatchReader.from_stream(tv)`), polars and DuckDB's replacement scans
(`duckdb.sql("SELECT ... FROM tv")`) read it without a logstore call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from . import connection, lazy, planner, selectors
from .errors import InvalidInputError
from .schema import arrow_schema

if TYPE_CHECKING:
    import pandas
    import polars

    from .fragments import Fragment
    from .selectors import Moment, Tag, Version
    from .table import Columns, Table

BATCH_ROWS = 122_880  # DuckDB's row group size: the default rows per batch
STREAM_THREADS = 1  # DuckDB threads of a streaming read


def arrow_reader(
    table: Table,
    version: int,
    *,
    columns: Columns = None,
    where: str | None = None,
    batch_size: int | None = None,
) -> pa.RecordBatchReader:
    """The rows of `version` of `table` (projected, filtered) as a RecordBatchReader of at most `batch_size` rows
    per batch, streamed from DuckDB."""
    rows = _batch_rows(batch_size)
    files = table._files
    plan = planner.checked_plan(files, version, build=planner.scan_plan)
    if not plan.columns:  # created without data or schema: no columns, no rows
        return pa.RecordBatchReader.from_batches(pa.schema([]), iter(()))
    sql = planner.select_sql(files, plan, columns, where)
    cursor = connection.new(files=connection.Confined(directories=(str(files.storage.local_root),)), settings={"threads": STREAM_THREADS})
    planned = lazy.PlanFiles.of(files, plan)
    try:
        source = cursor.sql(sql).to_arrow_reader(rows)
    except duckdb.Error as e:
        cursor.close()
        gone = planned.gone(e)
        if gone is None:
            raise
        raise gone from None
    return pa.RecordBatchReader.from_batches(source.schema, _batches(source, cursor, planned))


def _batches(source: pa.RecordBatchReader, cursor: duckdb.DuckDBPyConnection, planned: lazy.PlanFiles) -> Iterator[pa.RecordBatch]:
    """The batches of `source`, holding its cursor open until the last one; errors for files gone translated."""
    try:
        while True:
            try:
                batch = source.read_next_batch()
            except StopIteration:
                return
            except (duckdb.Error, pa.ArrowException) as e:
                gone = planned.gone(e)
                if gone is None:
                    raise
                raise gone from None
            yield batch
    finally:
        source.close()
        cursor.close()


def _batch_rows(batch_size: int | None) -> int:
    if batch_size is None:
        return BATCH_ROWS
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(batch_size, f"batch_size must be a positive number of rows, not {batch_size!r}")
    return batch_size


@dataclass(frozen=True)
class TableVersion:
    """One version of a table, pinned: every read of this handle reads `version` (Table.at)."""

    table: Table
    version: int

    def __repr__(self) -> str:
        return f"<logstore.TableVersion {self.table.name!r} version {self.version}>"

    @property
    def timestamp(self) -> dt.datetime:
        return self.table.commit_info(self.version).timestamp

    @property
    def schema(self) -> pa.Schema:
        return arrow_schema(self.table._log.read(self.version).columns)

    @property
    def num_rows(self) -> int:
        return self.table.commit_info(self.version).num_rows

    def read(self, *, columns: Columns = None, where: str | None = None) -> pa.Table:
        return self.table.read(version=self.version, columns=columns, where=where)

    def to_pandas(self, *, columns: Columns = None, where: str | None = None) -> pandas.DataFrame:
        return self.table.to_pandas(version=self.version, columns=columns, where=where)

    def to_polars(self, *, columns: Columns = None, where: str | None = None) -> polars.DataFrame:
        return self.table.to_polars(version=self.version, columns=columns, where=where)

    def scan_polars(self, *, columns: Columns = None, where: str | None = None) -> polars.LazyFrame:
        return self.table.scan_polars(version=self.version, columns=columns, where=where)

    def to_duckdb(self, *, columns: Columns = None, where: str | None = None, connection: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyRelation:
        return self.table.to_duckdb(version=self.version, columns=columns, where=where, connection=connection)

    def to_batches(self, *, columns: Columns = None, where: str | None = None, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        return self.table.to_batches(version=self.version, columns=columns, where=where, batch_size=batch_size)

    def to_arrow_reader(self, *, columns: Columns = None, where: str | None = None, batch_size: int | None = None) -> pa.RecordBatchReader:
        return self.table.to_arrow_reader(version=self.version, columns=columns, where=where, batch_size=batch_size)

    def fragments(self, *, columns: Columns = None, rows_per_fragment: int | None = None) -> list[Fragment]:
        return self.table.fragments(version=self.version, columns=columns, rows_per_fragment=rows_per_fragment)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow C stream of this version's rows (the Arrow PyCapsule interface)."""
        return self.to_arrow_reader().__arrow_c_stream__(requested_schema)


def at(table: Table, version: Version | None = None, *, as_of: Moment | None = None, tag: Tag | None = None) -> TableVersion:
    """The TableVersion the selector names (the latest version without one); VersionExpiredError for a version the
    table's retention has expired (a handle that could never read)."""
    from . import expiry

    number = selectors.resolve(table._files, version, as_of=as_of, tag=tag)
    expiry.check(table._files, number)
    return TableVersion(table, number)
