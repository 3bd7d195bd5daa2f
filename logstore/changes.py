"""Change feed and diff: row-level changes between versions, read from the change log.

The change log already stores every commit's changes as rows, so the feed is always on. A delete row of a
format-5 `DELETE` commit (record flag `preimages`) holds the deleted row's values: that is its old image, read with the
change rows (a range of such deletes and of inserts is a plain scan of its change files). Other old images (an update
row holds the new image; a delete row of another operation or of format 4 only the row id) come
from the row's previous change inside the range, or, for a row's first change in the range, from the state as of
the version before the range: that lookup is the read plan of that version restricted to the row ids the range
touched, found by their positions in its files (`ScanPlan.restricted`, scan.py; the ids come from a narrow read of
the range's change files), never a join against the whole table and never a full materialization of two versions.

Every function here takes a table's TableFiles (planner.py), not the Table.

Selectors
---------
Each version bound (`start`/`end` of `changes`, `a`/`b` of `diff`) is one of (resolved by selectors.point):

- an int: a version number (VersionNotFoundError, naming the latest version, if there is no such version);
- a datetime, date or pandas Timestamp, or a string starting with ``@`` (``"@2022-01-01 12:00"``): a moment;
- a string of digits (``"3"``): a version number;
- any other string: a tag name.

A moment means "the table as of that moment" (the latest version committed at or before it) everywhere except as
the start of a change feed, where it means the first version committed at or after it, so that
``changes("@t1", "@t2")`` is exactly the commits made between t1 and t2 (an empty table if there were none).

changes(table, start, end=None)
-------------------------------
Every row change made by the commits start..end (inclusive; `end` defaults to the latest version), as a
pyarrow.Table: the table's columns (every column any version in the range has; NULL where a version lacks one),
then

- ``_change_type``: ``insert``, ``update_preimage``, ``update_postimage`` or ``delete`` (Delta Lake's and
  DuckLake's vocabulary); an update gives two rows, the old image then the new one; a delete gives the deleted
  row's last values;
- ``_version``: the version whose commit made the change; ``_timestamp``: that commit's time (UTC);
- ``_row_id``: the row's internal identity (pairs pre- and post-images on tables without a key).

Rows come in (_version, _row_id) order, a pre-image before its post-image. A row an UPDATE's SET leaves as it was
is no change (operations.update neither writes nor counts it), so the feed does not report it. A reversed range
(start after end) raises ChangeRangeError.

diff(table, a, b)
-----------------
The net difference that turns version `a` into version `b`: a row updated five times appears once with its values
at `a` and at `b`; a row inserted and deleted in between does not appear. Rows are matched by the table's key when
it has one, by internal row id otherwise. a > b is allowed and gives the reverse. Columns:

- ``_change_type``: ``insert`` (in b, not in a), ``delete`` (in a, not in b) or ``update``;
- the key columns (keyed tables) or ``_row_id`` (tables without a key);
- for every other column ``c``: ``c``, the row's value (at `b` for inserts and updates, at `a` for deletes), and
  right after it ``_old_c``, the value at `a` when an update changed ``c`` (NULL otherwise). Columns of `b` are
  compared; a column `a` lacks counts as NULL at `a` (so an added column set on a row is a change), a column `b`
  lacks (dropped by a restore) is not compared and keeps its value only on delete rows;
- ``_changed_columns``: for updates, the names of the columns whose values differ (empty for inserts/deletes).

Names starting with ``_`` are reserved for logstore, so ``_old_c`` never clashes with a table column. Rows come in
key order (row-id order without a key). The schema metadata key ``logstore.diff`` holds JSON with the two
versions and the columns added and removed between them. `diff_summary` returns counts per change type, how many
updated rows changed each column, and the added and removed columns.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from . import (
    compaction,
    evolution,
    fingerprint,
    integrity,
    materialize,
    planner,
    scan,
    selectors,
    statistics,
    timestamps,
)
from .errors import ChangeRangeError, InvalidInputError  # ChangeRangeError: also importable from here, as before
from .layout import DELETE, INSERT, OP, ROW_ID, UPDATE, VERSION
from .planner import TableFiles
from .scan import ScanPlan
from .schema import Column, literal, quote

CHANGE_TYPE = "_change_type"
TIMESTAMP = "_timestamp"
CHANGED_COLUMNS = "_changed_columns"
OLD_PREFIX = "_old_"
DIFF_METADATA = b"logstore.diff"

CHANGE_TYPES = ("insert", "update_preimage", "update_postimage", "delete")
DIFF_TYPES = ("insert", "update", "delete")


@dataclass(frozen=True)
class DiffSummary:
    """What diff(a, b) would return, counted."""

    from_version: int
    to_version: int
    inserted: int
    updated: int
    deleted: int
    changed_columns: dict[str, int] = field(default_factory=dict)  # column -> updated rows in which it changed
    columns_added: tuple[str, ...] = ()  # in b, not in a
    columns_removed: tuple[str, ...] = ()  # in a, not in b

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["columns_added"] = list(self.columns_added)
        d["columns_removed"] = list(self.columns_removed)
        return d


# --- what a range of versions holds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    url: str
    columns: frozenset
    version: int
    inserts_only: bool
    schema: tuple | None = None  # the exact (ordered, typed) columns the file was written with, when known
    key: tuple = ()  # the file's identity (store, path, size, SHA-256): the cache key of its narrow columns (scan.py)
    physical: tuple | None = None  # the columns (with identities) it holds (evolution.layout)
    versions: tuple[int, int] | None = None  # the versions first..last of the unit it stands for (compaction.cover)


class _Range:
    """The commit records of versions first..last and the change files that hold their rows.

    `rows_only` (diff): only the row ids of the change rows are wanted, never their values: the records are read
    when asked for (columns_at), not all of the range's, and the files' schemas are not worked out."""

    def __init__(self, files: TableFiles, first: int, last: int, *, rows_only: bool = False):
        self.log = files.log
        self.first, self.last = first, last
        self.records = {} if rows_only else {r.version: r for r in files.log.read_range(max(first, 0), last)}  # through log checkpoints
        self.change_files: list[_File] = []
        self.changed_versions = [v for v, r in self.records.items() if r.files]
        # format 5: versions whose delete rows hold the deleted rows' values (their pre-images)
        self.preimage_versions = [v for v, r in self.records.items() if r.preimages]
        for path, size, sha256, held, version, inserts_only, schema, physical, unit in _range_files(
            files, max(first, 0), last, self.records, values=not rows_only
        ):
            integrity.check_file(files.storage, files.path(path), size, sha256, version, what="change file")
            key = (files.storage.location, files.path(path), size, sha256)
            self.change_files.append(_File(files.url(path), held, version, inserts_only, schema, key, physical, unit))

    def columns_at(self, version: int) -> tuple[Column, ...]:
        if version not in self.records:
            self.records[version] = self.log.read(version)
        return self.records[version].columns

    def union_columns(self, versions) -> tuple[Column, ...]:
        """Every column (by identity, evolution.py) the versions have, in order of first appearance, under its name
        and type in the last of them that has it; of two columns that were given one name (a column dropped and
        another added under its name), the one the later version has keeps it and the other is left out."""
        order: list[str] = []
        latest: dict[str, Column] = {}
        owner: dict[str, str] = {}
        for v in versions:
            for c in self.columns_at(v):
                if c.ident not in latest:
                    order.append(c.ident)
                latest[c.ident] = c
                owner[c.name] = c.ident
        return tuple(latest[i] for i in order if owner[latest[i].name] == i)

    def idents_at(self, version: int) -> set[str]:
        return {c.ident for c in self.columns_at(version)}

    def touches_old_rows(self) -> bool:
        """Whether any change in the range can touch a row that existed before it (else no lookup is needed)."""
        return any(not f.inserts_only for f in self.change_files)

    def needs_lookup(self) -> bool:
        """Whether a change of the range needs an old image it does not hold: an update, or a delete written without
        its pre-image (before format 5, or by an operation that does not store it)."""
        return self.touches_old_rows() and any(
            r.commit.rows_updated or (r.commit.rows_deleted and not r.preimages) for r in self.records.values() if r.version >= self.first
        )

    def changed_row_ids(self) -> np.ndarray:
        """The sorted row ids of every change row of the range."""
        return _distinct(self._row_ids(self.change_files))

    def old_row_ids(self, *, skip_preimages: bool = False) -> tuple[np.ndarray, bool]:
        """The sorted row ids the range changes that may have existed before it, and whether every row id the range
        changes is changed by one change row only (then each old image is the row as of the version before the
        range). With `skip_preimages`, delete rows that hold their pre-image (format 5) are left out. The ids are those of its rows in files that are not insert-only (an insert-only file inserts fresh row
        ids only, at or above the next row id of the version before the range) below that next row id: a superset of
        the rows whose first change in the range is not an insert (an extra id finds no row)."""
        ids = np.sort(self._row_ids([f for f in self.change_files if not f.inserts_only], skip_preimages=skip_preimages))
        repeated = ids[1:] == ids[:-1]
        limit = self.log.read(self.first - 1).next_row_id if self.first >= 1 else 0
        once = not repeated.any() and (not len(ids) or int(ids[-1]) < limit)
        ids = ids[np.concatenate([[True], ~repeated])] if len(ids) else ids
        return ids[ids < limit], once

    def _row_ids(self, change_files: list[_File], *, skip_preimages: bool = False) -> np.ndarray:
        """The row ids of the rows of versions first..last in `change_files` (narrow columns, cached per process as
        reads cache them), unsorted; with `skip_preimages`, not those of delete rows holding their pre-image."""
        parts = []
        holding = np.array(self.preimage_versions, dtype=np.int64)
        for f in change_files:
            if not self._may_hold_rows(f):
                continue
            rid, ver, deleted = scan.change_rows(f.url, f.key)
            wanted = (ver >= self.first) & (ver <= self.last)
            if skip_preimages and len(holding):
                wanted &= ~(deleted & np.isin(ver, holding))
            parts.append(rid[wanted])
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _may_hold_rows(self, f: _File) -> bool:
        """False for a file of a compacted block reaching past the range whose `_version` statistics show no row of
        the range (e.g. version 0's data file kept in block 0..99, for a range from version 1): its narrow columns
        are then not read at all. A file without statistics may hold rows."""
        if f.versions is None or (f.versions[0] >= self.first and f.versions[1] <= self.last):
            return True
        bounds = statistics.integer_range(f.url, VERSION)  # None if unreadable: the read then reports it
        return bounds is None or bounds.overlaps(self.first, self.last)


def _distinct(ids: np.ndarray) -> np.ndarray:
    """The distinct values of `ids`, sorted (np.unique hashes first, several times slower on these arrays)."""
    ids = np.sort(ids)
    return ids[np.concatenate([[True], ids[1:] != ids[:-1]])] if len(ids) else ids


def _range_files(files: TableFiles, first: int, last: int, records: dict, *, values: bool = True):
    """(path, size, sha256, columns held, version or None, inserts_only, schema, physical columns, (unit first,
    unit last)) of the files standing for versions first..last: compacted blocks where compaction.py has them (a
    block may reach past the range; rows are filtered by _version), else each version's own files. Without `values`
    (only the files' row ids are read), schema and physical columns are None."""
    if last < first:
        return []
    out = []
    for unit in compaction.cover(files.log, first, last, max(last, files.log.latest())):  # never a replaced file
        for held in unit.files:
            f = held.file
            plain = unit.compaction is None
            schema = records[unit.last].columns if plain and unit.last in records else None
            physical = evolution.layout(files.log, unit.first, unit.last, frozenset(held.columns)) if values else None
            out.append(
                (f.path, f.size, f.sha256, frozenset(held.columns), unit.last if plain else None, f.inserts_only, schema, physical, (unit.first, unit.last))
            )
    return out


# --- SQL building blocks -------------------------------------------------------------------------------------------


def _null(c: Column) -> str:
    return f"CAST(NULL AS {c.type}) AS {quote(c.name)}"


def _typed_empty(columns, *, op: bool = True) -> str:
    head = [f"CAST(NULL AS BIGINT) AS {ROW_ID}"]
    if op:
        head += [f"CAST(NULL AS VARCHAR) AS {OP}", f"CAST(NULL AS BIGINT) AS {VERSION}"]
    return f"SELECT {', '.join(head + [_null(c) for c in columns])} WHERE false"


CODE = "_code"  # _version * 4 + (0 insert, 1 update, 2 delete): a row's first and last change by integer min/max


def _change_rows_sql(files: list[_File], columns, first: int, last: int) -> str:
    """The change rows of versions first..last: _row_id, _op, _version, _code, then `columns`."""
    if not files:
        return f"SELECT *, CAST(NULL AS BIGINT) AS {CODE} FROM ({_typed_empty(columns)})"
    code = f"{VERSION} * 4 + CASE {OP} WHEN '{INSERT}' THEN 0 WHEN '{UPDATE}' THEN 1 ELSE 2 END AS {CODE}"
    schemas = {f.url: f.schema for f in files if f.schema is not None}

    def select(held, physical) -> str:  # a file's columns mapped by identity; the default (or NULL) where it lacks one
        mapped = evolution.special(columns, held, physical)
        return f"{ROW_ID}, {OP}, {VERSION}, {code}, {materialize._project(columns, held, mapped)}"

    return _grouped_scan(files, schemas, select, f"{VERSION} BETWEEN {first} AND {last}")


def _grouped_scan(sources, schemas: dict, select: str, where: str) -> str:
    """`SELECT {select} FROM <files> WHERE {where}` over the sources: files of one exact schema in one scan without
    union_by_name (which reads every footer up front, single-threaded), others one scan by name each.
    `select` is a function of the columns the scanned files hold."""
    groups: dict = {}
    for src in sources:
        schema = schemas.get(src.url)
        groups.setdefault(schema if schema is not None else ("file", src.url), []).append(src)
    parts = []
    for key, group in groups.items():
        held = frozenset().union(*(g.columns for g in group))
        urls = ", ".join(literal(g.url) for g in group)
        by_name = ", union_by_name = true" if key[:1] == ("file",) else ""
        parts.append(f"SELECT {select(held, group[0].physical)} FROM read_parquet([{urls}]{by_name}) WHERE {where}")
    return " UNION ALL ".join(f"({p})" for p in parts)


def _state_of_ids(files: TableFiles, version: int, ids: np.ndarray, columns, exclude: frozenset[int]) -> tuple[str, ScanPlan]:
    """SQL for the rows of `version` whose _row_id is in `ids` (sorted), as _row_id and `columns` (NULL where the
    version lacks a column), and the plan it reads: the read plan of the version restricted to those ids by their
    positions in its files (planner.lookup_plan), no join; a snapshot unreadable while planning is skipped with a
    warning, as planner.retry skips one DuckDB cannot read."""
    wanted = planner.lookup_plan(files, version, ids, exclude=exclude)
    present = {c.ident: c for c in wanted.columns}  # the version's columns, mapped to `columns` by identity
    values = [evolution.missing(c) if c.ident not in present else _renamed(present[c.ident], c) for c in columns]
    return f"SELECT {', '.join([ROW_ID] + values)} FROM ({wanted.relation_sql(row_id=True)}) AS s", wanted


def _renamed(held: Column, wanted: Column) -> str:
    value = quote(held.name) if held.type == wanted.type else f"CAST({quote(held.name)} AS {wanted.type})"
    return value if held.name == wanted.name and held.type == wanted.type else f"{value} AS {quote(wanted.name)}"


def _ranges(versions: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in sorted(versions):
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _version_in(expr: str, versions: list[int]) -> str:
    return " OR ".join(f"{expr} = {a}" if a == b else f"{expr} BETWEEN {a} AND {b}" for a, b in _ranges(versions))


def _with(ctes: list[str]) -> str:
    ctes = [c for c in ctes if c]
    return ("WITH " + ", ".join(ctes) + " ") if ctes else ""


# --- the change feed ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    sql: str
    plan: ScanPlan | None  # the plan of the lookup state (to blame a damaged snapshot), if any

    def within(self, head: str, tail: str) -> _Query:
        """This query as a subquery: `head` + its SQL + `tail`."""
        return _Query(head + self.sql + tail, self.plan)


def changes_query(files: TableFiles, start_version: int, end_version: int, exclude=frozenset(), *, ordered: bool = True) -> _Query:
    """SQL for the change feed of versions start..end (already resolved, start <= end + 1).

    Post-images are the change rows themselves. The pre-image of a change at version v is the row's previous
    change inside the range (found with a window over narrow columns only), or for its first change in the range
    the row as of start - 1 (looked up by position for just those row ids); both are fetched with one equi-join.
    """
    span = _Range(files, start_version, end_version)
    before = start_version - 1
    columns = span.union_columns(range(max(before, 0), end_version + 1) if end_version >= 0 else [])
    names = [quote(c.name) for c in columns]
    ctes = [f"_ch AS MATERIALIZED ({_change_rows_sql(span.change_files, columns, start_version, end_version)})"]
    plan = None
    values = "".join(", " + n for n in names)
    images = [f"SELECT {ROW_ID}, {VERSION}{values} FROM _ch WHERE {OP} <> '{DELETE}'"]
    held = f"({OP} = '{DELETE}' AND ({_version_in(VERSION, span.preimage_versions)}))" if span.preimage_versions else "false"
    lookup = span.needs_lookup()  # else every old image the feed shows is a delete row's own values (format 5)
    once = False  # every row id the range changes is changed once: its old image is the lookup's, no window
    if before >= 0 and lookup:
        ids, once = span.old_row_ids(skip_preimages=True)
        state, plan = _state_of_ids(files, before, ids, columns, exclude)
        looked_up = f"SELECT {ROW_ID}, {before} AS {VERSION}{values} FROM ({state})"
        images = [looked_up] if once else images + [looked_up]
    if not lookup:
        pass
    elif once:
        ctes.append(f"_old AS (SELECT {ROW_ID}, {OP}, {VERSION}, {before} AS _pv FROM _ch WHERE {OP} <> '{INSERT}' AND NOT {held})")
    else:
        ctes.append(
            f"_old AS (SELECT {ROW_ID}, {OP}, {VERSION}, coalesce(lag({VERSION}) OVER (PARTITION BY {ROW_ID} ORDER BY {VERSION}), {before}) AS _pv "
            f"FROM _ch QUALIFY {OP} <> '{INSERT}' AND NOT {held})"
        )
    if lookup:
        ctes.append(f"_img AS ({' UNION ALL '.join(images)})")
    times = [(v, span.records[v].commit.timestamp) for v in span.changed_versions]
    # a pre-image is the row as of version - 1: NULL for the columns that version lacks
    def pre_values(image: str) -> list[str]:
        out = []
        for c in columns:
            absent = [v for v in range(max(start_version - 1, 0), end_version) if c.ident not in span.idents_at(v)]
            value = f"{image}.{quote(c.name)}"
            if absent:
                lacking = evolution.missing(c).rsplit(" AS ", 1)[0]  # its default, else NULL
                value = f"CASE WHEN {_version_in(f'o.{VERSION} - 1', absent)} THEN {lacking} ELSE {value} END"
            out.append(f"{value} AS {quote(c.name)}")
        return out

    post = (
        f"SELECT {', '.join(names + [''])}CASE {OP} WHEN '{INSERT}' THEN 'insert' ELSE 'update_postimage' END AS {CHANGE_TYPE}, "
        f"{VERSION}, {ROW_ID}, 1 AS _ord FROM _ch WHERE {OP} <> '{DELETE}'"
    )
    # a delete row of a format-5 commit holds the pre-image itself; other old images are joined from _img
    pre = f"SELECT {', '.join(pre_values('o') + [''])}'delete' AS {CHANGE_TYPE}, o.{VERSION}, o.{ROW_ID}, 0 AS _ord FROM _ch o WHERE {held}"
    if lookup:
        pre = f"({pre}) UNION ALL (" + (
            f"SELECT {', '.join(pre_values('i') + [''])}CASE o.{OP} WHEN '{UPDATE}' THEN 'update_preimage' ELSE 'delete' END AS {CHANGE_TYPE}, "
            f"o.{VERSION}, o.{ROW_ID}, 0 AS _ord FROM _old o LEFT JOIN _img i ON o.{ROW_ID} = i.{ROW_ID} AND o._pv = i.{VERSION}"
        ) + ")"
    if times:
        values = ", ".join(f"({v}, TIMESTAMPTZ {literal(timestamps.encode(t))})" for v, t in times)
        ctes.append(f"_times AS (SELECT * FROM (VALUES {values}) AS t({VERSION}, {TIMESTAMP}))")
    else:
        ctes.append(f"_times AS (SELECT CAST(NULL AS BIGINT) AS {VERSION}, CAST(NULL AS TIMESTAMPTZ) AS {TIMESTAMP} WHERE false)")
    select_cols = ", ".join(names + [CHANGE_TYPE, f"CAST(o.{VERSION} AS BIGINT) AS {VERSION}", TIMESTAMP, ROW_ID])
    sql = _with(ctes) + f"SELECT {select_cols} FROM (({post}) UNION ALL ({pre})) AS o JOIN _times USING ({VERSION})"
    if ordered:
        sql += f" ORDER BY o.{VERSION}, {ROW_ID}, _ord"
    return _Query(sql, plan)


def change_range(files: TableFiles, start, end=None) -> tuple[int, int]:
    """Resolve the bounds of a change feed: (start_version, end_version); start_version may be end_version + 1
    when `start` is a moment with no commit between it and `end` (an empty feed)."""
    latest = files.log.latest()  # HeadMissingError first if the newest commit record was lost
    first = selectors.point(files, start, start=True)
    last = selectors.point(files, end) if end is not None else selectors.Point(latest)
    if first.moment is not None and last.moment is not None and first.moment > last.moment:
        raise ChangeRangeError(start, end, first.version, last.version)
    if first.version > last.version:
        if not (first.moment is not None and first.version == last.version + 1):
            raise ChangeRangeError(start, end if end is not None else latest, first.version, last.version)
    from . import expiry

    expiry.check(files, max(first.version - 1, 0))  # the feed reads the images before its first commit (expiry.py)
    return first.version, last.version


def changes(files: TableFiles, start, end=None) -> pa.Table:
    """Every row change made by the commits start..end (inclusive); see the module docstring."""
    first, last = change_range(files, start, end)
    result = _run(files, changes_query(files, first, last), lambda exclude: changes_query(files, first, last, exclude))
    return _utc(result, TIMESTAMP)


# --- verify: stored pre-images against the fingerprints --------------------------------------------------------------


def preimage_mismatch(files: TableFiles, con: duckdb.DuckDBPyConnection, version: int) -> str | None:
    """For a version whose delete rows hold pre-images (format 5): why they disagree with the rows they claim to
    delete, else None. The commit's fingerprint is its parent's minus the row hashes of the rows it deleted (plus those
    of any new images), so the pre-images must make up exactly that difference (verify.py; a replaced change file
    carrying other values than the deleted rows had is caught even when its record was re-sealed to match it)."""
    record = files.log.read(version)
    parent = files.log.read(version - 1) if version >= 1 else None
    if not record.preimages or parent is None or record.fingerprint is None or parent.fingerprint is None:
        return None
    span = _Range(files, version, version)
    rows = f"({_change_rows_sql(span.change_files, parent.columns, version, version)}) AS c"
    deleted = fingerprint.sum_sql(f"(SELECT * FROM {rows} WHERE {OP} = '{DELETE}') AS d", parent.columns)
    written = fingerprint.sum_sql(f"(SELECT * FROM {rows} WHERE {OP} <> '{DELETE}') AS n", record.columns)
    old_hash, new_hash = (int(con.execute(q).fetchall()[0][0]) for q in (deleted, written))
    expected = (fingerprint.decode(parent.fingerprint) - old_hash + new_hash) % 2**64
    if fingerprint.encode(expected) == record.fingerprint:
        return None
    return (f"the pre-images in its delete rows do not match the rows it deleted: version {version - 1}'s fingerprint "
            f"{parent.fingerprint} minus their row hashes gives {fingerprint.encode(expected)}, the record says {record.fingerprint}")


# --- diff -----------------------------------------------------------------------------------------------------------


def diff_query(files: TableFiles, a: int, b: int, exclude=frozenset(), *, span: _Range | None = None) -> tuple[_Query, dict]:
    """SQL for diff(a, b) of resolved versions, and the schema facts (columns, added, removed). `span`: the range's
    files (_diff_range), if already known."""
    lo, hi = min(a, b), max(a, b)
    span = span if span is not None else _Range(files, lo + 1, hi, rows_only=True)
    cols_a, cols_b = span.columns_at(a), span.columns_at(b)
    ids_a, ids_b = span.idents_at(a), span.idents_at(b)
    key = files.log.read(b).key  # b's names of the key columns (a rename keeps a column in the key)
    columns = span.union_columns([a, b])  # output columns (by identity): a's, then those b added; b's names and types
    added = [c.name for c in cols_b if c.ident not in ids_a]
    removed = [c.name for c in cols_a if c.ident not in ids_b]
    ctes = []
    # the rows of hi the range changed (by position, like _lo), over the snapshot _lo reads: snapshots above lo are
    # excluded, so one plan's snapshot is blamed if DuckDB cannot read it (the changed rows are never in it anyway)
    state, plan = _state_of_ids(files, hi, span.changed_row_ids(), columns, exclude | frozenset(range(lo + 1, hi + 1)))
    ctes.append(f"_hi AS ({state})")
    if lo >= 0 and span.touches_old_rows() and columns:
        state, plan = _state_of_ids(files, lo, span.old_row_ids()[0], columns, exclude)  # the same snapshot as _hi's
        ctes.append(f"_lo AS ({state})")
    else:
        ctes.append(f"_lo AS ({_typed_empty(columns, op=False)})")
    old, new = ("_lo", "_hi") if a <= b else ("_hi", "_lo")  # each image is projected to its version's columns

    matched_by = list(key) if key else [ROW_ID]
    on = " AND ".join(f"o.{quote(k)} = n.{quote(k)}" for k in matched_by)
    compared = [c for c in columns if c.ident in ids_b and c.name not in key]
    distinct = {c.name: f"o.{quote(c.name)} IS DISTINCT FROM n.{quote(c.name)}" for c in compared}
    in_old, in_new = f"o.{ROW_ID} IS NOT NULL", f"n.{ROW_ID} IS NOT NULL"
    kind = f"CASE WHEN NOT {in_old} THEN 'insert' WHEN NOT {in_new} THEN 'delete' ELSE 'update' END"
    changed_list = (
        "list_filter([" + ", ".join(f"CASE WHEN {d} THEN {literal(n)} END" for n, d in distinct.items()) + "], lambda x: x IS NOT NULL)"
        if distinct
        else "CAST([] AS VARCHAR[])"
    )
    select = [f"{kind} AS {CHANGE_TYPE}"]
    for k in matched_by:
        select.append(f"coalesce(o.{quote(k)}, n.{quote(k)}) AS {quote(k)}")
    value_cols = [c for c in columns if c.name not in key]
    for c in value_cols:
        q = quote(c.name)
        if c.ident in ids_b:
            select.append(f"CASE WHEN {in_new} THEN n.{q} ELSE o.{q} END AS {q}")
            select.append(f"CASE WHEN {in_old} AND {in_new} AND {distinct[c.name]} THEN o.{q} END AS {quote(OLD_PREFIX + c.name)}")
        else:  # removed between a and b: not compared, kept on delete rows
            select.append(f"CASE WHEN NOT {in_new} THEN o.{q} END AS {q}")
    select.append(f"CASE WHEN {in_old} AND {in_new} THEN {changed_list} ELSE CAST([] AS VARCHAR[]) END AS {CHANGED_COLUMNS}")
    any_change = " OR ".join(distinct.values()) or "false"
    where = f"NOT ({in_old}) OR NOT ({in_new}) OR {any_change}"
    order = ", ".join(quote(k) for k in matched_by)
    sql = _with(ctes) + f"SELECT {', '.join(select)} FROM {old} AS o FULL OUTER JOIN {new} AS n ON {on} WHERE {where} ORDER BY {order}"
    facts = {"from_version": a, "to_version": b, "columns_added": added, "columns_removed": removed, "key": list(key)}
    return _Query(sql, plan), facts


def diff(files: TableFiles, a, b, *, limit: int | None = None) -> pa.Table:
    """The net difference from version `a` to version `b`; see the module docstring."""
    va, vb = _two(files, a, b)
    span = _diff_range(files, va, vb)
    query, facts = diff_query(files, va, vb, span=span)
    outer = ("", "")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(limit, f"limit must be a non-negative int, not {limit!r}")
        outer = ("SELECT * FROM (", f") LIMIT {limit}")
    result = _run(files, query.within(*outer), lambda exclude: diff_query(files, va, vb, exclude, span=span)[0].within(*outer))
    metadata = {DIFF_METADATA: json.dumps({k: facts[k] for k in ("from_version", "to_version", "columns_added", "columns_removed")}).encode()}
    return result.replace_schema_metadata(metadata)


def diff_summary(files: TableFiles, a, b) -> DiffSummary:
    """Counts of what diff(a, b) holds, the columns updates changed, and the columns added and removed."""
    va, vb = _two(files, a, b)
    span = _diff_range(files, va, vb)
    query, facts = diff_query(files, va, vb, span=span)
    compared = [c.name for c in files.log.read(vb).columns if c.name not in facts["key"]]
    counts = [f"count(*) FILTER (WHERE {CHANGE_TYPE} = '{t}')" for t in DIFF_TYPES]
    per_column = [f"count(*) FILTER (WHERE list_contains({CHANGED_COLUMNS}, {literal(n)}))" for n in compared]
    outer = (f"SELECT {', '.join(counts + per_column)} FROM (", ")")
    row = _run(files, query.within(*outer), lambda exclude: diff_query(files, va, vb, exclude, span=span)[0].within(*outer)).to_pylist()[0]
    values = list(row.values())
    inserted, updated, deleted = (int(v) for v in values[:3])
    changed = {n: int(v) for n, v in zip(compared, values[3:]) if v}
    return DiffSummary(va, vb, inserted, updated, deleted, changed, tuple(facts["columns_added"]), tuple(facts["columns_removed"]))


def _two(files: TableFiles, a, b) -> tuple[int, int]:
    files.log.latest()  # HeadMissingError first if the newest commit record was lost
    return selectors.point(files, a).version, selectors.point(files, b).version


def _diff_range(files: TableFiles, a: int, b: int) -> _Range:
    """The files of the versions between a and b (what diff_query reads the row ids of), found on a thread of its own
    while this thread opens its DuckDB connection (which the diff's query runs on): the files are checked against
    their SHA-256 on their first use in a process (integrity.py), and hashing releases the GIL, so in a fresh process
    (the CLI) the two overlap (~50 -> ~35 ms for the standard workload's diff 0..300). The thread has ended when this
    returns; its error, if any, is raised here. A thread of its own, not the pool of threads.py: the pool's threads
    outlive the task, and the CLI leaves at once (os._exit) only when no other thread is alive (cli/shutdown.py)."""
    found: dict[str, Any] = {}

    def build() -> None:
        try:
            found["range"] = _Range(files, min(a, b) + 1, max(a, b), rows_only=True)
        except BaseException as e:  # noqa: BLE001 - raised below, in the caller's thread
            found["error"] = e

    thread = threading.Thread(target=build, name="logstore-diff-range", daemon=True)
    thread.start()
    try:
        files.connection()
    finally:
        thread.join()
    if "error" in found:
        raise found["error"]
    return found["range"]


# --- running ----------------------------------------------------------------------------------------------------------


def _run(files: TableFiles, query: _Query, rebuild: Callable[[frozenset[int]], _Query]) -> pa.Table:
    """Run a query; skip a damaged snapshot of the lookup state (with a warning) as reads do (planner.retry), running
    `rebuild(exclude)` instead."""
    con = files.connection().cursor()

    def attempt(exclude: frozenset[int]) -> planner.Attempt:
        current = rebuild(exclude) if exclude else query
        return planner.Attempt(current.plan, lambda: con.sql(current.sql).to_arrow_table())

    try:
        return planner.retry(files, attempt)
    finally:
        con.close()


def _utc(result: pa.Table, name: str) -> pa.Table:
    i = result.schema.get_field_index(name)
    if i < 0:
        return result
    return result.set_column(i, name, result.column(i).cast(pa.timestamp("us", tz="UTC")))


# --- SQL: table_changes('t', start[, end]) and table_diff('t', a, b) in store.sql (registered by sql.py) -------------


def sql_table_changes(store, table, start, end=None) -> str:
    """`SELECT * FROM table_changes('events', 3, 7)`: the change feed as SQL (selectors as in `changes`)."""
    files = store.table(table)._files
    first, last = change_range(files, start, end)
    return changes_query(files, first, last).sql


def sql_table_diff(store, table, a, b) -> str:
    """`SELECT * FROM table_diff('events', 0, 'v1.0')`: the net difference as SQL (selectors as in `diff`)."""
    files = store.table(table)._files
    va, vb = _two(files, a, b)
    return diff_query(files, va, vb)[0].sql


# --- streaming: the change feed and the diff as DuckDB relations (the CLI writes them out with export.py) ---------


def changes_relation(files: TableFiles, start, end=None) -> duckdb.DuckDBPyRelation:
    """The rows `changes` returns, as a lazy DuckDB relation on the store's connection (`_timestamp` is a
    TIMESTAMPTZ): fetched or written out in batches, never all in memory."""
    first, last = change_range(files, start, end)
    return _relation(files, lambda exclude: changes_query(files, first, last, exclude))


def diff_relation(files: TableFiles, a, b) -> duckdb.DuckDBPyRelation:
    """The rows `diff` returns, as a lazy DuckDB relation on the store's connection (without the schema metadata:
    `diff_summary` has the columns added and removed)."""
    va, vb = _two(files, a, b)
    span = _diff_range(files, va, vb)
    return _relation(files, lambda exclude: diff_query(files, va, vb, exclude, span=span)[0])


def _relation(files: TableFiles, build: Callable[[frozenset[int]], _Query]) -> duckdb.DuckDBPyRelation:
    """The query as a relation, over a lookup snapshot DuckDB can open: one it cannot is skipped with a warning
    (planner.retry), as reads skip it (what fails only once rows are fetched is not retried: planner.checked_plan)."""
    con = files.connection()

    def attempt(exclude: frozenset[int]) -> planner.Attempt:
        query = build(exclude)

        def opened() -> duckdb.DuckDBPyRelation:
            if query.plan is not None and query.plan.snapshot is not None:
                con.sql(f"SELECT count(*) FROM read_parquet({literal(query.plan.snapshot.url)})").fetchall()
            return con.sql(query.sql)

        return planner.Attempt(query.plan, opened)

    return planner.retry(files, attempt)
