"""Turning each write operation into change rows against the head version.

Every function here gets the head (its commit record and its materialization plan) and returns a ChangeSet: the
rows to append to the change log (_row_id, _op, then the table's columns) and what they do. They are pure with
respect to the store: nothing is written here, so a conflicting commit can simply re-run them on the new head.
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property

import duckdb
import pyarrow as pa

from . import evolution, expressions, fingerprint, statistics
from .errors import InvalidExpressionError, KeyRequiredError, KeyViolationError, SchemaMismatchError
from .log import CommitRecord
from .materialize import DELETE, INSERT, OP, ROW_ID, UPDATE, VERSION, Plan
from .schema import Column, arrow_schema, conform, quote

OLD_HASH = "__old_hash"
NEW_HASH = "__new_hash"
_OLD_VALUE = "__old_value_"  # update: the old value of the i-th assigned column, next to its new value


@dataclass(frozen=True)
class ChangeSet:
    rows: pa.Table  # _row_id, _op, then `columns`
    columns: tuple[Column, ...]  # the table's columns after this commit
    next_row_id: int
    parameters: dict = field(default_factory=dict)
    properties: dict | None = None  # new table properties, if this commit changes them
    old_hash: int | None = None  # sum of fingerprint row hashes of the changed rows' old images, if computed here
    new_hash: int | None = None  # the same for their new images (0 for deletes), if computed here
    num_rows: int | None = None  # rows after this commit, when the counts of change rows cannot tell (reset)
    fingerprint: int | None = None  # the fingerprint after this commit, when known without the head's rows (reset)
    key: tuple[str, ...] | None = None  # the key after this commit, if it changes it (ALTER renaming a key column)
    preimages: bool = False  # every delete row holds the deleted row's values (format 5; changes.py reads them)

    def count(self, op: str) -> int:
        import pyarrow.compute as pc  # imported where used: reads (the CLI's diff) never need it

        if self.rows.num_rows == 0:
            return 0
        return int(pc.sum(pc.equal(self.rows.column(OP), op)).as_py() or 0)


@dataclass(frozen=True)
class Head:
    """What an operation sees: the latest commit record, its plan and a DuckDB cursor to run SQL on.

    `plan` reads the head from the store's files; `state_plan` is the plan an operation reads the head's rows
    through, which `state` may point at the writer's decoded head (headcache.py). It is asked for only by the
    operations that read the state, so an append never builds a cache.
    """

    record: CommitRecord
    plan: Plan
    con: duckdb.DuckDBPyConnection
    table_name: str
    state: Callable[[], Plan] | None = None
    # the head's rows whose column holds one of the values (headcache.HeadCache.rows_where_in), None if unknown
    lookup: Callable[[str, pa.Array], pa.Table | None] | None = None

    @cached_property
    def state_plan(self) -> Plan:
        return self.state() if self.state is not None else self.plan

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.record.columns

    @property
    def key(self) -> tuple[str, ...]:
        return self.record.key

    def state_sql(self) -> str:
        return f"({self.state_plan.relation_sql()})"

    def run(self, sql: str, *, expression: str | None = None, where: str | None = None) -> pa.Table:
        """Run an operation's SQL; a DuckDB error names the user's expression (the predicate if it is at fault).

        Predicates are not bound before the run (see _predicate); on failure binding `where` alone tells whether
        it is the expression at fault.
        """
        try:
            return run_arrow(self.con, sql)
        except duckdb.Error as e:
            if expression is None:
                raise
            if where is not None:
                expressions.check(self.con, where, self.columns, kind="predicate")
            raise InvalidExpressionError(expression, expressions._message(e)) from None


def run_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The rows of one query (small: a commit's change rows) as an Arrow table, the query bound once.

    DuckDB's con.sql(q) parses and binds q to describe the relation, and to_arrow_table() parses and binds it again
    to run it: for the big expressions of an update (two row hashes per row) the second bind is ~2 ms. execute()
    binds once; its result as Arrow costs a copy, negligible for a commit's change rows, and a warning saying so."""
    result = con.execute(sql)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return result.to_arrow_table()


def append(head: Head, data: pa.Table, *, merge: bool) -> ChangeSet:
    batch, columns = _conform(head, data, merge)
    if head.key:
        _check_batch_keys(head, batch)
        _check_new_keys(head, batch)
    ids = pa.array(range(head.record.next_row_id, head.record.next_row_id + batch.num_rows), pa.int64())
    rows = _with_change_columns(batch, ids, INSERT)
    return ChangeSet(rows, columns, head.record.next_row_id + batch.num_rows)


def upsert(head: Head, data: pa.Table, *, merge: bool) -> ChangeSet:
    if not head.key:
        raise KeyRequiredError(head.table_name, "upsert")
    batch, columns = _conform(head, data, merge)
    _check_batch_keys(head, batch)
    head.con.register("upsert_batch", _with_position(batch))
    try:
        rows = head.run(upsert_sql(head, columns))
    finally:
        head.con.unregister("upsert_batch")
    return _change_set(rows, columns, head)


def upsert_sql(head: Head, columns) -> str:
    """The change rows of upserting `upsert_batch` (the conformed input with its position, __pos) into the head."""
    on = " AND ".join(f"b.{quote(k)} = h.{quote(k)}" for k in head.key)
    old, added = _split(columns, head.columns)
    changed = _any_distinct("b", "h", [c for c in old if c.name not in head.key])
    changed = " OR ".join(filter(None, [changed] + [f"b.{quote(c.name)} IS NOT NULL" for c in added])) or "false"
    return f"""
        SELECT {_new_or_existing_id(head, 'h', 'b')} AS {ROW_ID},
               CASE WHEN h.{ROW_ID} IS NULL THEN '{INSERT}' ELSE '{UPDATE}' END AS {OP},
               {', '.join(f'b.{quote(c.name)}' for c in columns)}
        FROM upsert_batch b LEFT JOIN (SELECT {ROW_ID}, {_names(head.columns)} FROM {head.state_sql()}) h ON {on}
        WHERE h.{ROW_ID} IS NULL OR {changed}
        ORDER BY {ROW_ID}"""


def overwrite_sql(head: Head, columns) -> str:
    """The change rows of making `overwrite_batch` (the conformed input with __pos) the table's rows."""
    return _overwrite_by_key_sql(head, columns) if head.key else _overwrite_by_rows_sql(head, columns)


def update(head: Head, assignments: dict, where: str | None) -> ChangeSet:
    """Change rows for the rows matching `where` whose new image differs from the old one (IS DISTINCT FROM on an
    assigned column); a matching row the assignments leave as it was is no change: not counted, not written, not in
    the change feed. An update that changes no row still commits (a version with no change rows), like upsert and
    overwrite of unchanged data."""
    if not isinstance(assignments, dict) or not assignments:
        raise InvalidExpressionError(str(assignments), "set= must be a non-empty dict of column: SQL expression")
    by_name = {c.name: c for c in head.columns}
    for name, expression in assignments.items():
        if name not in by_name:
            raise SchemaMismatchError([f"update sets unknown column {name!r} (columns: {', '.join(by_name)})"])
        if name in head.key:
            raise InvalidExpressionError(str(expression), f"key column {name!r} cannot be updated; delete the row and append it")
        _check_set_expression(head.con, expression, by_name[name], head.columns)
    select = ", ".join(
        f"CAST(({assignments[c.name]}) AS {c.type}) AS {quote(c.name)}" if c.name in assignments else quote(c.name)
        for c in head.columns
    )
    # only rows whose new image differs from the old one are changes: each assigned column's new value is computed
    # once, in the inner query, next to its old value, and compared with IS DISTINCT FROM (the rule upsert and
    # overwrite use); unchanged rows are neither counted nor written, so neither hash sum covers them
    set_columns = [c for c in head.columns if c.name in assignments]
    olds = ", ".join(f"t.{quote(c.name)} AS {quote(_OLD_VALUE + str(i))}" for i, c in enumerate(set_columns))
    differs = " OR ".join(f"u.{quote(c.name)} IS DISTINCT FROM u.{quote(_OLD_VALUE + str(i))}" for i, c in enumerate(set_columns))
    old_hash = f"{fingerprint.row_hash_sql(head.columns, 't')} AS {OLD_HASH}"  # the content fingerprint's old images
    with _predicate(head, where) as (predicate, state):
        changed = f"SELECT {ROW_ID}, '{UPDATE}' AS {OP}, {select}, {old_hash}, {olds} FROM {state} AS t WHERE {predicate}"
        new_hash = f"{fingerprint.row_hash_sql(head.columns, 'u')} AS {NEW_HASH}"  # and the new images, in the same query
        kept = ", ".join([ROW_ID, OP, *(f"u.{quote(c.name)}" for c in head.columns), OLD_HASH])
        sql = f"SELECT {kept}, {new_hash} FROM ({changed}) AS u WHERE {differs} ORDER BY {ROW_ID}"
        rows = head.run(sql, expression=", ".join(f"{k} = {v}" for k, v in assignments.items()), where=where)
    return _change_set(rows, head.columns, head, parameters={"set": dict(assignments), "where": where})


def delete(head: Head, where: str | None) -> ChangeSet:
    """Delete rows for the rows matching `where`, each holding the row's values (its pre-image, format 5: the
    change feed reads it instead of looking the row up in older files)."""
    values = ", ".join(f"t.{quote(c.name)}" for c in head.columns)
    old_hash = f"{fingerprint.row_hash_sql(head.columns, 't')} AS {OLD_HASH}"  # the content fingerprint's old images
    with _predicate(head, where) as (predicate, state):
        no_new = f"0::UBIGINT AS {NEW_HASH}"  # deletes leave no new images
        sql = f"SELECT {ROW_ID}, '{DELETE}' AS {OP}{', ' + values if values else ''}, {old_hash}, {no_new} FROM {state} AS t WHERE {predicate} ORDER BY {ROW_ID}"
        rows = head.run(sql, expression=where, where=where)
    return replace(_change_set(rows, head.columns, head, parameters={"where": where}), preimages=True)


def delete_keys(head: Head, keys: pa.Table) -> ChangeSet:
    """Change rows deleting the head's rows whose key is one of `keys` (a table of the key columns; keys that are
    not in the head are no change). For a writer that knows the keys, e.g. the paths a folder no longer holds."""
    if not head.key:
        raise KeyRequiredError(head.table_name, "delete by key")
    nulls = ", ".join(f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in head.columns)
    on = " AND ".join(f"h.{quote(k)} = k.{quote(k)}" for k in head.key)
    head.con.register("deleted_keys", keys.select(list(head.key)))
    try:
        sql = f"""
            SELECT h.{ROW_ID}, '{DELETE}' AS {OP}{', ' + nulls if nulls else ''}
            FROM {head.state_sql()} h SEMI JOIN deleted_keys k ON {on}
            ORDER BY {ROW_ID}"""
        rows = head.run(sql)
    finally:
        head.con.unregister("deleted_keys")
    return _change_set(rows, head.columns, head)


def overwrite(head: Head, data: pa.Table, *, merge: bool) -> ChangeSet:
    batch, columns = _conform(head, data, merge)
    if head.key:
        _check_batch_keys(head, batch)
    head.con.register("overwrite_batch", _with_position(batch))
    try:
        sql = _overwrite_by_key_sql(head, columns) if head.key else _overwrite_by_rows_sql(head, columns)
        rows = head.run(sql)
    finally:
        head.con.unregister("overwrite_batch")
    return _change_set(rows, columns, head)


def restore(head: Head, target: Plan, target_fingerprint: int | None = None) -> ChangeSet:
    """Change rows that turn the head into the target version's rows (and columns), matched by row id. A row is
    kept where reading its current image in the target's columns gives the target's values: when the columns
    differ (an ALTER in between), each head row is read from its files by column identity (evolution.py), as the
    restored version will read it, and compared as text. The content equals the target's, so its fingerprint is
    the target's when known."""
    columns = evolution.explicit(target.columns) if evolution.has_ids(head.columns) else target.columns
    if not evolution.has_ids(head.columns):  # never altered: columns are matched by name, as before format 4
        state = head.state_sql()
        old, added = _split(columns, head.columns)  # `added`: columns the target has and the head dropped by a restore
        held = _names(old)
        differs = " OR ".join(filter(None, [_any_distinct("t", "h", old)] + [f"t.{quote(c.name)} IS NOT NULL" for c in added]))
    elif tuple(columns) == tuple(head.columns):
        state = head.state_sql()
        held = _names(columns)
        differs = _any_distinct("t", "h", columns)
    else:
        probe = replace(head.plan, columns=evolution.probe(columns))
        state = f"({probe.relation_sql()})"
        held = _names(probe.columns)
        differs = " OR ".join(f"CAST(t.{quote(c.name)} AS VARCHAR) IS DISTINCT FROM h.{quote(p.name)}" for c, p in zip(columns, probe.columns))
    sql = f"""
        SELECT coalesce(t.{ROW_ID}, h.{ROW_ID}) AS {ROW_ID},
               CASE WHEN h.{ROW_ID} IS NULL THEN '{INSERT}' WHEN t.{ROW_ID} IS NULL THEN '{DELETE}' ELSE '{UPDATE}' END AS {OP},
               {', '.join(f't.{quote(c.name)}' for c in columns)}
        FROM ({target.relation_sql()}) t FULL OUTER JOIN (SELECT {ROW_ID}, {held or 'NULL AS _none'} FROM {state}) h
             ON t.{ROW_ID} = h.{ROW_ID}
        WHERE h.{ROW_ID} IS NULL OR t.{ROW_ID} IS NULL {('OR ' + differs) if differs else ''}
        ORDER BY {ROW_ID}"""
    rows = head.run(sql)
    return replace(_change_set(rows, columns, head, parameters={"version": target.version}), fingerprint=target_fingerprint)


def reset(head: Head, target: Plan, target_fingerprint: int) -> ChangeSet:
    """Change rows that make the target version's rows the table's state without reading the head's rows (which
    cannot be read): every target row as an update, and a delete of every other row id the table ever used."""
    rows_sql = f"({target.relation_sql()})"
    nulls = ", ".join(f"NULL AS {quote(c.name)}" for c in target.columns)
    sql = f"""
        SELECT {ROW_ID}, '{UPDATE}' AS {OP}, {_names(target.columns)} FROM {rows_sql} t
        UNION ALL
        SELECT range AS {ROW_ID}, '{DELETE}' AS {OP}, {nulls} FROM range(0, {int(head.record.next_row_id)})
        WHERE range NOT IN (SELECT {ROW_ID} FROM {rows_sql} k)
        ORDER BY {ROW_ID}"""
    columns = evolution.explicit(target.columns) if evolution.has_ids(head.columns) else target.columns  # as restore
    changes = _change_set(head.run(sql), columns, head, parameters={"version": target.version, "reset": True})
    return replace(changes, num_rows=changes.count(UPDATE), fingerprint=target_fingerprint)


def set_properties(head: Head, properties: dict) -> ChangeSet:
    rows = _change_set(pa.table({}), head.columns, head).rows.slice(0, 0)
    merged = {**head.record.properties, **properties}
    return ChangeSet(rows, head.columns, head.record.next_row_id, {"properties": dict(properties)}, merged)


# --- building blocks ---------------------------------------------------------------------------------------------


def _conform(head: Head, data: pa.Table, merge: bool):
    # a table created without a schema takes the schema of its first data
    return conform(data, head.columns, merge=merge or not head.columns)


@contextmanager
def _predicate(head: Head, where: str | None):
    """The SQL of a predicate and of the head rows to apply it to, for the duration of the block.

    Checked for shape here; bound when it runs (Head.run), which saves binding 1,000-constant IN lists twice. A long
    IN list is a registered Arrow array; if it tests the key, the rows to apply it to are only the head rows holding
    those keys, found by the head cache's key lookup when there is one (the predicate is still applied to them, so
    the result is the same as over every row), else the whole head state.
    """
    if where is None:
        yield "true", head.state_sql()
        return
    in_list = _plain_in_list(head.con, where, head.columns)
    text = where
    if in_list is None:
        text, in_list = expressions.predicate(head.con, where, head.columns)
    if in_list is None:
        yield f"({text})", head.state_sql()
        return
    name = f"logstore_in_list_{uuid.uuid4().hex}"
    head.con.register(name, pa.table({"v": in_list.values}))
    rows = head.lookup(in_list.column, in_list.values) if head.lookup is not None else None
    if rows is not None:
        head.con.register(f"{name}_rows", rows)
    try:
        yield f"({quote(in_list.column)} IN (SELECT v FROM {name}))", head.state_sql() if rows is None else f"{name}_rows"
    finally:
        head.con.unregister(name)
        if rows is not None:
            head.con.unregister(f"{name}_rows")


# `<column> IN (<integer>, ...)`, nothing else: one safe scalar expression by its shape alone (no statement, FROM or
# subquery can hide in it), so its constants need not go through DuckDB's parser (~3 ms for 1,000 of them)
_PLAIN_IN = re.compile(r'\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)\s+IN\s*\(\s*([0-9]+(?:\s*,\s*[0-9]+)*)\s*\)\s*', re.IGNORECASE)
_keywords: dict[str, str] = {}


def _plain_in_list(con: duckdb.DuckDBPyConnection, where: str, columns) -> expressions.InList | None:
    """The InList expressions.predicate would find in `where` when it is a plain `column IN (<integers>)`, read
    without DuckDB's parser; None for any other text (expressions.predicate then decides). An unquoted column name
    that is a DuckDB keyword (other than an unreserved one) is left to the parser too, which may refuse it."""
    match = _PLAIN_IN.fullmatch(where)
    if match is None:
        return None
    ident, body = match.groups()
    if ident.startswith('"'):
        name = ident[1:-1].replace('""', '"')
    else:
        if not _keywords:
            _keywords.update(con.execute("SELECT lower(keyword_name), keyword_category FROM duckdb_keywords()").fetchall())
        if _keywords.get(ident.lower(), "unreserved") != "unreserved":
            return None
        name = ident
    texts = body.split(",")
    if len(texts) < expressions.IN_LIST_MIN:
        return None
    matches = [c for c in columns if c.name == name] or [c for c in columns if c.name.lower() == name.lower()]
    if len(matches) != 1 or matches[0].type.upper() not in expressions._INTEGER_TYPES:
        return None
    try:
        values = pa.array([int(t) for t in texts], pa.int64())
    except (OverflowError, pa.ArrowException):  # beyond BIGINT: as expressions.predicate, no InList
        return None
    return expressions.InList(matches[0].name, values)


_checked_sets: dict[tuple, bool] = {}  # (SET expression, columns) already checked (expressions.check is pure)
_STRING_LITERAL = re.compile(r"\s*'(?:[^']|'')*'\s*")


def _check_set_expression(con: duckdb.DuckDBPyConnection, expression, column: Column, columns) -> None:
    """expressions.check of a SET expression, remembered; a string literal assigned to a VARCHAR column is valid by
    its shape alone."""
    if isinstance(expression, str) and column.type.upper() == "VARCHAR" and _STRING_LITERAL.fullmatch(expression):
        return
    key = (expression, tuple(columns))
    if key in _checked_sets:
        return
    expressions.check(con, expression, columns, kind="SET expression")
    if len(_checked_sets) > 1024:
        _checked_sets.clear()
    _checked_sets[key] = True


def _names(columns) -> str:
    return ", ".join(quote(c.name) for c in columns)


def _split(columns, held_columns) -> tuple[list[Column], list[Column]]:
    """`columns` split into those `held_columns` holds (by name) and the others, in order."""
    held = {c.name for c in held_columns}
    return [c for c in columns if c.name in held], [c for c in columns if c.name not in held]


def _any_distinct(left: str, right: str, columns) -> str:
    return " OR ".join(f"{left}.{quote(c.name)} IS DISTINCT FROM {right}.{quote(c.name)}" for c in columns)


def _with_position(batch: pa.Table) -> pa.Table:
    return batch.append_column("__pos", pa.array(range(batch.num_rows), pa.int64()))


def _new_or_existing_id(head: Head, existing: str, batch: str) -> str:
    """Existing rows keep their id; new rows get fresh ids in the order they came in."""
    start = head.record.next_row_id
    return (
        f"CASE WHEN {existing}.{ROW_ID} IS NULL THEN {start} - 1 + "
        f"row_number() OVER (PARTITION BY {existing}.{ROW_ID} IS NULL ORDER BY {batch}.__pos) "
        f"ELSE {existing}.{ROW_ID} END"
    )


def _overwrite_by_key_sql(head: Head, columns) -> str:
    on = " AND ".join(f"b.{quote(k)} = h.{quote(k)}" for k in head.key)
    old, added = _split(columns, head.columns)
    changed = _any_distinct("b", "h", [c for c in old if c.name not in head.key])
    changed = " OR ".join(filter(None, [changed] + [f"b.{quote(c.name)} IS NOT NULL" for c in added]))
    return f"""
        SELECT CASE WHEN b.__pos IS NULL THEN h.{ROW_ID} ELSE {_new_or_existing_id(head, 'h', 'b')} END AS {ROW_ID},
               CASE WHEN h.{ROW_ID} IS NULL THEN '{INSERT}' WHEN b.__pos IS NULL THEN '{DELETE}' ELSE '{UPDATE}' END AS {OP},
               {', '.join(f'b.{quote(c.name)}' for c in columns)}
        FROM overwrite_batch b FULL OUTER JOIN (SELECT {ROW_ID}, {_names(old)} FROM {head.state_sql()}) h ON {on}
        WHERE h.{ROW_ID} IS NULL OR b.__pos IS NULL {('OR ' + changed) if changed else ''}
        ORDER BY {ROW_ID}"""


def _overwrite_by_rows_sql(head: Head, columns) -> str:
    """Without a key, rows match by full-row equality, duplicates pairing up in order (a multiset difference)."""
    held = {c.name for c in head.columns}
    values = _names(columns)
    match = " AND ".join([f"o.{quote(c.name)} IS NOT DISTINCT FROM n.{quote(c.name)}" for c in columns] + ["o.__n = n.__n"])
    new_values = ", ".join(f"n.{quote(c.name)}" for c in columns)
    nulls = ", ".join(f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in columns)
    old_select = ", ".join(quote(c.name) if c.name in held else f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in columns)
    return f"""
        WITH o AS (SELECT {ROW_ID}, {old_select}, row_number() OVER (PARTITION BY {values} ORDER BY {ROW_ID}) AS __n
                   FROM {head.state_sql()}),
             n AS (SELECT *, row_number() OVER (PARTITION BY {values} ORDER BY __pos) AS __n FROM overwrite_batch)
        SELECT {ROW_ID}, '{DELETE}' AS {OP}, {nulls} FROM o WHERE NOT EXISTS (SELECT 1 FROM n WHERE {match})
        UNION ALL
        SELECT {head.record.next_row_id} - 1 + row_number() OVER (ORDER BY n.__pos) AS {ROW_ID}, '{INSERT}' AS {OP}, {new_values}
        FROM n WHERE NOT EXISTS (SELECT 1 FROM o WHERE {match})
        ORDER BY {ROW_ID}"""


def _with_change_columns(batch: pa.Table, ids: pa.Array, op: str) -> pa.Table:
    rows = batch.add_column(0, ROW_ID, ids)
    return rows.add_column(1, OP, pa.array([op] * batch.num_rows, pa.string()))


def change_schema(columns, *, version: bool = False) -> pa.Schema:
    """The schema of change rows of `columns`: `_row_id`, `_op`, (`_version`, as stored in a change file,) then the
    columns."""
    meta = [pa.field(ROW_ID, pa.int64()), pa.field(OP, pa.string())] + ([pa.field(VERSION, pa.int64())] if version else [])
    return pa.schema(meta + list(arrow_schema(columns)))


def _change_set(rows: pa.Table, columns, head: Head, parameters: dict | None = None) -> ChangeSet:
    import pyarrow.compute as pc  # imported where used: reads (the CLI's diff) never need it

    schema = change_schema(columns)
    # update and delete hash the old images in their own scan; pc.sum of uint64 wraps, i.e. it is mod 2^64
    old_hash = (pc.sum(rows.column(OLD_HASH)).as_py() or 0) if OLD_HASH in rows.column_names else None
    new_hash = (pc.sum(rows.column(NEW_HASH)).as_py() or 0) if NEW_HASH in rows.column_names else None
    rows = rows.select([f.name for f in schema]).cast(schema) if rows.num_columns else schema.empty_table()
    inserted = rows.filter(pc.equal(rows.column(OP), INSERT)).column(ROW_ID)
    next_id = max(head.record.next_row_id, (pc.max(inserted).as_py() + 1) if len(inserted) else 0)
    return ChangeSet(rows, tuple(columns), next_id, parameters or {}, old_hash=old_hash, new_hash=new_hash)


def _check_batch_keys(head: Head, batch: pa.Table) -> None:
    """Refuse a batch whose keys are NULL, hold a NaN, or repeat; every operation taking keys checks them here.

    The one rule of key equality (create_table with data, append, upsert, overwrite; diff matches keys alike):
    two keys are equal when DuckDB's `=` says so. Hence:
      - NaN is refused, as a float key value and inside a nested one (list, struct, map). DuckDB's `=` takes
        NaN = NaN, but Parquet min/max statistics leave NaN out, so a key probe pruned by them misses a stored
        NaN and an upsert would insert a second row with that key.
      - -0.0 and 0.0 are the same key (DuckDB's `=`, grouping and statistics agree): appending one while the
        other is stored is refused as a clash, upserting one updates the row of the other (storing the new image).
    """
    key = list(head.key)
    if _surely_valid_keys(batch, key):
        return
    head.con.register("key_batch", batch.select(key))
    try:
        cols = ", ".join(quote(k) for k in key)
        nulls = head.con.sql(f"SELECT {cols} FROM key_batch WHERE {' OR '.join(f'{quote(k)} IS NULL' for k in key)} LIMIT 6").fetchall()
        if nulls:
            raise KeyViolationError(key, "null values", [_key_value(r) for r in nulls])
        nans = _nan_keys(batch, key)
        if nans:
            raise KeyViolationError(key, "NaN values (NaN cannot be a key)", nans)
        dups = head.con.sql(f"SELECT {cols} FROM key_batch GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 6").fetchall()
        if dups:
            raise KeyViolationError(key, "duplicate values in the batch", [_key_value(r) for r in dups])
    finally:
        head.con.unregister("key_batch")


def _nan_keys(batch: pa.Table, key: list[str]) -> list:
    """The key values (at most 6) of the rows whose key holds a NaN."""
    import pyarrow.compute as pc  # imported where used: reads (the CLI's diff) never need it

    masks = [_holds_nan(batch.column(k).combine_chunks()) for k in key]
    mask = masks[0]
    for other in masks[1:]:
        mask = pc.or_(mask, other)
    rows = batch.select(key).filter(mask).slice(0, 6).to_pylist()
    return [_key_value(tuple(r[k] for k in key)) for r in rows]


def _holds_nan(array: pa.Array) -> pa.Array:
    """Per value: does it hold a NaN, as a float or inside a list, struct or map value?"""
    import pyarrow.compute as pc  # imported where used: reads (the CLI's diff) never need it

    t = array.type
    if pa.types.is_floating(t):
        return pc.fill_null(pc.is_nan(array), False)
    if pa.types.is_struct(t):
        mask = pa.repeat(False, len(array))
        for child in array.flatten():
            mask = pc.or_(mask, _holds_nan(child))
        return mask
    if pa.types.is_map(t):
        return _holds_nan(array.cast(pa.list_(pa.struct([t.key_field, t.item_field]))))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = _holds_nan(pc.list_flatten(array))
        parents = pc.filter(pc.list_parent_indices(array), inner)
        return pc.is_in(pa.array(range(len(array)), parents.type), value_set=parents)
    return pa.repeat(False, len(array))


def _surely_valid_keys(batch: pa.Table, key: list[str]) -> bool:
    """A cheap pass: no nulls, and as many distinct keys as rows (else the exact SQL check finds the culprits)."""
    import pyarrow.compute as pc  # imported where used: reads (the CLI's diff) never need it

    exact = (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string, pa.types.is_temporal)
    if not all(any(t(batch.schema.field(k).type) for t in exact) for k in key):
        return False  # floats (NaN, -0.0) and nested types: equality as DuckDB defines it, in the SQL check
    if any(batch.column(k).null_count for k in key):
        return False
    if len(key) == 1:
        distinct = pc.count_distinct(batch.column(key[0])).as_py()
    else:
        distinct = batch.select(key).group_by(key).aggregate([]).num_rows
    return distinct == batch.num_rows


def _check_new_keys(head: Head, batch: pa.Table) -> None:
    key = list(head.key)
    if _keys_past_every_file(head, batch):
        return
    cols = ", ".join(quote(k) for k in key)
    head.con.register("key_batch", batch.select(key))
    try:
        # cheap first: if no stored row of any file holds one of these keys, none is in the table (fresh keys
        # are pruned by the files' min/max statistics, so this reads little more than footers)
        stored = f"SELECT 1 FROM key_batch SEMI JOIN ({head.plan.stored_sql(key)}) AS s USING ({cols}) LIMIT 1"
        if not head.con.sql(stored).fetchall():
            return
        sql = f"SELECT {cols} FROM key_batch SEMI JOIN (SELECT {cols} FROM {head.state_sql()}) AS h USING ({cols}) ORDER BY ALL LIMIT 6"
        clashes = head.con.sql(sql).fetchall()
    finally:
        head.con.unregister("key_batch")
    if clashes:
        raise KeyViolationError(key, "values already in the table (use upsert to update them)", [_key_value(r) for r in clashes])


def _keys_past_every_file(head: Head, batch: pa.Table) -> bool:
    """True if an integer key's batch range overlaps no source file's key range (footer statistics, exact for
    integers): then no stored row, deleted or not, holds one of these keys, and no SQL needs to run."""
    import pyarrow.compute as pc  # imported where used: reads (the CLI's diff) never need it

    if len(head.key) != 1 or not pa.types.is_integer(batch.schema.field(head.key[0]).type) or batch.num_rows == 0:
        return False
    bounds = pc.min_max(batch.column(head.key[0]))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    column = next(c for c in head.columns if c.name == head.key[0])
    for source in head.plan.sources():
        name = evolution.physical_name(column, source)  # the key's name in that file (a renamed key keeps its old one)
        stored = None if source.table or name is None else statistics.integer_range(source.url, name)
        if stored is None or stored.overlaps(low, high):
            return False
    return True


def _key_value(row: tuple):
    return row[0] if len(row) == 1 else row
