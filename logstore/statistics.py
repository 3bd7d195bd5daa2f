"""Min/max statistics of integer columns in the footers of data files, read once per file per process.

Data, compacted and snapshot files never change under their names (reads check each file's size and checksum), so
what a footer says about a file stays true and can be cached by path. An append to a keyed table uses this to
skip its key probe: if no file's key range overlaps the batch's (fresh ids past all stored ones, the common case),
no stored row can hold one of the batch's keys. Only integer columns: their statistics are exact, whereas string
statistics may be truncated by a writer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Range:
    """The values of a column in a file: low..high, or none at all (low and high None: every value is NULL)."""

    low: int | None
    high: int | None

    def overlaps(self, low: int, high: int) -> bool:
        return self.low is not None and self.low <= high and low <= self.high


_cache: dict[tuple[str, str], Range | None] = {}
_lock = threading.Lock()


def integer_range(url: str, column: str) -> Range | None:
    """The range of `column` over every row of the Parquet file at `url`; None if the footer does not tell."""
    key = (url, column)
    with _lock:
        if key in _cache:
            return _cache[key]
    found = _read_range(url, column)
    with _lock:
        _cache[key] = found
    return found


def _read_range(url: str, column: str) -> Range | None:
    try:
        metadata = pq.ParquetFile(url).metadata
    except (OSError, ValueError, pa.ArrowException):  # a damaged file: unknown here; the read that needs it reports the damage
        return None
    names = metadata.schema.names
    if column not in names:
        return None
    index = names.index(column)
    low = high = None
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        if group.num_rows == 0:
            continue
        stats = group.column(index).statistics
        if stats is not None and stats.has_null_count and stats.null_count == group.num_rows:
            continue  # only NULLs (the rows of deletes): no value stored here
        if stats is None or not stats.has_min_max or not isinstance(stats.min, int) or not isinstance(stats.max, int):
            return None
        low = stats.min if low is None else min(low, stats.min)
        high = stats.max if high is None else max(high, stats.max)
    return Range(low, high)
