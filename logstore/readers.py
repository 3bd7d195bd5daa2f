"""One-call readers: open a store, pick a table, read one version. `read_x` is the eager form of `scan_polars`."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, Unpack

from .store import open as open_store

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow as pa

    from .selectors import Moment, Tag, Version
    from .store import Location
    from .table import Columns, Table


class ReadOptions(TypedDict, total=False):
    """The keyword arguments of a read (Table.read and its siblings): a selector, columns and a filter."""

    version: Version | None
    as_of: Moment | None
    tag: Tag | None
    columns: Columns
    where: str | None


def _table(path: Location, table: str) -> Table:
    return open_store(path).table(table)


def read_arrow(path: Location, table: str, **selectors: Unpack[ReadOptions]) -> pa.Table:
    """logstore.read_arrow(path, table, version=..., as_of=..., tag=..., columns=..., where=...)"""
    return _table(path, table).read(**selectors)


def read_pandas(path: Location, table: str, **selectors: Unpack[ReadOptions]) -> pandas.DataFrame:
    return _table(path, table).to_pandas(**selectors)


def read_polars(path: Location, table: str, **selectors: Unpack[ReadOptions]) -> polars.DataFrame:
    return _table(path, table).to_polars(**selectors)


def scan_polars(path: Location, table: str, **selectors: Unpack[ReadOptions]) -> polars.LazyFrame:
    return _table(path, table).scan_polars(**selectors)
