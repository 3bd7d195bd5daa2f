"""MERGE: a builder of clauses applied to a source's rows joined with the table's head, committed as one version.

The semantics are Delta Lake's (and SQL:2008 MERGE's): the source is joined with the head's rows on `on`; every
pair (a target row matched by a source row), every source row matching no target row, and every target row
matched by no source row takes the first clause of its kind whose condition holds, in the order the clauses
were given; a row no clause applies to is left alone. Two source rows matching the same target row is an error
(MergeMatchError) when a matched clause applies to more than one of those pairs, unless the only matched clause
is an unconditional delete (as in Delta Lake, delta-rs 1.x), which deletes the row once. Expressions and
conditions are SQL over the aliases (`source.col`, `target.col`), parsed and bound with DuckDB's parser like
`update`'s: matched clauses see both aliases, not-matched clauses (inserts) only the source, not-matched-by-source
clauses only the target. On a keyed table the result must keep the key rules (no NULL, NaN or repeated key, no key
an untouched row holds): else KeyViolationError. Every check runs before anything is written.

The merge runs as one DuckDB query: the source (an Arrow table) joined with the target rows produces the change
rows, U with the full new image (only when it differs from the old one: an update that leaves a row as it was
is neither counted nor written), D, and I with new row ids in source order, together with the row-hash sums of
their old and new images for the content fingerprint. When `on` names columns and no clause acts on unmatched
target rows, the target rows are only those holding the source's `on` values: for the table's integer key,
found by the head cache's key lookup (headcache.py) without reading the other rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, overload

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import expressions, fingerprint, operations
from .commit import CommitInfo, commit
from .errors import InvalidExpressionError, InvalidInputError, KeyViolationError, MergeMatchError, SchemaMismatchError
from .inputs import to_arrow
from .log import Commit
from .materialize import DELETE, INSERT, OP, ROW_ID, UPDATE
from .operations import NEW_HASH, OLD_HASH, ChangeSet, Head
from .schema import Column, quote

if TYPE_CHECKING:
    from .inputs import DataLike
    from .table import Table

MATCHED, NOT_MATCHED, BY_SOURCE = "matched", "not_matched", "not_matched_by_source"
_POS = "__logstore_merge_pos"  # the source row's position, a column of the source relation
_TID = "__logstore_merge_tid"  # the matched target row's id
_CLAUSE = "__logstore_merge_clause"
_MOVED = "__logstore_merge_moved"  # a change row whose key may clash with a row the merge leaves alone
_SRC = "__logstore_merge_source_key_"  # the source row's value of the i-th key column
_OLD = "__logstore_merge_old_"  # the old value of the i-th column, next to the new image
_SOURCE_TABLE = "logstore_merge_source"
_checked: set[tuple] = set()  # expressions _Merge._check passed: (text, aliases, alias names, source and table columns)
_TARGET_TABLE = "logstore_merge_target"


@dataclass(frozen=True)
class Clause:
    """One WHEN clause: which rows (`kind`), what it does (`action`: update, delete, insert), its condition and its
    assignments (None: every column from the source column of the same name, update_all / insert_all)."""

    kind: str
    action: str
    condition: str | None = None
    assignments: dict[str, str] | None = None

    @property
    def name(self) -> str:
        every = "_all" if self.assignments is None and self.action != "delete" else ""
        where = {MATCHED: "when_matched", NOT_MATCHED: "when_not_matched", BY_SOURCE: "when_not_matched_by_source"}[self.kind]
        return f"{where}_{self.action}{every}"

    def parameters(self) -> dict:
        described: dict[str, Any] = {"clause": self.name}
        if self.condition is not None:
            described["condition"] = self.condition
        if self.assignments is not None:
            described["values" if self.action == "insert" else "set"] = dict(self.assignments)
        return described


@dataclass(frozen=True)
class MergeCounts:
    """What a merge does (or did): rows inserted, rows updated (whose values change) and rows deleted."""

    inserted: int
    updated: int
    deleted: int


@dataclass
class MergeBuilder:
    """`Table.merge(...)`: add clauses (each method returns the builder), then `execute()` or `dry_run()`."""

    table: Table
    source: pa.Table
    on: str | tuple[str, ...]
    source_alias: str = "source"
    target_alias: str = "target"
    info: CommitInfo = field(default_factory=CommitInfo)
    clauses: list[Clause] = field(default_factory=list)

    def when_matched_update(self, set: dict[str, str], condition: str | None = None) -> MergeBuilder:
        return self._add(Clause(MATCHED, "update", condition, _assignments(set, "set")))

    def when_matched_update_all(self, condition: str | None = None) -> MergeBuilder:
        return self._add(Clause(MATCHED, "update", condition))

    def when_matched_delete(self, condition: str | None = None) -> MergeBuilder:
        return self._add(Clause(MATCHED, "delete", condition))

    def when_not_matched_insert(self, values: dict[str, str], condition: str | None = None) -> MergeBuilder:
        return self._add(Clause(NOT_MATCHED, "insert", condition, _assignments(values, "values")))

    def when_not_matched_insert_all(self, condition: str | None = None) -> MergeBuilder:
        return self._add(Clause(NOT_MATCHED, "insert", condition))

    def when_not_matched_by_source_update(self, set: dict[str, str], condition: str | None = None) -> MergeBuilder:
        return self._add(Clause(BY_SOURCE, "update", condition, _assignments(set, "set")))

    def when_not_matched_by_source_delete(self, condition: str | None = None) -> MergeBuilder:
        return self._add(Clause(BY_SOURCE, "delete", condition))

    @overload
    def execute(self, *, dry_run: Literal[False] = False) -> Commit: ...

    @overload
    def execute(self, *, dry_run: Literal[True]) -> MergeCounts: ...

    def execute(self, *, dry_run: bool = False) -> Commit | MergeCounts:
        """Commit the merge as one version (operation MERGE); with dry_run=True, only count what it would do."""
        if not self.clauses:
            raise InvalidInputError(self.clauses, "a merge needs at least one when_... clause")
        if dry_run:
            changes = self.changes(self.table._head())
            return MergeCounts(changes.count(INSERT), changes.count(UPDATE), changes.count(DELETE))
        return commit(self.table, "MERGE", self.changes, self.info)

    def dry_run(self) -> MergeCounts:
        """The rows the merge would insert, update and delete against the current head; nothing is written."""
        return self.execute(dry_run=True)

    def changes(self, head: Head) -> ChangeSet:
        """The merge's change rows against `head` (pure: nothing is written)."""
        return _Merge(self, head).change_set()

    def _add(self, clause: Clause) -> MergeBuilder:
        if clause.condition is not None and (not isinstance(clause.condition, str) or not clause.condition.strip()):
            raise InvalidExpressionError(str(clause.condition), "a clause's condition must be a non-empty SQL expression string (or None)")
        self.clauses.append(clause)
        return self


def builder(
    table: Table,
    source: DataLike,
    *,
    on: str | Sequence[str],
    source_alias: str = "source",
    target_alias: str = "target",
    info: CommitInfo,
) -> MergeBuilder:
    """The builder of `Table.merge`: the source read into Arrow, `on` and the aliases checked by their shape."""
    data = to_arrow(source)
    if _POS in data.column_names:
        raise InvalidInputError(_POS, f"the source has a column named {_POS!r}, which merge uses itself")
    for alias in (source_alias, target_alias):
        if not isinstance(alias, str) or not alias.strip():
            raise InvalidInputError(alias, f"an alias must be a non-empty string, not {alias!r}")
    if source_alias.lower() == target_alias.lower():
        raise InvalidInputError(source_alias, f"the source and target aliases must differ (both are {source_alias!r})")
    if isinstance(on, str):
        condition: str | tuple[str, ...] = on
    elif isinstance(on, Sequence) and on and all(isinstance(c, str) and c for c in on):
        condition = tuple(on)
    else:
        raise InvalidInputError(on, "on= must be a column name, a list of column names or a SQL join predicate")
    return MergeBuilder(table, data, condition, source_alias, target_alias, info)


def _assignments(values, what: str) -> dict[str, str]:
    if not isinstance(values, dict) or not values:
        raise InvalidExpressionError(str(values), f"{what}= must be a non-empty dict of column: SQL expression")
    for column, expression in values.items():
        if not isinstance(column, str) or not isinstance(expression, str) or not expression.strip():
            raise InvalidExpressionError(str(expression), f"{what}= maps column names to SQL expression strings ({column!r})")
    return dict(values)


class _Merge:
    """One run of a merge against one head."""

    def __init__(self, merge: MergeBuilder, head: Head):
        self.merge, self.head, self.con = merge, head, head.con
        self.columns: tuple[Column, ...] = head.columns
        if not self.columns:
            raise SchemaMismatchError([f"table {head.table_name!r} has no columns yet: append to it before merging"])
        self.source = merge.source.append_column(_POS, pa.array(range(merge.source.num_rows), pa.int64()))
        self.s, self.t = quote(merge.source_alias), quote(merge.target_alias)
        self.by_name = {c.name: c for c in self.columns}
        self.on_columns = self._on_columns()

    # --- checks ---------------------------------------------------------------------------------------------------

    def _on_columns(self) -> tuple[str, ...] | None:
        """`on` as column names (in both source and target), or None when it is a SQL predicate."""
        on = self.merge.on
        names = (on,) if isinstance(on, str) else on
        in_both = all(n in self.by_name and n in self.source.column_names for n in names)
        if isinstance(on, tuple) and not in_both:
            missing = [n for n in on if n not in self.by_name or n not in self.source.column_names]
            raise SchemaMismatchError([f"merge on= column {n!r} is not a column of both the source and the table" for n in missing])
        return names if in_both else None

    def _check(self, expression: str, aliases: str, kind: str) -> None:
        """expressions' checks of one scalar expression, bound against the aliases it may use ('st', 's' or 't');
        remembered (the check is pure: the same text over the same columns passes or fails alike)."""
        remembered = (expression, aliases, self.merge.source_alias, self.merge.target_alias, self.source_columns(), self.columns)
        if remembered in _checked:
            return
        self._check_once(expression, aliases, kind)
        if len(_checked) > 1024:
            _checked.clear()
        _checked.add(remembered)

    def _check_once(self, expression: str, aliases: str, kind: str) -> None:
        expressions._checked_tree(self.con, expression, kind)
        probe = []
        if "s" in aliases:
            probe.append(f"{_probe(self.source_columns())} AS {self.s}")
        if "t" in aliases:
            probe.append(f"{_probe(self.columns)} AS {self.t}")
        try:
            self.con.execute(f"SELECT 1 FROM {', '.join(probe)} WHERE (({expression}) IS NULL OR true) LIMIT 0").fetchall()
        except duckdb.Error as e:
            raise InvalidExpressionError(expression, expressions._message(e)) from None

    @cached_property
    def _source_columns(self) -> tuple[Column, ...]:
        rel = self.con.from_arrow(self.source.schema.empty_table())
        return tuple(Column(name, str(t)) for name, t in zip(rel.columns, rel.types) if name != _POS)

    def source_columns(self) -> tuple[Column, ...]:
        """The source's columns, typed as DuckDB reads them."""
        return self._source_columns

    def check_clauses(self) -> None:
        if self.on_columns is None:
            self._check(str(self.merge.on), "st", "merge condition")
        aliases = {MATCHED: "st", NOT_MATCHED: "s", BY_SOURCE: "t"}
        source_names = set(self.source.column_names)
        for clause in self.merge.clauses:
            if clause.condition is not None:
                self._check(clause.condition, aliases[clause.kind], f"{clause.name} condition")
            if clause.action == "delete":
                continue
            if clause.assignments is None:
                missing = [c.name for c in self.columns if c.name not in source_names]
                if missing:
                    raise SchemaMismatchError([f"{clause.name} needs source column {n!r} (the table has it)" for n in missing])
                continue
            for name, expression in clause.assignments.items():
                if name not in self.by_name:
                    raise SchemaMismatchError([f"{clause.name} sets unknown column {name!r} (columns: {', '.join(self.by_name)})"])
                self._check(expression, aliases[clause.kind], f"{clause.name} expression")

    # --- SQL ------------------------------------------------------------------------------------------------------

    def value_sql(self, clause: Clause, column: Column) -> str:
        """The new value of `column` under an update or insert clause."""
        if clause.assignments is None:
            expression = f"{self.s}.{quote(column.name)}"
        elif column.name in clause.assignments:
            expression = f"({clause.assignments[column.name]})"
        elif clause.action == "update":
            return f"{self.t}.{quote(column.name)}"
        else:
            return f"CAST(NULL AS {column.type})"
        return f"CAST({expression} AS {column.type})"

    def on_sql(self) -> str:
        if self.on_columns is None:
            return f"({self.merge.on})"
        return " AND ".join(f"{self.s}.{quote(n)} = {self.t}.{quote(n)}" for n in self.on_columns)

    def clause_sql(self) -> str:
        """The index of the clause each joined row takes (NULL: none), the first of its kind whose condition holds."""
        cases = []
        for kind, test in ((MATCHED, f"{self.s}.{_POS} IS NOT NULL AND {self.t}.{ROW_ID} IS NOT NULL"), (NOT_MATCHED, f"{self.t}.{ROW_ID} IS NULL"), (BY_SOURCE, f"{self.s}.{_POS} IS NULL")):
            whens = [f"WHEN {c.condition or 'true'} THEN {i}" for i, c in enumerate(self.merge.clauses) if c.kind == kind]
            if whens:
                cases.append(f"WHEN {test} THEN (CASE {' '.join(whens)} END)")
        return f"(CASE {' '.join(cases)} END)"

    def join_type(self) -> str:
        kinds = {c.kind for c in self.merge.clauses}
        if NOT_MATCHED in kinds and BY_SOURCE in kinds:
            return "FULL OUTER"
        if NOT_MATCHED in kinds:
            return "LEFT OUTER"
        if BY_SOURCE in kinds:
            return "RIGHT OUTER"
        return "INNER"

    def change_sql(self, target: str) -> str:
        clauses = self.merge.clauses
        chosen = self.clause_sql()
        op = "CASE " + " ".join(f"WHEN {_CLAUSE} = {i} THEN '{_op(c)}'" for i, c in enumerate(clauses)) + " END"
        images = []
        for column in self.columns:
            whens = " ".join(f"WHEN {i} THEN {self.value_sql(c, column)}" for i, c in enumerate(clauses) if c.action != "delete")
            images.append(f"CASE {_CLAUSE} {whens} ELSE CAST(NULL AS {column.type}) END AS {quote(column.name)}" if whens else f"CAST(NULL AS {column.type}) AS {quote(column.name)}")
        olds = [f"{self.t}.{quote(c.name)} AS {_OLD}{i}" for i, c in enumerate(self.columns)]
        if self.head.key and self.on_columns is not None:
            olds += [f"{self.s}.{quote(k)} AS {_SRC}{i}" for i, k in enumerate(self.head.key) if k in self.on_columns]
        old_hash = f"CASE WHEN {self.t}.{ROW_ID} IS NULL THEN 0::UBIGINT ELSE {fingerprint.row_hash_sql(self.columns, self.t)} END AS {OLD_HASH}"
        joined = f"""
            SELECT {self.s}.{_POS} AS {_POS}, {self.t}.{ROW_ID} AS {_TID}, {chosen} AS {_CLAUSE},
                   {', '.join(images)}, {', '.join(olds)}, {old_hash}
            FROM {_SOURCE_TABLE} AS {self.s} {self.join_type()} JOIN {target} AS {self.t} ON {self.on_sql()}"""
        updates = ", ".join(str(i) for i, c in enumerate(clauses) if c.action == "update") or "-1"
        differs = " OR ".join(f"j.{quote(c.name)} IS DISTINCT FROM j.{_OLD}{i}" for i, c in enumerate(self.columns))
        start = self.head.record.next_row_id
        row_id = f"CASE WHEN {_TID} IS NULL THEN {start} - 1 + row_number() OVER (PARTITION BY {_TID} IS NULL ORDER BY {_POS}) ELSE {_TID} END"
        acted = f"""
            SELECT {row_id} AS {ROW_ID}, {op} AS {OP}, {', '.join(f'j.{quote(c.name)}' for c in self.columns)}, {OLD_HASH},
                   {self.moved_sql()} AS {_MOVED}
            FROM ({joined}) AS j
            WHERE {_CLAUSE} IS NOT NULL AND ({_CLAUSE} NOT IN ({updates}) OR {differs})"""
        if self.deletes_repeat():  # several source rows may delete one target row: one change row for it
            acted += f" QUALIFY row_number() OVER (PARTITION BY coalesce({_TID}, -1 - {_POS}) ORDER BY {_POS}) = 1"
        new_hash = f"CASE WHEN {OP} = '{DELETE}' THEN 0::UBIGINT ELSE {fingerprint.row_hash_sql(self.columns, 'a')} END AS {NEW_HASH}"
        return f"SELECT a.*, {new_hash} FROM ({acted}) AS a ORDER BY {ROW_ID}"

    def moved_sql(self) -> str:
        """Whether a change row's key may clash with a row the merge leaves alone: an update changing the key, an
        insert, except an insert whose key is its source row's `on` values when `on` is the key (no head row holds
        those, or the source row would have matched it)."""
        key = self.head.key
        if not key:
            return "false"
        changed = " OR ".join(f"j.{quote(k)} IS DISTINCT FROM j.{_OLD}{self.columns.index(self.by_name[k])}" for k in key)
        if self.on_columns is not None and set(self.on_columns) == set(key):
            fresh = " OR ".join(f"j.{quote(k)} IS DISTINCT FROM j.{_SRC}{i}" for i, k in enumerate(key))
        else:
            fresh = "true"
        return f"CASE WHEN {_TID} IS NULL THEN ({fresh}) ELSE ({changed}) END"

    # --- the run --------------------------------------------------------------------------------------------------

    def change_set(self) -> ChangeSet:
        self.check_clauses()
        self.con.register(_SOURCE_TABLE, self.source)
        registered = [_SOURCE_TABLE]
        try:
            target = self.target_relation(registered)
            self.check_multiple_matches(target)
            rows = self.head.run(self.change_sql(target), expression=self.describe())
        finally:
            for name in registered:
                self.con.unregister(name)
        if self.head.key:
            self.check_keys(rows)
        return operations._change_set(rows, self.columns, self.head, parameters=self.parameters())

    def target_relation(self, registered: list[str]) -> str:
        """The target rows the join needs: all of the head's, or, when `on` names columns and no clause acts on
        unmatched target rows, those holding the source's `on` values (via the key lookup when there is one)."""
        if self.on_columns is None or any(c.kind == BY_SOURCE for c in self.merge.clauses):
            return self.state()
        if self.head.lookup is not None and len(self.on_columns) == 1 and self.source.num_rows:
            column = self.on_columns[0]
            values = self.source.column(column).combine_chunks()
            if pa.types.is_integer(values.type) and values.null_count == 0:
                rows = self.head.lookup(column, values)
                if rows is not None:
                    self.con.register(_TARGET_TABLE, rows)
                    registered.append(_TARGET_TABLE)
                    return f"(SELECT {ROW_ID}, {_names(self.columns)} FROM {_TARGET_TABLE})"
        match = " AND ".join(f"h.{quote(n)} = m.{quote(n)}" for n in self.on_columns)
        return f"(SELECT h.{ROW_ID}, {', '.join(f'h.{quote(c.name)}' for c in self.columns)} FROM {self.state()} AS h SEMI JOIN {_SOURCE_TABLE} AS m ON {match})"

    def state(self) -> str:
        """Every row of the head (read through the head cache's table when there is one)."""
        return f"(SELECT {ROW_ID}, {_names(self.columns)} FROM {self.head.state_sql()})"

    def deletes_repeat(self) -> bool:
        """Whether the only matched clause is an unconditional delete: Delta Lake's exception to its rule."""
        matched = [c for c in self.merge.clauses if c.kind == MATCHED]
        return len(matched) == 1 and matched[0].action == "delete" and matched[0].condition is None

    def check_multiple_matches(self, target: str) -> None:
        """Delta Lake's rule: a target row matched by two source rows that each take a matched clause (the first
        whose condition holds) is an error, unless the only matched clause is an unconditional delete."""
        if not any(c.kind == MATCHED for c in self.merge.clauses) or self.deletes_repeat():
            return
        if self.on_columns is not None and _distinct(self.source, self.on_columns):
            return  # rows matching one target row hold the same `on` values: with distinct values, none can
        shown = self.head.key or self.on_columns or tuple(c.name for c in self.columns)
        select = ", ".join(f"any_value({self.t}.{quote(n)})" for n in shown)
        sql = f"""
            SELECT {select}, count(*) FROM {_SOURCE_TABLE} AS {self.s} JOIN {target} AS {self.t} ON {self.on_sql()}
            WHERE {self.clause_sql()} IS NOT NULL GROUP BY {self.t}.{ROW_ID} HAVING count(*) > 1 ORDER BY ALL LIMIT 6"""
        rows = self.head.run(sql, expression=str(self.merge.on))
        if rows.num_rows:
            values = [tuple(r.values())[:-1] for r in rows.to_pylist()]
            raise MergeMatchError(self.head.table_name, list(shown), [v[0] if len(v) == 1 else v for v in values])

    def check_keys(self, rows: pa.Table) -> None:
        """Key rules on the result: the new images' keys are valid and distinct, and no row the merge leaves as it
        was holds the key of an inserted row or of a row whose key an update changes."""
        images = rows.filter(pc.not_equal(rows.column(OP), DELETE))
        if images.num_rows == 0:
            return
        operations._check_batch_keys(self.head, images)
        changed = rows.column(ROW_ID)
        images = images.filter(images.column(_MOVED))
        if images.num_rows == 0:
            return
        key = list(self.head.key)
        self.con.register("logstore_merge_images", images.select([ROW_ID, *key]))
        self.con.register("logstore_merge_changed", pa.table({ROW_ID: changed}))
        try:
            cols = ", ".join(quote(k) for k in key)
            held = f"(SELECT {ROW_ID}, {cols} FROM {self.head.state_sql()})"
            if len(key) == 1 and self.head.lookup is not None and pa.types.is_integer(images.schema.field(key[0]).type):
                found = self.head.lookup(key[0], images.column(key[0]).combine_chunks())
                if found is not None:
                    self.con.register("logstore_merge_held", found.select([ROW_ID, *key]))
                    held = "logstore_merge_held"
            match = " AND ".join(f"h.{quote(k)} = i.{quote(k)}" for k in key)
            sql = f"""
                SELECT {', '.join(f'h.{quote(k)}' for k in key)} FROM {held} AS h JOIN logstore_merge_images AS i ON {match}
                WHERE h.{ROW_ID} <> i.{ROW_ID} AND h.{ROW_ID} NOT IN (SELECT {ROW_ID} FROM logstore_merge_changed)
                ORDER BY ALL LIMIT 6"""
            clashes = self.con.execute(sql).fetchall()
        finally:
            for name in ("logstore_merge_images", "logstore_merge_changed", "logstore_merge_held"):
                try:
                    self.con.unregister(name)
                except duckdb.Error:
                    pass
        if clashes:
            raise KeyViolationError(key, "values already in the table (the merge would duplicate them)", [r[0] if len(r) == 1 else r for r in clashes])

    def describe(self) -> str:
        parts = [f"on {self.merge.on}"] + [
            f"{c.name}" + (f" when {c.condition}" if c.condition else "") + (f" {c.assignments}" if c.assignments else "") for c in self.merge.clauses
        ]
        return "; ".join(parts)

    def parameters(self) -> dict:
        on = self.merge.on
        return {
            "on": list(on) if isinstance(on, tuple) else on,
            "source_alias": self.merge.source_alias,
            "target_alias": self.merge.target_alias,
            "source_rows": self.merge.source.num_rows,
            "clauses": [c.parameters() for c in self.merge.clauses],
        }


def _op(clause: Clause) -> str:
    return {"update": UPDATE, "delete": DELETE, "insert": INSERT}[clause.action]


def _names(columns) -> str:
    return ", ".join(quote(c.name) for c in columns)


def _distinct(table: pa.Table, names: tuple[str, ...]) -> bool:
    """Whether no two rows of `table` hold the same non-NULL values in `names` (NULLs match nothing)."""
    if len(names) == 1 and pa.types.is_integer(table.schema.field(names[0]).type):
        # numpy for one integer column: Arrow's group_by imports pyarrow.acero on first use (~15 ms of a first merge)
        values = table.column(names[0]).drop_null().to_numpy()
        return len(np.unique(values)) == len(values)
    keys = table.select(list(names))
    for name in names:
        keys = keys.filter(pc.is_valid(keys.column(name)))
    if keys.num_rows < 2:
        return True
    try:
        return keys.group_by(list(names)).aggregate([]).num_rows == keys.num_rows
    except pa.ArrowException:  # a type Arrow cannot group (nested): the query decides
        return False


def _probe(columns: tuple[Column, ...]) -> str:
    values = ", ".join(f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in columns) or "NULL AS _none"
    return f"(SELECT {values}, NULL::BIGINT AS {ROW_ID})"
