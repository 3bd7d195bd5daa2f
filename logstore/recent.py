"""The change files this process wrote lately, kept as the Arrow tables they were encoded from.

A level-1 compaction merges the change files of the last FANOUT commits, which the committing process usually
wrote moments before; opening, hashing and decoding them again was half of its time. The bytes of such a file are
the Parquet encoding of one table, and the SHA-256 its commit record names was computed from those very bytes, so
a compaction that finds (store, path, sha256) here takes the table instead of reading the file: exactly the rows
a read of intact bytes gives. Only tables whose schema reads back unchanged from Parquet are kept (checked once per
schema, by decoding one file written with it), so a cached table and a decoded one never differ, not even in type.

Bounded by MAX_BYTES of Arrow memory (the oldest dropped first); shared by the threads of a process (a lock).
It never changes what is stored, and a file replaced or removed on disk since it was written does not matter: the
record names the bytes that were written.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import pyarrow as pa
import pyarrow.parquet as pq

MAX_BYTES = 64 << 20
MAX_SCHEMAS = 256  # schemas whose round trip was checked

_lock = threading.Lock()
_tables: OrderedDict[tuple[str, str, str], pa.Table] = OrderedDict()
_held = 0
_round_trips: dict[bytes, bool] = {}  # serialized schema (metadata included) -> reads back equal


def remember(location: str, path: str, sha256: str, table: pa.Table, encoded: pa.Buffer) -> None:
    """Keep `table`, whose Parquet encoding `encoded` was published at `path` of the store at `location`."""
    global _held
    if table.nbytes > MAX_BYTES // 4 or not _round_trips_exactly(table.schema, encoded):
        return
    with _lock:
        key = (location, path, sha256)
        if key in _tables:
            return
        _tables[key] = table
        _held += table.nbytes
        while _held > MAX_BYTES:
            _, dropped = _tables.popitem(last=False)
            _held -= dropped.nbytes


def recall(location: str, path: str, sha256: str) -> pa.Table | None:
    """The table published at `path` with this SHA-256, if this process wrote it lately."""
    with _lock:
        return _tables.get((location, path, sha256))


def forget() -> None:
    global _held
    with _lock:
        _tables.clear()
        _held = 0


def _round_trips_exactly(schema: pa.Schema, encoded: pa.Buffer) -> bool:
    key = schema.serialize().to_pybytes()
    with _lock:
        known = _round_trips.get(key)
    if known is None:
        known = pq.ParquetFile(pa.BufferReader(encoded)).read().schema.equals(schema, check_metadata=True)
        with _lock:
            if len(_round_trips) >= MAX_SCHEMAS:
                _round_trips.clear()
            _round_trips[key] = known
    return known
