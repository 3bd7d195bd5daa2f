"""Turning what users hand to a write into Arrow: one Arrow table (to_arrow), or a stream of record batches
(to_reader) for the inputs that may not fit in memory: a RecordBatchReader, any object exporting an Arrow C stream
(other than the in-memory frames and tables), an iterable of record batches, or a path or glob of Parquet files.
Writes take streams through ingest.py, with bounded memory."""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterable, Iterator
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
    " | ArrowStreamExportable | Iterable[pa.RecordBatch] | str | os.PathLike[str]"
)
"""What a write takes (append, upsert, overwrite, create_table): see to_arrow."""


def to_arrow(data: DataLike) -> pa.Table:
    """One Arrow table from `data`; InvalidInputError for anything else (callers may pass unchecked values)."""
    if isinstance(data, pa.Table):
        return data
    if is_distributed(data):
        raise InvalidInputError(data, f"only append takes a {type(data).__name__} (its workers write it); collect it first for other writes")
    if is_stream(data):
        return to_reader(data).read_all()
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
    raise InvalidInputError(
        data,
        f"cannot write {type(data).__name__}: give a pyarrow Table or RecordBatchReader, or a pandas or polars DataFrame",
    )


_FRAMES = ("pandas", "polars")


def is_distributed(data: object) -> bool:
    """Whether `data` is a Dask DataFrame or a Ray Dataset (by module, without importing either)."""
    module = type(data).__module__
    return (module.startswith("dask.") and hasattr(data, "to_delayed")) or (module.startswith("ray.data") and hasattr(data, "to_arrow_refs"))


def is_stream(data: object) -> bool:
    """Whether `data` is one of the inputs to_reader streams (not a table or frame already in memory)."""
    if isinstance(data, (pa.Table, pa.RecordBatch)) or type(data).__module__.split(".")[0] in _FRAMES:
        return False
    if isinstance(data, (pa.RecordBatchReader, str, os.PathLike)) or hasattr(data, "__arrow_c_stream__"):
        return True
    return isinstance(data, Iterable) and not isinstance(data, (bytes, dict))


def to_reader(data: Any) -> pa.RecordBatchReader:
    """A RecordBatchReader over a streamed input (is_stream); InvalidInputError naming what cannot be read."""
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, (str, os.PathLike)):
        return _files_reader(os.fspath(data))
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    return _iterable_reader(data)


def _files_reader(pattern: str) -> pa.RecordBatchReader:
    """The rows of the Parquet files a path or glob names, in the order of their sorted names."""
    import pyarrow.dataset as ds

    paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not paths or not all(os.path.isfile(p) for p in paths):
        raise InvalidInputError(pattern, f"no Parquet file at {pattern!r} (give a path or a glob of Parquet files; read other formats with logstore.read_file)")
    try:
        dataset = ds.dataset(paths, format="parquet")
        return dataset.scanner(batch_size=64 * 1024).to_reader()
    except (pa.ArrowException, OSError) as e:
        raise InvalidInputError(pattern, f"cannot read {pattern!r} as Parquet: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _iterable_reader(data: Iterable[Any]) -> pa.RecordBatchReader:
    """A reader over an iterable of record batches (or tables), its schema the first one's."""
    items = iter(data)
    first = next(items, None)
    if first is None:
        raise InvalidInputError(data, "cannot write an empty iterable of record batches: its schema is unknown (give a RecordBatchReader)")
    if not isinstance(first, (pa.RecordBatch, pa.Table)):
        raise InvalidInputError(first, f"an iterable written must hold pyarrow RecordBatches, not {type(first).__name__}")
    schema = first.schema

    def batches() -> Iterator[pa.RecordBatch]:
        for b in itertools.chain([first], items):
            if not isinstance(b, (pa.RecordBatch, pa.Table)):
                raise InvalidInputError(b, f"an iterable written must hold pyarrow RecordBatches, not {type(b).__name__}")
            if not b.schema.equals(schema):
                raise InvalidInputError(b, f"record batches of one write must share one schema: {b.schema} differs from the first batch's {schema}")
            yield from (b.to_batches() if isinstance(b, pa.Table) else [b])

    return pa.RecordBatchReader.from_batches(schema, batches())
