"""Turning what users hand to a write (Arrow, pandas, polars, a record batch reader) into one Arrow table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import pyarrow as pa

from .errors import InvalidInputError

if TYPE_CHECKING:
    import pandas
    import polars


class ArrowStreamExportable(Protocol):
    """Any object exporting an Arrow C stream (the Arrow PyCapsule interface), e.g. a DuckDB relation."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


DataLike: TypeAlias = (
    "pa.Table | pa.RecordBatchReader | pa.RecordBatch | pandas.DataFrame | polars.DataFrame | polars.LazyFrame"
    " | ArrowStreamExportable"
)
"""What a write takes (append, upsert, overwrite, create_table): see to_arrow."""


def to_arrow(data: DataLike) -> pa.Table:
    """One Arrow table from `data`; InvalidInputError for anything else (callers may pass unchecked values)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        frame: Any = data
        if hasattr(frame, "collect") and not hasattr(frame, "to_arrow"):
            frame = frame.collect()  # a LazyFrame
        return frame.to_arrow()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise InvalidInputError(
        data,
        f"cannot write {type(data).__name__}: give a pyarrow Table or RecordBatchReader, or a pandas or polars DataFrame",
    )
