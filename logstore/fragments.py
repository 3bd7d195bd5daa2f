"""A version cut into independent, picklable shares for distributed engines: Table.fragments, to_dask, to_ray.

The driver plans the version once (planner.scan_plan: the files it needs cut into slices, the dead rows of each
file as a bitmap, scan.py) and cuts the plan into Fragments. A Fragment holds everything its read needs and nothing
that lives in the driver's process: the store's location and storage options, the table, the version and its
columns, and its *pieces*. A piece is a range of rows of one file of the plan (store path, size and SHA-256, the
columns the file holds, the versions to keep when the file holds others too) with the bits of the dead-row bitmap
for that range only. Large files are cut at row-group boundaries (DuckDB skips the other row groups by their
`file_row_number`), consecutive small pieces share a fragment, up to `rows_per_fragment` rows scanned.

A worker reads a fragment on its own: it opens the store (once per process), checks each file against its size
and SHA-256 (integrity.py; an object store's file is fetched into the local cache first), and runs
`SELECT ... FROM read_parquet(file, file_row_number = true) WHERE <row range> AND <version range> AND <not dead>`
for each piece, UNION ALL in piece order. The fragments of a version, in order, are exactly its rows in the table's
row order, each row in one fragment. A file gone since planning (vacuum) raises VersionFilesGoneError.

to_dask builds a dask DataFrame with one partition per fragment (dask.dataframe.from_map; the meta comes from
the version's schema, no rows read); to_ray a ray Dataset from a Datasource with one read task per fragment.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import evolution, integrity, layout, planner
from .errors import InvalidInputError, SchemaMismatchError, VersionFilesGoneError
from .materialize import _project
from .scan import ScanPlan, Slice, _bits
from .schema import Column, arrow_schema, literal, quote

if TYPE_CHECKING:
    import dask.dataframe
    import ray.data

    from .store import Store
    from .table import Columns, Table

ROWS_PER_FRAGMENT = 1 << 20  # rows scanned by one fragment, by default


@dataclass(frozen=True)
class Piece:
    """Rows start..stop-1 of one file of a version's plan."""

    path: str  # relative to the store root
    size: int
    sha256: str
    held: frozenset[str]  # the columns the file has
    start: int
    stop: int
    whole: bool  # the piece is the whole file (no row range to filter)
    versions: tuple[int, int] | None  # keep only rows of these versions (first, last); None: all rows
    fixed_version: int | None  # a snapshot without _version: the version of all its rows
    dead: bytes | None  # packed bits of the dead rows among start..stop-1 (None: none dead)
    # the SQL of the version's columns the file holds under another name or type, or not at all (evolution.special):
    # a file written before a rename, a widening or a drop is read by column identity, as the scan plan reads it
    mapped: tuple[tuple[str, str], ...] = ()
    # the file's tag (storage.stat) when the driver's plan checked its SHA-256 (integrity.verified_tag): a worker
    # that finds the file with this size and tag reads the bytes the driver hashed and does not hash them again
    tag: str | None = None

    def sql(self, url: str, columns: tuple[Column, ...]) -> str:
        conditions = []
        if self.versions is not None:
            conditions.append(f"_version BETWEEN {self.versions[0]} AND {self.versions[1]}")
        if not self.whole:
            conditions.append(f"file_row_number >= {self.start} AND file_row_number < {self.stop}")
        if self.dead is not None:
            bits = base64.b64encode(self.dead).decode("ascii")
            conditions.append(f"get_bit(from_base64('{bits}')::BIT, CAST(file_row_number - {self.start} AS INTEGER)) = 0")
        numbered = ", file_row_number = true" if not self.whole or self.dead is not None else ""
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"SELECT {_project(columns, self.held, self.mapped)} FROM read_parquet({literal(url)}{numbered}){where}"


@dataclass(frozen=True)
class Fragment:
    """A share of one version of a table that reads on its own, in any process that can reach the store."""

    location: str
    storage_options: tuple[tuple[str, Any], ...]
    table: str
    version: int
    columns: tuple[Column, ...]  # the version's columns
    selected: tuple[str, ...] | None  # the columns to return (None: all)
    pieces: tuple[Piece, ...]

    def __repr__(self) -> str:
        return f"<logstore.Fragment {self.table!r} version {self.version}: {len(self.pieces)} pieces, {self.rows_scanned} rows scanned>"

    @property
    def rows_scanned(self) -> int:
        """Rows of files this fragment scans (its rows, and the dead rows among them it skips)."""
        return sum(p.stop - p.start for p in self.pieces)

    @property
    def schema(self) -> pa.Schema:
        wanted = self.selected if self.selected is not None else tuple(c.name for c in self.columns)
        full = arrow_schema(self.columns)
        return pa.schema([full.field(n) for n in wanted])

    def to_arrow(self) -> pa.Table:
        """This fragment's rows as a pyarrow Table, in the table's row order."""
        return pa.Table.from_batches(list(self.to_batches(batch_size=1 << 20)), schema=self.schema)

    def to_batches(self, *, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        """This fragment's rows as record batches of at most `batch_size` rows."""
        from .stream import _batch_rows

        rows = _batch_rows(batch_size)
        if not self.pieces or not self.columns:
            return
        store = _store(self.location, self.storage_options)
        urls = _fetched(store, self)
        parts = " UNION ALL ".join(f"({p.sql(urls[p.path], self.columns)})" for p in self.pieces)
        wanted = ", ".join(quote(n) for n in (self.selected or [c.name for c in self.columns]))
        cursor = store._connection().cursor()
        try:
            reader = cursor.sql(f"SELECT {wanted} FROM ({parts}) AS v").to_arrow_reader(rows)
            yield from reader
        finally:
            cursor.close()

    def to_pandas(self) -> Any:
        """This fragment's rows as a pandas DataFrame of Arrow-backed columns (pandas.ArrowDtype)."""
        import pandas

        return self.to_arrow().to_pandas(types_mapper=pandas.ArrowDtype)


_stores: dict[tuple, Store] = {}
_stores_lock = threading.Lock()


def _store(location: str, options: tuple[tuple[str, Any], ...]) -> Store:
    """The store at `location`, opened once per process."""
    from .store import open as open_store

    key = (location, options)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = open_store(location, storage_options=dict(options) or None)
        return _stores[key]


def _fetched(store: Store, fragment: Fragment) -> dict[str, str]:
    """Local paths DuckDB can read for the files of `fragment`, each checked against its size and digest; a file
    gone since the plan was made raises VersionFilesGoneError."""
    storage = store._storage
    paths = {p.path: p for p in fragment.pieces}
    prefix = layout.table_dir(fragment.table) + "/"
    present = [p for p in paths if storage.exists(p)]
    gone = next((p for p in paths if p not in present), None)
    if gone is not None:
        raise VersionFilesGoneError(fragment.table, fragment.version, gone.removeprefix(prefix), "file is missing")
    storage.prefetch(present)
    for path, piece in paths.items():
        if piece.tag is not None:
            integrity.remember(storage, path, piece.size, piece.sha256, piece.tag)
        integrity.check_file(storage, path, piece.size, piece.sha256, fragment.version, what=f"file (needed by version {fragment.version})", shown=path.removeprefix(prefix))
    return {p: storage.url(p) for p in paths}


# --- cutting a plan into fragments -----------------------------------------------------------------------------------


def fragments(table: Table, version: int, *, columns: Columns = None, rows_per_fragment: int | None = None) -> list[Fragment]:
    """The fragments of `version` of `table`: together exactly its rows, in order, each in one fragment."""
    target = _target(rows_per_fragment)
    files = table._files
    plan = planner.checked_plan(files, version, build=planner.scan_plan)
    selected = _selected(plan, columns)
    store = table._store
    options = tuple(sorted(store._storage_options.items()))
    location = _location(store)
    groups: list[list[Piece]] = []
    scanned = 0
    tags: dict[str, str | None] = {}
    for piece in (p for s in plan.slices for p in _pieces(plan, s, target)):
        if piece.path not in tags:  # the plan has just checked the file: its tag then, once per file
            tags[piece.path] = integrity.verified_tag(store._storage, piece.path, piece.size, piece.sha256)
        piece = replace(piece, tag=tags[piece.path])
        if groups and scanned + (piece.stop - piece.start) <= target:
            groups[-1].append(piece)
            scanned += piece.stop - piece.start
        else:
            groups.append([piece])
            scanned = piece.stop - piece.start
    made = [Fragment(location, options, table.name, version, plan.columns, selected, tuple(g)) for g in groups]
    return made or [Fragment(location, options, table.name, version, plan.columns, selected, ())]


def _location(store: Store) -> str:
    """Where a worker opens the store: an absolute path for a local store (workers may run elsewhere than ".")."""
    root = getattr(store._storage, "root", None)
    return str(root.resolve()) if root is not None and hasattr(root, "resolve") else store.path


def _target(rows_per_fragment: int | None) -> int:
    if rows_per_fragment is None:
        return ROWS_PER_FRAGMENT
    if isinstance(rows_per_fragment, bool) or not isinstance(rows_per_fragment, int) or rows_per_fragment < 1:
        raise InvalidInputError(rows_per_fragment, f"rows_per_fragment must be a positive number of rows, not {rows_per_fragment!r}")
    return rows_per_fragment


def _selected(plan: ScanPlan, columns: Columns) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns) or not columns:
        raise InvalidInputError(columns, f"columns must be a non-empty list of column names, not {columns!r}")
    known = [c.name for c in plan.columns]
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise SchemaMismatchError([f"unknown column {c!r} (version {plan.version} has {', '.join(known)})" for c in unknown])
    return tuple(columns)


def _pieces(plan: ScanPlan, s: Slice, target: int) -> list[Piece]:
    """Slice `s` as pieces of at most about `target` rows each, cut at row-group boundaries."""
    f = s.file
    _, path, size, sha256 = f.key
    bitmap = plan.dead.get(f.source.url)
    bits = _bits(bitmap, f.rows) if bitmap is not None else None
    versions = (s.first, s.last) if s.ranged else None
    mapped = evolution.special(plan.columns, f.source.columns, f.source.physical)
    out = []
    for start, stop in _ranges(f.source.url, f.rows, target):
        dead = None
        if bits is not None and bits[start:stop].any():
            if bits[start:stop].all():
                continue  # nothing alive here
            dead = np.packbits(bits[start:stop], bitorder="big").tobytes()
        whole = start == 0 and stop == f.rows
        out.append(Piece(path, size, sha256, f.source.columns, start, stop, whole, versions, f.version, dead, mapped))
    return out


def _ranges(url: str, rows: int, target: int) -> list[tuple[int, int]]:
    """Row ranges of the file covering its rows, each of whole row groups, at most `target` rows unless one group
    alone holds more (one range if the file is small)."""
    if rows <= target:
        return [(0, rows)]
    meta = pq.ParquetFile(url).metadata
    ranges: list[tuple[int, int]] = []
    start = position = 0
    for g in range(meta.num_row_groups):
        size = meta.row_group(g).num_rows
        if position > start and position + size - start > target:  # the group would overfill this range
            ranges.append((start, position))
            start = position
        position += size
    if start < position:
        ranges.append((start, position))
    return ranges


# --- dask and ray ---------------------------------------------------------------------------------------------------


def _read_pandas(fragment: Fragment) -> Any:
    return fragment.to_pandas()


def to_dask(made: Sequence[Fragment]) -> dask.dataframe.DataFrame:
    """A dask DataFrame with one partition per fragment; its meta from the schema (no rows read here)."""
    try:
        import dask.dataframe as dd
        import pandas
    except ImportError as e:
        raise ImportError("to_dask needs dask: pip install 'logstore[dask]'") from e
    meta = made[0].schema.empty_table().to_pandas(types_mapper=pandas.ArrowDtype)
    return dd.from_map(_read_pandas, list(made), meta=meta, enforce_metadata=False)


def to_ray(made: Sequence[Fragment]) -> ray.data.Dataset:
    """A ray Dataset with one read task per fragment; the driver reads no rows."""
    try:
        import ray.data
    except ImportError as e:
        raise ImportError("to_ray needs ray: pip install 'logstore[ray]'") from e
    return ray.data.read_datasource(_datasource(list(made)), override_num_blocks=len(made))


def _datasource(made: list[Fragment]) -> Any:
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class FragmentSource(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None) -> list[ReadTask]:
            tasks = []
            for fragment in made:
                meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=tuple(p.path for p in fragment.pieces))
                tasks.append(ReadTask(_reading(fragment), meta, schema=fragment.schema))
            return tasks

    return FragmentSource()


def _reading(fragment: Fragment):
    def read() -> list[pa.Table]:
        return [fragment.to_arrow()]

    return read
