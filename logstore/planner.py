"""Planning "the table as of version v": which files materialize.py's Plan reads, and reading around damage.

Every read of a version plans here: Table.read/to_pandas/to_polars (`read`), lazy relations and SQL views
(`checked_plan`), the writer's head (`checked_plan`, `plan_over` over its decoded cache), the change feed's lookup
of old images (`lookup_plan`, `retry`) and verify (`plan`). They work on a TableFiles, the small typed context of one table,
never on the Table itself.

    plan(files, v)               the newest usable snapshot at or below v (snapshot.py), then the change files of the
                                 versions after it: compacted blocks where compaction.py has them, each version's own
                                 files otherwise, each checked against its recorded size and SHA-256 (integrity.py)
    plan_over(files, v, base, s) the same over `base`, a source holding the rows of version s
    retry(files, attempt)        the one "retry without the damaged snapshot" loop: when DuckDB fails on the
                                 snapshot of the plan an attempt ran over, warn and attempt again without that
                                 snapshot (reading its versions from the log); a change file at fault raises
                                 CorruptionError naming it
    read(files, v, run)          run(plan of v) through retry
    checked_plan(files, v)       a plan whose snapshot DuckDB can open (for what has no retry of its own)
    select_sql(files, plan, columns, where)   a read's SQL, its columns and predicate checked first
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import duckdb

from . import compaction, evolution, expressions, integrity, layout, scan, snapshot
from .errors import CorruptionError, InvalidInputError, SchemaMismatchError
from .materialize import Plan, Source
from .scan import ScanPlan

if TYPE_CHECKING:
    from .log import Log
    from .object_storage import ObjectStorage
    from .storage import LocalStorage
    from .tags import Tags

T = TypeVar("T")
P = TypeVar("P", Plan, ScanPlan)


@dataclass(frozen=True)
class TableFiles:
    """One table as its readers see it: where its files are, its log and tags, and the DuckDB connection to read
    them with. Built by Table (`Table._files`); the planner, selectors, the change feed, SQL, the head cache, lazy
    relations, info, verify, vacuum, repair, compaction and commit.py's publishing take this instead of the Table."""

    name: str
    storage: LocalStorage | ObjectStorage
    prefix: str  # the table's directory, relative to the store root
    log: Log
    tags: Tags
    connection: Callable[[], duckdb.DuckDBPyConnection]  # the store's connection of the calling thread

    def path(self, relative: str) -> str:
        """A path relative to the table's directory (as records store them), relative to the store root."""
        return layout.join(self.prefix, relative)

    def url(self, relative: str) -> str:
        """What DuckDB opens for a path relative to the table's directory."""
        return self.storage.url(self.path(relative))


class Attempt(NamedTuple):
    """What `retry` runs: the plan it reads through (None if it reads no snapshot) and the work itself."""

    plan: Plan | ScanPlan | None
    run: Callable[[], object]


def plan(files: TableFiles, version: int, *, exclude: frozenset[int] = frozenset()) -> Plan:
    """The plan of `version` over the newest usable snapshot at or below it (skipping the versions in `exclude`)."""
    _readable(files, version)
    snap = snapshot.usable_at_or_below(files.storage, files.prefix, version, exclude=exclude)
    if snap is None:
        return plan_over(files, version, None, -1)
    return plan_over(files, version, _snapshot_source(files, snap), snap.version)


def plan_over(files: TableFiles, version: int, base: Source | None, start: int) -> Plan:
    """The plan of `version` over `base` (the rows of version `start`: a snapshot or the writer's head cache)."""
    record = files.log.read(version)
    inserts: list[Source] = []
    changes: list[Source] = []
    for unit in _checked_units(files, start, version):
        for held in unit.files:
            source = _source(files, unit, held)
            (inserts if held.file.inserts_only else changes).append(source)
    return Plan(version, record.columns, base, start, tuple(inserts), tuple(changes))


def _source(files: TableFiles, unit: compaction.Unit, held: compaction.CompactedFile) -> Source:
    """A change file or compacted file of `unit`, with the columns it was written with (evolution.py)."""
    physical = evolution.layout(files.log, unit.first, unit.last, held.columns)
    return Source(files.url(held.file.path), held.columns, physical=physical)


def _snapshot_source(files: TableFiles, snap) -> Source:
    """A snapshot, written in the columns of its version."""
    return Source(files.url(snap.path), frozenset(snap.columns), physical=files.log.read(snap.version).columns)


def _checked_units(files: TableFiles, start: int, version: int) -> list[compaction.Unit]:
    """The units (compacted blocks, else each version's files) standing for versions start+1..version, their files
    fetched and checked against their recorded size and SHA-256."""
    head = max(version, files.log.known_head or version)
    units = compaction.cover(files.log, start + 1, version, head)
    files.storage.prefetch([files.path(held.file.path) for unit in units for held in unit.files])  # in parallel
    for unit in units:
        for held in unit.files:
            f, v = held.file, unit.last if unit.compaction is None else None
            integrity.check_file(files.storage, files.path(f.path), f.size, f.sha256, v, what=f"change file (needed by version {version})")
    return units


def scan_plan(files: TableFiles, version: int, *, exclude: frozenset[int] = frozenset()) -> ScanPlan:
    """The order-preserving read of `version` (scan.py) over the newest usable snapshot at or below it that holds
    its rows in the table's row order (format 3, or a reset restore's, whose rows one version wrote)."""
    _readable(files, version)

    snap = snapshot.usable_at_or_below(files.storage, files.prefix, version, exclude=exclude, accept=lambda r: snapshot.in_row_order(r, files.log))
    base, start = None, -1
    if snap is not None:
        start = snap.version
        source = _snapshot_source(files, snap)
        base = scan.File(source, snap.rows, start, start, False, _identity(files, snap.path, snap.size, snap.sha256), None if snap.ordered else start)
    units = []
    for unit in _checked_units(files, start, version):
        held = []
        for f in unit.files:
            span = scan.file_span(f.file.path) or (unit.first, unit.last)
            source = _source(files, unit, f)
            held.append(scan.File(source, f.file.rows, span[0], span[1], f.file.inserts_only, _identity(files, f.file.path, f.file.size, f.file.sha256)))
        units.append((unit.first, unit.last, held))

    def kind_of(v: int) -> bool | None:
        own = files.log.read(v).files
        return own[0].inserts_only if own else None

    try:
        return scan.build(version, files.log.read(version).columns, base, start, units, kind_of)
    except scan.Unreadable as e:
        return scan_plan(files, version, exclude=exclude | {_skipped(files, version, start, base.source.url if base else None, e)})


def _readable(files: TableFiles, version: int) -> None:
    """Before planning: finish an interrupted purge (purge.settle); VersionExpiredError for an expired version."""
    from . import expiry, purge

    purge.settle(files)
    expiry.check(files, version)


def lookup_plan(files: TableFiles, version: int, ids, *, exclude: frozenset[int] = frozenset()) -> ScanPlan:
    """scan_plan(files, version) restricted to the rows whose _row_id is in `ids` (sorted), by position
    (ScanPlan.restricted: the change feed's old images); a snapshot found unreadable is skipped as scan_plan does."""
    planned = scan_plan(files, version, exclude=exclude)
    try:
        return planned.restricted(ids)
    except scan.Unreadable as e:
        skipped = _skipped(files, version, planned.snapshot_version, planned.snapshot.url if planned.snapshot else None, e)
        return lookup_plan(files, version, ids, exclude=exclude | {skipped})


def _skipped(files: TableFiles, version: int, snapshot_version: int, snapshot_url: str | None, error: scan.Unreadable) -> int:
    """A file found unreadable by position, before DuckDB reads it, handled as blame() handles DuckDB's failures:
    the snapshot's version to skip (with a warning) if it was the snapshot, else CorruptionError naming the file."""
    if error.url == snapshot_url:
        warnings.warn(f"logstore: snapshot of version {snapshot_version} is unreadable, reading from the log instead: {error.reason}", RuntimeWarning, stacklevel=3)
        return snapshot_version
    relative = files.storage.stored_path(error.url).removeprefix(files.prefix + "/")
    raise CorruptionError(relative, version, error.reason) from None


def _identity(files: TableFiles, relative: str, size: int, sha256: str) -> tuple:
    return (files.storage.location, files.path(relative), size, sha256)


def blame(files: TableFiles, plan: Plan | ScanPlan, error: Exception) -> int | None:
    """After a failed read: the snapshot version to skip if the snapshot was at fault; raise if a change file was."""
    text = str(error)
    if plan.snapshot is not None and plan.snapshot.url in text:
        warnings.warn(f"logstore: snapshot of version {plan.snapshot_version} is unreadable, reading from the log instead: {text.splitlines()[0]}", RuntimeWarning, stacklevel=4)
        return plan.snapshot_version
    for source in plan.sources():
        if source is plan.snapshot:
            continue
        if source.url in text:
            relative = files.storage.stored_path(source.url).removeprefix(files.prefix + "/")
            raise CorruptionError(relative, plan.version, text.splitlines()[0]) from None
    return None


def retry(files: TableFiles, attempt: Callable[[frozenset[int]], Attempt]) -> T:
    """Run `attempt(exclude)`; when DuckDB fails on the snapshot of its plan, warn and attempt again with that snapshot
    in `exclude`. An error that no snapshot explains is raised (CorruptionError when a change file of the plan is at
    fault)."""
    excluded: set[int] = set()
    while True:
        planned, run = attempt(frozenset(excluded))
        try:
            return run()
        except duckdb.Error as e:
            damaged = blame(files, planned, e) if planned is not None else None
            if damaged is None:
                raise
            excluded.add(damaged)


def read(files: TableFiles, version: int, run: Callable[[P], T], *, build: Callable[..., P] = plan) -> T:  # type: ignore[assignment]
    """`run(plan)` over the plan of `version` (`build`: the join plan, or scan_plan for reads in row order), again
    over a plan without its snapshot if DuckDB fails on that."""

    def attempt(exclude: frozenset[int]) -> Attempt:
        planned = build(files, version, exclude=exclude)
        return Attempt(planned, lambda: run(planned))

    return retry(files, attempt)


def checked_plan(files: TableFiles, version: int, *, build: Callable[..., P] = plan) -> P:  # type: ignore[assignment]
    """A plan whose snapshot DuckDB can open (for writes, lazy relations and SQL views, which have no retry when
    their rows are fetched). A snapshot whose Parquet footer cannot be read is skipped with a RuntimeWarning, as
    reads skip it."""

    def opened(planned: P) -> P:
        if planned.snapshot is not None:
            url = planned.snapshot.url.replace("'", "''")
            files.connection().sql(f"SELECT count(*) FROM read_parquet('{url}')").fetchall()
        return planned

    return read(files, version, opened, build=build)


def select_sql(files: TableFiles, plan: Plan | ScanPlan, columns=None, where: str | None = None) -> str:
    """The SQL of a read of `plan`: `columns` (None: all) of the rows matching `where`, in the table's row order; the
    column names and the predicate are checked against the version's columns first."""
    if columns is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise InvalidInputError(columns, f"columns must be a list of column names, not {columns!r}")
        if not columns:
            raise InvalidInputError(columns, "columns must name at least one column (or be None for all)")
        known = [c.name for c in plan.columns]
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise SchemaMismatchError([f"unknown column {c!r} (version {plan.version} has {', '.join(known)})" for c in unknown])
    if where is not None:
        expressions.check(files.connection(), where, plan.columns, kind="predicate")
    return plan.select_sql(columns, where)
