"""One-call readers: open a store, pick a table, read one version. `read_x` is the eager form of `scan_polars`."""

from __future__ import annotations

from .store import open as open_store


def _table(path, table: str):
    return open_store(path).table(table)


def read_arrow(path, table: str, **selectors):
    """logstore.read_arrow(path, table, version=..., as_of=..., tag=..., columns=..., where=...)"""
    return _table(path, table).read(**selectors)


def read_pandas(path, table: str, **selectors):
    return _table(path, table).to_pandas(**selectors)


def read_polars(path, table: str, **selectors):
    return _table(path, table).to_polars(**selectors)


def scan_polars(path, table: str, **selectors):
    return _table(path, table).scan_polars(**selectors)
