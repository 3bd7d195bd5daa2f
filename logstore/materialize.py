"""The one plan for "the table as of version v": DuckDB SQL over a snapshot and the change files after it.

Rule (docs/format.md): the base rows are the newest usable snapshot at or below v (or nothing) plus the rows of
the insert-only files with snapshot_version < _version <= v; the change rows are the rows of the other change
files in that version range. Per _row_id the change row with the highest _version wins: a base row with any change
row is replaced by it, and a row whose winning change is a delete ('D') is gone. Rows come in _row_id order.

Writers and verify use this Plan; readers (and the change feed's lookup of old images, changes.py) use scan.py's
ScanPlan, which gives the same rows in the table's row order without a join. planner.py decides which files both read.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import evolution
from .layout import DELETE, INSERT, OP, ROW_ID, UPDATE, VERSION  # noqa: F401 - the change-row columns; re-exported
from .schema import Column, literal, quote


@dataclass(frozen=True)
class Source:
    """A Parquet file the plan reads, and the table columns it holds (or, with `table`, a DuckDB table's name)."""

    url: str
    columns: frozenset[str]
    table: bool = False  # `url` names a DuckDB table of the reader's connection (the writer's head cache)
    # the columns (with identities) the file was written with, mapped to a version's columns by identity
    # (evolution.py); None: by name (the head cache's table, which holds the head's columns)
    physical: tuple[Column, ...] | None = None

    def projection(self, columns) -> str:
        """Select `columns` (a version's) from this source alone."""
        return _project(columns, self.columns, evolution.special(columns, self.columns, self.physical))


@dataclass(frozen=True)
class Plan:
    version: int
    columns: tuple[Column, ...]
    snapshot: Source | None
    snapshot_version: int  # -1 when the plan starts from nothing
    inserts: tuple[Source, ...]  # files holding only inserts of fresh row ids
    changes: tuple[Source, ...]  # every other change file

    def relation_sql(self) -> str:
        """SQL for the rows of this version, with _row_id first, in no particular order.

        Shaped so that DuckDB can push projections and filters into every Parquet scan:
          winners  (_row_id, _version) of the newest change per row id: a narrow scan of the change files
          base     snapshot + insert-only files in range, ANTI JOIN winners (the replaced and deleted rows)
          latest   the change rows that are winners and not deletes: a SEMI JOIN with winners
        No window runs over full rows and no CTE holds full rows, so a query reading two columns (a count, a
        key check, a predicate) reads two columns of each file, and `WHERE col ...` on the result reaches the
        scans of both branches (a filter on a change row before the SEMI JOIN keeps the same rows as after it).
        """
        base = []
        if self.snapshot is not None:
            base.append(f"SELECT {ROW_ID}, {self.snapshot.projection(self.columns)} FROM {_scan([self.snapshot])}")
        for group, mapped in _by_mapping(self.columns, self.inserts):
            base.append(f"SELECT {ROW_ID}, {_project(self.columns, _held(group), mapped)} FROM {_scan(group)}{_where([self._in_range()])}")
        parts = []
        if base:
            rows = " UNION ALL ".join(f"({b})" for b in base)
            if self.changes:
                rows = f"SELECT * FROM ({rows}) AS base ANTI JOIN (SELECT {ROW_ID} FROM winners) AS changed USING ({ROW_ID})"
            parts.append(rows)
        kept = [f"{OP} <> '{DELETE}'", self._in_range()]
        for group, mapped in _by_mapping(self.columns, self.changes):
            parts.append(
                f"SELECT {ROW_ID}, {_project(self.columns, _held(group), mapped)} FROM {_scan(group)} "
                f"SEMI JOIN winners USING ({ROW_ID}, {VERSION}){_where(kept)}"
            )
        if not parts:
            return f"SELECT CAST(NULL AS BIGINT) AS {ROW_ID}, {_project(self.columns, frozenset())} WHERE false"
        return self._with_clause() + " UNION ALL ".join(f"({p})" for p in parts)

    def _in_range(self) -> str:
        return f"{VERSION} > {self.snapshot_version} AND {VERSION} <= {self.version}"

    def _with_clause(self) -> str:
        if not self.changes:
            return ""
        winners = f"SELECT {ROW_ID}, max({VERSION}) AS {VERSION} FROM {_scan(self.changes)}{_where([self._in_range()])} GROUP BY {ROW_ID}"
        return f"WITH winners AS NOT MATERIALIZED ({winners}) "

    def select_sql(self, columns=None, where: str | None = None, *, row_id: bool = False) -> str:
        """The rows of this version in _row_id order, optionally projected and filtered."""
        wanted = [quote(c) for c in columns] if columns is not None else [quote(c.name) for c in self.columns]
        if row_id:
            wanted.insert(0, ROW_ID)
        filter_ = f" WHERE ({where})" if where else ""
        return f"SELECT {', '.join(wanted)} FROM ({self.relation_sql()}) AS v{filter_} ORDER BY {ROW_ID}"

    def stored_sql(self, names) -> str:
        """SQL for columns `names` of every row of every source file, whatever its version or operation.

        A superset of this version's values (deleted and replaced rows included), read without any join: a probe
        such as "is any of these keys in the table?" that finds nothing here needs no exact check, and DuckDB's
        join filters prune on the files' min/max statistics, so probing fresh keys reads little more than footers.
        """
        wanted = [c for c in self.columns if c.name in set(names)]
        sources = self.sources()
        if not sources:
            return f"SELECT {_project(wanted, frozenset())} WHERE false"
        parts = [f"SELECT {s.projection(wanted)} FROM {_scan([s])}" for s in sources[:1]]
        for group, mapped in _by_mapping(wanted, sources[1:]):
            parts.append(f"SELECT {_project(wanted, _held(group), mapped)} FROM {_scan(group)}")
        return " UNION ALL ".join(f"({p})" for p in parts)

    def sources(self) -> tuple[Source, ...]:
        return ((self.snapshot,) if self.snapshot else ()) + self.inserts + self.changes


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _held(sources) -> frozenset[str]:
    return frozenset().union(*(s.columns for s in sources))


def _names(columns) -> str:
    return ", ".join(quote(c.name) for c in columns) if columns else "NULL AS _none"


def _project(columns, held: frozenset[str], mapped: tuple[tuple[str, str], ...] = ()) -> str:
    """Select the table's columns from a source, with NULLs for columns added after it was written; `mapped`
    (evolution.special) gives the SQL of the columns the source holds under another name or type, or not at all."""
    if not columns:
        return "NULL AS _none"
    special = dict(mapped)
    return ", ".join(
        special[c.name] if c.name in special else quote(c.name) if c.name in held else f"CAST(NULL AS {c.type}) AS {quote(c.name)}"
        for c in columns
    )


def _by_mapping(columns, sources) -> list[tuple[list[Source], tuple[tuple[str, str], ...]]]:
    """The sources in groups that one projection reads (evolution.special alike: the same renames, casts and
    missing columns), in order of first appearance; most tables have one group."""
    groups: dict[tuple, list[Source]] = {}
    for s in sources:
        groups.setdefault(evolution.special(columns, s.columns, s.physical), []).append(s)
    return [(group, mapped) for mapped, group in groups.items()]


def _scan(sources) -> str:
    """A read_parquet of the sources; union_by_name only when their columns differ (it reads every footer to bind)."""
    if len(sources) == 1 and sources[0].table:
        return quote(sources[0].url)
    urls = ", ".join(literal(s.url) for s in sources)
    same = len({(s.columns, s.physical) for s in sources}) <= 1
    return f"read_parquet([{urls}]{'' if same else ', union_by_name = true'})"
