"""A summary of one table: what `Table.info()` returns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from . import layout, snapshot
from .schema import arrow_schema

if TYPE_CHECKING:
    from .planner import TableFiles


@dataclass(frozen=True)
class TableInfo:
    """Schema, key, size and history bounds of a table at its latest version."""

    name: str
    schema: pa.Schema  # the latest version's columns, as Arrow types
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type name), e.g. ("id", "BIGINT")
    key: tuple[str, ...]
    version: int  # the latest version
    num_rows: int  # rows in the latest version
    bytes_on_disk: int  # every file under the table's directory: log, change files, snapshots, tags
    snapshots: tuple[int, ...]  # versions that have a snapshot, oldest first
    tags: dict[str, int]  # tag name -> version
    first_commit: dt.datetime  # time of version 0 (tz-aware UTC)
    last_commit: dt.datetime  # time of the latest version (tz-aware UTC)


def table_info(files: TableFiles) -> TableInfo:
    head = files.log.head()
    first = files.log.read(0).commit if head.version > 0 else head.commit
    return TableInfo(
        name=files.name,
        schema=arrow_schema(head.columns),
        columns=tuple((c.name, c.type) for c in head.columns),
        key=tuple(head.key),
        version=head.version,
        num_rows=head.commit.num_rows,
        bytes_on_disk=_bytes_under(files.storage, files.prefix),
        snapshots=tuple(snapshot.snapshot_versions(files.storage, files.prefix)),
        tags=dict(sorted(files.tags.all().items())),
        first_commit=first.timestamp,
        last_commit=head.commit.timestamp,
    )


def _bytes_under(storage, prefix: str) -> int:
    total = sum(storage.size(layout.join(prefix, name)) for name in storage.list(prefix))
    return total + sum(_bytes_under(storage, layout.join(prefix, d)) for d in storage.list_dirs(prefix))
