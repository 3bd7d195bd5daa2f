"""Turning what users hand to a write (Arrow, pandas, polars, a record batch reader) into one Arrow table."""

from __future__ import annotations

import pyarrow as pa

from .errors import InvalidInputError


def to_arrow(data) -> pa.Table:
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
        if hasattr(data, "collect") and not hasattr(data, "to_arrow"):
            data = data.collect()  # a LazyFrame
        return data.to_arrow()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise InvalidInputError(
        data,
        f"cannot write {type(data).__name__}: give a pyarrow Table or RecordBatchReader, or a pandas or polars DataFrame",
    )
