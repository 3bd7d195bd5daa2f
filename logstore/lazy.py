"""Lazy reads of a version (Table.to_duckdb, Table.scan_polars) that report files gone as VersionFilesGoneError.

A lazy relation is a plan over the Parquet files one version needs, run each time its rows are fetched. Vacuum may
remove some of those files in between (change files a compaction replaced, a snapshot a newer one made redundant,
once older than vacuum's minimum age), and DuckDB then raises IOException ("No files found that match the
pattern ..."). Here a DuckDB error raised while a file of the plan is missing becomes VersionFilesGoneError, naming
the table, the version and the file: reading the version again makes a plan over the files it needs now.

to_duckdb returns a real duckdb.DuckDBPyRelation (it composes with everything DuckDB offers). DuckDB 2's relation is
a Python class with __slots__, so the relation's class is switched to PlannedRelation, a subclass without state of
its own: its methods translate the error (fetchall, df, pl, to_arrow_table, ...), and the relations derived from it
(filter, limit, aggregate, join, ...) are PlannedRelations over the same plan. The plan's files are kept in a weak map
beside the relation. Not translated: failures while reading a stream already open (to_arrow_reader(), iter_rows())
and SQL text that reads the relation by name (con.sql("... FROM rel")). Where the class cannot be switched (a DuckDB
whose relation is a C++ type) the plain relation is returned.

scan_polars returns a polars LazyFrame over a polars IO source that collects DuckDB's own LazyFrame of the relation
with the projection, predicate and row limit polars hands the source, so they still reach the Parquet scans; polars
re-raises the exception an IO source raised, so collect() raises VersionFilesGoneError itself.
"""

from __future__ import annotations

import functools
import os
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from .errors import VersionFilesGoneError, first_line

if TYPE_CHECKING:
    import polars

    from .materialize import Plan
    from .planner import TableFiles
    from .scan import ScanPlan


@dataclass(frozen=True)
class PlanFiles:
    """The files a lazy read of `version` of `table` was planned over: the local files DuckDB opens (on disk, or
    an object store's cached copies), and the storage that names them."""

    table: str
    version: int
    files: TableFiles
    paths: tuple[str, ...]

    @classmethod
    def of(cls, files: TableFiles, plan: Plan | ScanPlan) -> PlanFiles:
        return cls(files.name, plan.version, files, tuple(s.url for s in plan.sources() if not s.table))

    def gone(self, error: Exception) -> VersionFilesGoneError | None:
        """The error to raise instead of `error`, if a file of the plan is missing now."""
        missing = next((p for p in self.paths if not os.path.exists(p)), None)
        if missing is None:
            return None
        reason = first_line(error)
        relative = self.files.storage.stored_path(missing).removeprefix(self.files.prefix + "/")
        return VersionFilesGoneError(self.table, self.version, relative, reason)


_planned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # relation -> PlanFiles


def relation(rel: duckdb.DuckDBPyRelation, files: PlanFiles) -> duckdb.DuckDBPyRelation:
    """`rel`, made a PlannedRelation over `files` where DuckDB allows it."""
    if PlannedRelation is None or not isinstance(rel, duckdb.DuckDBPyRelation):
        return rel
    try:
        rel.__class__ = PlannedRelation
    except TypeError:  # a relation type whose instances cannot change class
        return rel
    _planned[rel] = files
    return rel


def lazy_frame(rel: duckdb.DuckDBPyRelation, files: PlanFiles | None) -> polars.LazyFrame:
    """A polars LazyFrame over `rel` whose collect raises VersionFilesGoneError when files of the plan are gone."""
    from polars.io.plugins import register_io_source

    # DuckDB's own polars source: it turns the projection and predicate polars asks for into SQL
    inner = _translated(files, duckdb.DuckDBPyRelation.pl, rel, lazy=True)

    def source(with_columns, predicate, n_rows, batch_size):
        frame = inner if with_columns is None else inner.select(with_columns)
        frame = frame if predicate is None else frame.filter(predicate)
        frame = frame if n_rows is None else frame.head(n_rows)
        yield _translated(files, frame.collect)

    return register_io_source(source, schema=inner.collect_schema(), is_pure=True)


def _translated(files: PlanFiles | None, call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except duckdb.Error as e:
        gone = files.gone(e) if files is not None else None
        if gone is None:
            raise
        raise gone from None


def _planned_method(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        files = _planned.get(self)
        result = _translated(files, method, self, *args, **kwargs)
        return relation(result, files) if files is not None and isinstance(result, duckdb.DuckDBPyRelation) else result

    return call


_DUNDERS = ("__len__", "__getattr__", "__getitem__", "__arrow_c_stream__", "__str__", "__repr__", "_repr_mimebundle_")


def _planned_class():
    """PlannedRelation: DuckDBPyRelation with every public method (and property) wrapped by _planned_method."""
    try:
        namespace = {"__slots__": (), "__doc__": "A DuckDB relation over a version's plan (see logstore/lazy.py)."}
        cls = type("PlannedRelation", (duckdb.DuckDBPyRelation,), namespace)
    except TypeError:  # the relation type cannot be subclassed
        return None
    for name, member in vars(duckdb.DuckDBPyRelation).items():
        if (name.startswith("_") and name not in _DUNDERS) or name == "pl":
            continue
        if isinstance(member, property) and member.fget is not None:
            setattr(cls, name, property(_planned_method(member.fget), doc=member.__doc__))
        elif callable(member) and not isinstance(member, (type, staticmethod, classmethod)):
            setattr(cls, name, _planned_method(member))
    cls.pl = _planned_pl
    return cls


def _planned_pl(self, *args, lazy: bool = False, **kwargs):
    files = _planned.get(self)
    if lazy:
        return lazy_frame(self, files)
    return _translated(files, duckdb.DuckDBPyRelation.pl, self, *args, **kwargs)


PlannedRelation = _planned_class()
