"""The read plan: the rows of version v as one order-preserving scan of the files it needs, dead rows filtered by
their position in their file (format 3).

materialize.Plan states the materialization rule with joins (an anti-join of the base rows against the newest change
per row id); writers, the change feed and verify use it, since they need no order. Every reader (Table.read,
to_pandas, to_polars, to_duckdb, scan_polars, SQL views, snapshots) uses this ScanPlan instead, which gives the same
rows without a join and without a sort:

1. Files (planner.scan): the newest usable snapshot S at or below v, then the change files of versions s+1..v
   (compacted blocks where compaction.py has them), cut into *slices*: a file and a version range whose rows that
   file alone holds, in version order (`slices`).
2. Dead rows (`_dead_rows`): a narrow read of `_row_id`, `_version` and `_op` of the change files that are not
   insert-only finds the newest change of every row id changed in s+1..v. Every other image of such a row id (in S,
   in an insert-only file, or an older change) is dead, and so is a newest change that is a delete. Their positions
   in their files become one bitmap per file.
3. SQL (`ScanPlan.select_sql`): UNION ALL over the slices of
   `SELECT ... FROM read_parquet(file, file_row_number = true) WHERE <version range> AND get_bit(<bitmap>, file_row_number) = 0`.
   DuckDB preserves the order of a single-table scan, of WHERE and of UNION ALL, so rows come in the table's row
   order (docs/format.md): by the version that wrote the row's current values, then by _row_id. S holds its rows in
   that order (snapshots of format 3 carry `_version`), every change file is sorted by _row_id within a version,
   and the slices come in version order. Projections and filters reach every Parquet scan.

Positions of row ids in base files (S and insert-only files) come from the files' _row_id statistics when the ids are
dense (an append's ids are consecutive), else from the file's _row_id column, read once per process and cached.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import layout
from .layout import DELETE, OP, ROW_ID, VERSION
from .materialize import Source, _project
from .schema import Column, literal, quote

CACHE_MAX_BYTES = 256 << 20  # row-id arrays of base files kept per process
JOIN_MAX_ROWS = 1 << 16  # files with dead rows read in one scan with others only up to this size
JOIN_MAX_BITS = 1 << 21  # and only while the scan's joined bitmap stays this small


@dataclass(frozen=True)
class File:
    """A file a scan reads: where it is, what it holds, and the versions of its rows."""

    source: Source
    rows: int
    first: int  # the versions its rows may have: first..last
    last: int
    inserts_only: bool
    key: tuple  # identifies the file's bytes (store, path, size, sha256): the cache key of its row ids
    version: int | None = None  # a snapshot without a _version column: the version all its rows were written at


@dataclass(frozen=True)
class Slice:
    file: File
    first: int  # the rows of versions first..last
    last: int
    folded: bool = False  # the rows outside first..last are marked dead (a change file read once, see _dead_rows)

    @property
    def ranged(self) -> bool:
        """Whether the scan must filter by version: the file holds rows outside first..last not marked dead."""
        return not self.folded and (self.file.first < self.first or self.file.last > self.last)


@dataclass(frozen=True)
class ScanPlan:
    version: int
    columns: tuple[Column, ...]
    snapshot: Source | None
    snapshot_version: int  # -1 when the plan starts from nothing
    slices: tuple[Slice, ...]
    dead: dict  # File.source.url -> packed bitmap of its dead positions (only files with dead rows)

    def sources(self) -> tuple[Source, ...]:
        seen: dict[str, Source] = {}
        for s in self.slices:
            seen.setdefault(s.file.source.url, s.file.source)
        return tuple(seen.values())

    def relation_sql(self, *, row_id: bool = False, version: bool = False) -> str:
        """SQL for the rows of this version in the table's row order: (_row_id, _version,) then the columns."""
        parts = _grouped(self.slices, self.dead)
        if not parts:
            head = ([f"CAST(NULL AS BIGINT) AS {ROW_ID}"] if row_id else []) + ([f"CAST(NULL AS BIGINT) AS {VERSION}"] if version else [])
            return f"SELECT {', '.join(head + [_project(self.columns, frozenset())])} WHERE false"
        return " UNION ALL ".join(f"({self._part_sql(p, row_id, version)})" for p in parts)

    def _part_sql(self, part: Sequence[Slice], row_id: bool, version: bool) -> str:
        head = [ROW_ID] if row_id else []
        fixed = part[0].file.version
        if version:
            head.append(VERSION if fixed is None else f"CAST({fixed} AS BIGINT) AS {VERSION}")
        select = ", ".join(head + [part[0].file.source.projection(self.columns)])
        conditions = [f"{VERSION} BETWEEN {part[0].first} AND {part[0].last}"] if part[0].ranged else []
        urls = [s.file.source.url for s in part]
        bitmaps = [self.dead.get(u) for u in urls]
        if any(b is not None for b in bitmaps):
            bits = base64.b64encode(_joined(part, bitmaps)).decode("ascii")
            position = "CAST(file_row_number AS INTEGER)"
            if len(part) > 1:  # one bitmap for the files of the scan, each file's bits STRIDE apart
                position = f"CAST(file_index AS INTEGER) * {_stride(part)} + {position}"
            conditions.append(f"get_bit(from_base64('{bits}')::BIT, {position}) = 0")
        numbered = ", file_row_number = true" if any(b is not None for b in bitmaps) else ""
        files = literal(urls[0]) if len(urls) == 1 else f"[{', '.join(literal(u) for u in urls)}]"
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"SELECT {select} FROM read_parquet({files}{numbered}){where}"

    def restricted(self, ids: np.ndarray) -> ScanPlan:
        """This plan for only the rows whose _row_id is in `ids` (sorted, unique): a lookup by position (the change
        feed's old images), no join. Files holding none of them are not read."""
        ids = np.asarray(ids, dtype=np.int64)
        files = {s.file.source.url: s.file for s in self.slices}
        dead: dict[str, bytes] = {}
        for url, f in files.items():
            wanted = np.zeros(f.rows, dtype=bool)
            if f.inserts_only or f.source is self.snapshot:
                wanted[_positions(f, ids)] = True
            elif len(ids):
                rid = _change_rows(f)[0]
                wanted[ids[np.minimum(np.searchsorted(ids, rid), len(ids) - 1)] == rid] = True
            if url in self.dead:
                wanted &= ~_bits(self.dead[url], f.rows)
            if wanted.any():
                dead[url] = np.packbits(~wanted, bitorder="big").tobytes()
        slices = tuple(s for s in self.slices if s.file.source.url in dead)
        return ScanPlan(self.version, self.columns, self.snapshot, self.snapshot_version, slices, dead)

    def select_sql(self, columns=None, where: str | None = None, *, row_id: bool = False, version: bool = False) -> str:
        """The rows of this version in the table's row order, optionally projected and filtered."""
        wanted = [quote(c) for c in columns] if columns is not None else [quote(c.name) for c in self.columns]
        if not wanted:
            wanted = ["NULL AS _none"]
        wanted = ([ROW_ID] if row_id else []) + ([VERSION] if version else []) + wanted
        filter_ = f" WHERE ({where})" if where else ""
        return f"SELECT {', '.join(wanted)} FROM ({self.relation_sql(row_id=row_id, version=version)}) AS v{filter_}"


def _stride(part: Sequence[Slice]) -> int:
    return max(s.file.rows for s in part)


def _joined(part: Sequence[Slice], bitmaps: Sequence[bytes | None]) -> bytes:
    """The bitmaps of the files of one scan as one bitmap: file i's bit p at i * stride + p."""
    if len(part) == 1:
        return bitmaps[0]  # type: ignore[return-value]
    stride = _stride(part)
    bits = np.zeros(stride * len(part), dtype=bool)
    for i, (s, b) in enumerate(zip(part, bitmaps)):
        if b is not None:
            bits[i * stride : i * stride + s.file.rows] = _bits(b, s.file.rows)
    return np.packbits(bits, bitorder="big").tobytes()


def _same_columns(a: Source, b: Source) -> bool:
    """Whether two files can be read by one scan with one projection: the same columns, written alike."""
    return a.columns == b.columns and a.physical == b.physical


def _reads_per_file(slices: Sequence[Slice]) -> Counter[str]:
    """How many slices read each file (a file cut around a carried-over one is read in several)."""
    return Counter(s.file.source.url for s in slices)


def _grouped(slices: Sequence[Slice], dead: dict) -> list[list[Slice]]:
    """Consecutive slices that each read a whole file (no version filter), of the same columns, each file once,
    as one multi-file scan (DuckDB reads the files of a list in order)."""
    counts = _reads_per_file(slices)

    def joinable(s: Slice) -> bool:  # a big file scans alone: a position computed per row costs more than a scan
        return not s.ranged and s.file.version is None and counts[s.file.source.url] == 1 and (s.file.rows <= JOIN_MAX_ROWS or s.file.source.url not in dead)

    def fits(part: list[Slice], s: Slice) -> bool:  # the joined bitmap stays small: (files) * (largest file) bits
        return (len(part) + 1) * max(_stride(part), s.file.rows) <= JOIN_MAX_BITS

    parts: list[list[Slice]] = []
    for s in slices:
        last = parts[-1] if parts else None
        if last and joinable(s) and joinable(last[0]) and _same_columns(last[-1].file.source, s.file.source) and fits(last, s):  # a part grows by joinable slices only
            last.append(s)
        else:
            parts.append([s])
    return parts


# --- building a plan ------------------------------------------------------------------------------------------------


def build(version: int, columns: tuple[Column, ...], snapshot: File | None, snapshot_version: int, units: Sequence[tuple[int, int, Sequence[File]]], kind_of) -> ScanPlan:
    """The scan of `version` over `snapshot` (the rows of `snapshot_version`, or None) and `units` ((first, last,
    files) of the versions after it, in order). `kind_of(v)` says whether version v's own change file was
    insert-only (None if it wrote none); it is asked only where two files of a block could hold v's rows."""
    slices: list[Slice] = [Slice(snapshot, snapshot_version, snapshot_version)] if snapshot is not None else []
    lo = snapshot_version + 1
    for first, last, files in units:
        slices.extend(_slices(files, max(first, lo), min(last, version), kind_of))
    counts = _reads_per_file(slices)
    # a change file read in one slice has its rows outside lo..version marked dead instead of a version filter
    slices = [Slice(s.file, s.first, s.last, folded=not s.file.inserts_only and s.file is not snapshot and counts[s.file.source.url] == 1) for s in slices]
    files_read = list({s.file.source.url: s.file for s in slices}.values())
    dead = _dead_rows(files_read, snapshot, lo, version)
    slices = [s for s in slices if not _all_dead(s.file, dead)]  # e.g. a block of deletes: nothing to read
    return ScanPlan(version, columns, snapshot.source if snapshot else None, snapshot_version, tuple(slices), dead)


def _all_dead(f: File, dead: dict) -> bool:
    bits = dead.get(f.source.url)
    return bits is not None and bool(_bits(bits, f.rows).all())


def _slices(files: Sequence[File], first: int, last: int, kind_of) -> list[Slice]:
    """The files of one unit cut into slices of versions first..last, each version's rows from the one file that
    holds them: the narrowest file whose versions include it (a file a compaction carried over unchanged is
    narrower than the merged files around it), of the version's kind (insert-only or not) when two could; a
    version written as several files of its own (format 4) is read from each of them, in the order of their names."""
    if len(files) == 1:
        f = files[0]
        return [Slice(f, max(first, f.first), min(last, f.last))] if first <= last else []
    out: list[Slice] = []
    for v in range(first, last + 1):
        holding = [f for f in files if f.first <= v <= f.last]
        if len(holding) > 1:
            kind = kind_of(v)
            if kind is None:
                continue  # the version wrote no rows
            holding = [f for f in holding if f.inserts_only == kind] or holding
        if not holding:
            continue
        own = sorted((f for f in holding if f.first == f.last == v), key=lambda f: f.source.url)
        if len(own) > 1:  # a version written as several files (a distributed append, format 4): each, in name order
            out.extend(Slice(f, v, v) for f in own)
            continue
        f = min(holding, key=lambda f: f.last - f.first)
        if out and out[-1].file is f and out[-1].last == v - 1:
            out[-1] = Slice(f, out[-1].first, v)
        else:
            out.append(Slice(f, v, v))
    return out


def _dead_rows(files: Sequence[File], snapshot: File | None, lo: int, hi: int) -> dict:
    """Packed bitmaps of the dead positions of each file (see the module docstring), for the files that have any.
    Rows of a change file outside lo..hi are marked dead too. Cached per process by the files and the range."""
    key = (tuple(f.key for f in files), lo, hi)
    with _lock:
        if key in _plans:
            _plans.move_to_end(key)
            return _plans[key]
    dead = _compute_dead_rows(files, snapshot, lo, hi)
    if sum(len(b) for b in dead.values()) <= PLAN_CACHE_MAX_BYTES:
        with _lock:
            _plans[key] = dead
            while len(_plans) > PLANS_CACHED:
                _plans.popitem(last=False)
    return dead


def _compute_dead_rows(files: Sequence[File], snapshot: File | None, lo: int, hi: int) -> dict:
    changes = [f for f in files if not f.inserts_only and f is not snapshot]
    if not changes:
        return {}
    ids, versions, deletes, owners, positions = [], [], [], [], []
    outside: dict[int, np.ndarray] = {}
    for i, f in enumerate(changes):
        rid, ver, deleted = _change_rows(f)
        keep = (ver >= lo) & (ver <= hi)
        if not keep.all():
            outside[i] = np.flatnonzero(~keep)
        ids.append(rid[keep])
        versions.append(ver[keep])
        deletes.append(deleted[keep])
        owners.append(np.full(int(keep.sum()), i, dtype=np.int32))
        positions.append(np.flatnonzero(keep))
    rid, ver = np.concatenate(ids), np.concatenate(versions)
    order = np.lexsort((ver, rid))
    ordered = rid[order]
    newest = np.ones(len(order), dtype=bool)
    newest[:-1] = ordered[1:] != ordered[:-1]
    dead = np.ones(len(order), dtype=bool)
    dead[order[newest]] = False
    dead |= np.concatenate(deletes)
    owner, position = np.concatenate(owners), np.concatenate(positions)
    marks: dict[str, np.ndarray] = {}
    for i, f in enumerate(changes):
        hit = position[dead & (owner == i)]
        if i in outside:
            hit = np.concatenate([hit, outside[i]])
        if len(hit):
            marks[f.source.url] = hit
    changed = ordered[newest]  # every row id changed in lo..hi, sorted
    for f in files:
        if (f.inserts_only or f is snapshot) and len(changed):
            hit = _positions(f, changed)
            if len(hit):
                marks[f.source.url] = hit
    rows = {f.source.url: f.rows for f in files}
    return {url: _bitmap(rows[url], hit) for url, hit in marks.items()}


def _change_rows(f: File) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The _row_id, _version and "is a delete" of every row of a change file, in file order (cached)."""
    return change_rows(f.source.url, f.key)


def change_rows(url: str, key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The _row_id, _version and "is a delete" of every row of the change file at `url`, in file order, cached per
    process by `key` (the file's identity: store, path, size, SHA-256; planner._identity)."""

    def load():
        # not read_table: no pyarrow.dataset (its import and its set-up per call); _op as a dictionary: "is a
        # delete" is one comparison of its small integer codes
        t = pq.ParquetFile(url, read_dictionary=[OP]).read(columns=[ROW_ID, VERSION, OP])
        return integers(t.column(ROW_ID)), integers(t.column(VERSION)), equals(t.column(OP), DELETE)

    return _cached(("changes",) + key, load, url)


# Arrow to numpy through the arrays' buffers: pyarrow's own conversions (to_numpy, np.asarray, pa.array of numpy
# values, Python scalars in compute calls) import pandas on their first use (pyarrow's pandas shim), 0.3-0.5 s that
# a CLI read would pay for nothing (tests/test_cli_imports.py).


def integers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An integer column without NULLs as one numpy array (a view of its buffer when it has one chunk); ValueError
    for NULLs or a non-integer type (a damaged file: the caller reports it)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = []
    for chunk in chunks:
        if not pa.types.is_integer(chunk.type):
            raise ValueError(f"expected integers, found {chunk.type}")
        if chunk.null_count:
            raise ValueError(f"{chunk.null_count} NULL values where integers are expected")
        if len(chunk):
            parts.append(_codes(chunk))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def equals(column: pa.ChunkedArray, value: str) -> np.ndarray:
    """Whether each value of a dictionary-encoded string column is `value` (NULL: False), as numpy bools."""
    parts = []
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type):
            raise ValueError(f"expected a dictionary-encoded column, found {chunk.type}")
        codes = [i for i, v in enumerate(chunk.dictionary.to_pylist()) if v == value]
        hit = np.isin(_codes(chunk.indices), codes) if codes else np.zeros(len(chunk), dtype=bool)
        if chunk.null_count:
            hit &= _valid(chunk)
        parts.append(hit)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _codes(indices: pa.Array) -> np.ndarray:
    """An integer array's values as a numpy view of its buffer (a dictionary's indices, or a column's values; slots
    of NULLs hold arbitrary values: mask them with _valid)."""
    dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(indices.type) else 'u'}{indices.type.bit_width // 8}")
    data = indices.buffers()[1]
    if data is None or not len(indices):
        return np.zeros(len(indices), dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(indices), offset=indices.offset * dtype.itemsize)


def _valid(chunk: pa.Array) -> np.ndarray:
    """The validity bitmap of an array as one bool per value."""
    bits = np.frombuffer(chunk.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little", count=chunk.offset + len(chunk))[chunk.offset :].astype(bool)


def _bitmap(rows: int, positions: np.ndarray) -> bytes:
    bits = np.zeros(rows, dtype=bool)
    bits[positions] = True
    return np.packbits(bits, bitorder="big").tobytes()


def _bits(bitmap: bytes, rows: int) -> np.ndarray:
    """A packed bitmap (_bitmap) back as one bool per row."""
    return np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=rows).astype(bool)


def _positions(f: File, ids: np.ndarray) -> np.ndarray:
    """The positions in file `f` of those of the sorted row ids `ids` that it holds."""
    found = _row_ids(f)
    if not isinstance(found[0], np.ndarray):  # dense: ids start..start+count-1 at positions 0..count-1
        start, count = found
        inside = ids[(ids >= start) & (ids < start + count)]
        return inside - start
    sorted_ids, order = found
    at = np.searchsorted(sorted_ids, ids)
    inside = at < len(sorted_ids)
    at, wanted = at[inside], ids[inside]
    at = at[sorted_ids[at] == wanted]
    return at if order is None else order[at]


PLANS_CACHED = 16  # dead-row bitmaps of the last plans read, per process ...
PLAN_CACHE_MAX_BYTES = 8 << 20  # ... each at most this big (a bit per row of the files it reads)
_cache: OrderedDict = OrderedDict()  # (kind, file identity) -> arrays derived from the file's bytes
_cache_bytes = 0
_plans: OrderedDict = OrderedDict()
_lock = threading.Lock()


class Unreadable(Exception):
    """A file a plan reads by position cannot be read as Parquet (planner.scan_plan skips a snapshot that is, and
    reports a change file as damaged)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


def _cached(key: tuple, load, url: str):
    """load(), cached per process by `key` (a file's identity: its bytes never change), within CACHE_MAX_BYTES;
    Unreadable if the file at `url` cannot be read."""
    global _cache_bytes
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        value = load()
    except (pa.ArrowException, OSError, ValueError, KeyError) as e:
        raise Unreadable(url, str(e).splitlines()[0] if str(e) else type(e).__name__) from e
    size = _nbytes(value)
    with _lock:
        _cache[key] = value
        _cache_bytes += size
        while _cache_bytes > CACHE_MAX_BYTES and len(_cache) > 1:
            _, old = _cache.popitem(last=False)
            _cache_bytes -= _nbytes(old)
    return value


def _nbytes(value) -> int:
    return sum(v.nbytes for v in value if isinstance(v, np.ndarray))


def _row_ids(f: File):
    """(start, count) when the file's row ids are start..start+count-1 in order, else (sorted ids, the position of
    each sorted id in the file, or None when the file is sorted). Cached per process by the file's identity."""

    def load():
        dense = _dense_from_statistics(f) if f.inserts_only else None  # only insert-only files are sorted by row id
        if dense is not None:
            return dense
        ids = integers(pq.ParquetFile(f.source.url).read(columns=[ROW_ID]).column(ROW_ID))
        if len(ids) and ids[-1] - ids[0] + 1 == len(ids) and bool(np.all(np.diff(ids) == 1)):
            return (int(ids[0]), len(ids))
        if bool(np.all(ids[1:] > ids[:-1])):
            return (ids, None)
        order = np.argsort(ids, kind="stable")
        return (ids[order], order)

    return _cached(("ids",) + f.key, load, f.source.url)


def _dense_from_statistics(f: File) -> tuple[int, int] | None:
    """(first id, rows) if the Parquet statistics prove the file's row ids are consecutive and in order: the
    minimum and maximum of every row group follow on from the previous one's and span exactly its rows."""
    meta = pq.ParquetFile(f.source.url).metadata
    index = meta.schema.names.index(ROW_ID) if ROW_ID in meta.schema.names else None
    if index is None or meta.num_row_groups == 0:
        return None
    start = expected = None
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        stats = group.column(index).statistics
        if stats is None or not stats.has_min_max or stats.null_count:
            return None
        if expected is not None and stats.min != expected:
            return None
        if stats.max - stats.min + 1 != group.num_rows:
            return None
        start = stats.min if start is None else start
        expected = stats.max + 1
    return int(start), meta.num_rows  # type: ignore[arg-type]


def forget() -> None:
    """Drop the caches (tests)."""
    global _cache_bytes
    with _lock:
        _cache.clear()
        _plans.clear()
        _cache_bytes = 0


def file_span(path: str) -> tuple[int, int] | None:
    """The versions the rows of a change or compacted file (a path relative to the table directory) may have."""
    if path.startswith(layout.COMPACTED_DATA_DIR + "/"):
        return layout.compacted_block(path)
    v = layout.file_version(path)
    return None if v is None else (v, v)
