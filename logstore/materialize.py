"""The one plan for "the table as of version v": DuckDB SQL over a snapshot and the change files after it.

Rule (docs/format.md): the base rows are the newest usable snapshot at or below v (or nothing) plus the rows of
the insert-only files with snapshot_version < _version <= v; the change rows are the rows of the other change
files in that version range. Per _row_id the change row with the highest _version wins: a base row with any change
row is replaced by it, and a row whose winning change is a delete ('D') is gone. Rows come in _row_id order.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import Column, quote

ROW_ID = "_row_id"
OP = "_op"
VERSION = "_version"
INSERT, UPDATE, DELETE = "I", "U", "D"


@dataclass(frozen=True)
class Source:
    """A Parquet file the plan reads, and the table columns it holds."""

    url: str
    columns: frozenset[str]


@dataclass(frozen=True)
class Plan:
    version: int
    columns: tuple[Column, ...]
    snapshot: Source | None
    snapshot_version: int  # -1 when the plan starts from nothing
    inserts: tuple[Source, ...]  # files holding only inserts of fresh row ids
    changes: tuple[Source, ...]  # every other change file

    def relation_sql(self) -> str:
        """SQL for the rows of this version, with _row_id first, in no particular order."""
        base = []
        if self.snapshot is not None:
            base.append(f"SELECT {ROW_ID}, {_project(self.columns, self.snapshot.columns)} FROM {_scan([self.snapshot])}")
        if self.inserts:
            base.append(f"SELECT {ROW_ID}, {_project(self.columns, _held(self.inserts))} FROM {_scan(self.inserts)} WHERE {self._in_range()}")
        parts = []
        if base:
            rows = " UNION ALL ".join(f"({b})" for b in base)
            if self.changes:
                rows = f"SELECT * FROM ({rows}) AS base ANTI JOIN (SELECT {ROW_ID} FROM changes) AS changed USING ({ROW_ID})"
            parts.append(rows)
        if self.changes:
            parts.append(f"SELECT {ROW_ID}, {_names(self.columns)} FROM latest WHERE {OP} <> '{DELETE}'")
        if not parts:
            return f"SELECT CAST(NULL AS BIGINT) AS {ROW_ID}, {_project(self.columns, frozenset())} WHERE false"
        return self._with_clause() + " UNION ALL ".join(f"({p})" for p in parts)

    def _in_range(self) -> str:
        return f"{VERSION} > {self.snapshot_version} AND {VERSION} <= {self.version}"

    def _with_clause(self) -> str:
        if not self.changes:
            return ""
        changes = (
            f"SELECT {ROW_ID}, {OP}, {VERSION}, {_project(self.columns, _held(self.changes))} "
            f"FROM {_scan(self.changes)} WHERE {self._in_range()}"
        )
        latest = f"SELECT * FROM changes QUALIFY row_number() OVER (PARTITION BY {ROW_ID} ORDER BY {VERSION} DESC) = 1"
        return f"WITH changes AS ({changes}), latest AS ({latest}) "

    def select_sql(self, columns=None, where: str | None = None, *, row_id: bool = False) -> str:
        """The rows of this version in _row_id order, optionally projected and filtered."""
        wanted = [quote(c) for c in columns] if columns is not None else [quote(c.name) for c in self.columns]
        if row_id:
            wanted.insert(0, ROW_ID)
        filter_ = f" WHERE ({where})" if where else ""
        return f"SELECT {', '.join(wanted)} FROM ({self.relation_sql()}) AS v{filter_} ORDER BY {ROW_ID}"

    def sources(self) -> tuple[Source, ...]:
        return ((self.snapshot,) if self.snapshot else ()) + self.inserts + self.changes


def _held(sources) -> frozenset[str]:
    return frozenset().union(*(s.columns for s in sources))


def _names(columns) -> str:
    return ", ".join(quote(c.name) for c in columns) if columns else "NULL AS _none"


def _project(columns, held: frozenset[str]) -> str:
    """Select the table's columns from a source, with NULLs for columns added after it was written."""
    if not columns:
        return "NULL AS _none"
    return ", ".join(
        quote(c.name) if c.name in held else f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in columns
    )


def _scan(sources) -> str:
    urls = ", ".join("'" + s.url.replace("'", "''") + "'" for s in sources)
    return f"read_parquet([{urls}], union_by_name = true)"
