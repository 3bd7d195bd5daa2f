"""Content fingerprints: an order-independent 64-bit hash of all rows of a version, kept up to date per commit.

    cell_hash(c)  = 0 if the value is NULL, else DuckDB hash(<column identity>, CAST(value AS <column type>))
                    (the identity is the column's name, or its `id` once the table was altered: evolution.py)
    row_hash(r)   = DuckDB hash(_row_id, (sum of cell_hash over the row's columns) mod 2^64)
    fingerprint   = (sum of row_hash over all rows) mod 2^64, written as 16 lower-case hex digits

The row id is included, so the fingerprint also pins which identity (and so which place in the row order) each
row has. NULL cells contribute nothing, so adding a nullable column leaves every fingerprint unchanged, and the
columns of a row are combined by a sum, so their order does not matter either.

Because it is a sum, a commit updates it from its change rows alone:
    new = old - row_hash(old images of updated and deleted rows) + row_hash(new images of inserted and updated rows)
The old images come from the head state, filtered to the changed row ids (never a full hash of the table).

The hash is DuckDB's `hash()`, which is not guaranteed stable across DuckDB releases; ALGORITHM names it, and
`hash_is_stable()` checks a known value so that a DuckDB upgrade that changes it is reported as "cannot check",
never as corruption.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from .materialize import DELETE, INSERT, OP, ROW_ID, Plan
from .schema import Column, literal, quote

ALGORITHM = "duckdb-hash-rowsum-v1"
MOD = 1 << 64
_CANARY_SQL = "SELECT hash('logstore', 42::BIGINT, 'fingerprint')"
_CANARY_VALUE = 7387768560936646806  # DuckDB 2.0
WIDE = 64  # columns of one type from which row_hash_sql hashes them as a list (narrower: one CASE per cell, faster to run)


def encode(value: int) -> str:
    return f"{value % MOD:016x}"


def decode(text: str) -> int:
    if not isinstance(text, str) or len(text) != 16:
        raise ValueError(f"fingerprint must be 16 hex digits, not {text!r}")
    return int(text, 16)


def hash_is_stable(con: duckdb.DuckDBPyConnection) -> bool:
    return con.sql(_CANARY_SQL).fetchall()[0][0] == _CANARY_VALUE


def row_hash_sql(columns: tuple[Column, ...], alias: str | None = None) -> str:
    """SQL for row_hash of the rows of a relation holding _row_id and `columns` (as UBIGINT).

    The cell hashes are added as a balanced tree (a flat a + b + c + ... nests one level per column, and DuckDB
    refuses expressions deeper than 1,000); the columns of a type held by WIDE or more columns are hashed as one
    list (binding 5,000 CASE expressions takes seconds). Both give exactly the sum the algorithm defines.
    """
    prefix = f"{alias}." if alias else ""
    by_type: dict[str, list[Column]] = {}
    for c in columns:
        by_type.setdefault(c.type, []).append(c)
    wide = {t for t, group in by_type.items() if len(group) >= WIDE}
    terms = [_cell_sql(c, prefix) for c in columns if c.type not in wide]
    terms += [_list_cells_sql(by_type[t], t, prefix) for t in by_type if t in wide]
    total = _balanced_sum(terms) if terms else "0::HUGEINT"
    return f"hash({prefix}{ROW_ID}, (({total}) % {MOD})::UBIGINT)"


def _cell_sql(column: Column, prefix: str) -> str:
    name = f"{prefix}{quote(column.name)}"
    return f"CASE WHEN {name} IS NULL THEN 0::HUGEINT ELSE hash({literal(column.ident)}, CAST({name} AS {column.type}))::HUGEINT END"


def _list_cells_sql(group: list[Column], type_: str, prefix: str) -> str:
    """The sum of the cell hashes of columns of one type, as HUGEINT: one list of values, one lambda."""
    names = "[" + ", ".join(literal(c.ident) for c in group) + "]"
    values = "[" + ", ".join(f"CAST({prefix}{quote(c.name)} AS {type_})" for c in group) + "]"
    cell = f"CASE WHEN v IS NULL THEN 0::HUGEINT ELSE hash({names}[i], v)::HUGEINT END"
    return f"list_sum(list_transform({values}, lambda v, i: {cell}))"


def _balanced_sum(terms: list[str]) -> str:
    """SQL adding HUGEINT `terms` as a balanced tree: the same exact sum as a + b + c + ..., nested log2(n) deep."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({_balanced_sum(terms[:middle])} + {_balanced_sum(terms[middle:])})"


def sum_sql(relation: str, columns: tuple[Column, ...]) -> str:
    """SQL returning one value: the sum of row_hash over `relation` (a subquery or table name), mod 2^64."""
    return f"SELECT {sum_expression(columns)} FROM {relation}"


def sum_expression(columns: tuple[Column, ...]) -> str:
    """The aggregate: the sum of row_hash over the rows it aggregates (0 for none), mod 2^64, as UBIGINT."""
    return f"coalesce(sum({row_hash_sql(columns)}::HUGEINT) % {MOD}, 0)::UBIGINT"


def of_plan(con: duckdb.DuckDBPyConnection, plan: Plan) -> int:
    """The fingerprint of a version, by materializing it (a full scan: verify uses this, commits do not)."""
    return _value(con, sum_sql(f"({plan.relation_sql()}) AS v", plan.columns))


def of_parquet(con: duckdb.DuckDBPyConnection, url: str, columns: tuple[Column, ...]) -> int:
    """The fingerprint of a snapshot file (columns _row_id then the table's)."""
    held = {r[0] for r in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{_escape(url)}')").fetchall()}
    select = ", ".join(
        quote(c.name) if c.name in held else f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in columns
    )
    relation = f"(SELECT {ROW_ID}{', ' + select if select else ''} FROM read_parquet('{_escape(url)}')) AS s"
    return _value(con, sum_sql(relation, columns))


def advance(
    old: int | None, head, rows: pa.Table, columns: tuple[Column, ...], *,
    old_hash: int | None = None, new_hash: int | None = None, fresh: bool = False,
) -> int | None:
    """The fingerprint after applying change rows (_row_id, _op, `columns`) to the head; None if old is unknown.

    `old_hash`, when the operation computed it in its own scan (update, delete), is the row-hash sum of the old
    images of exactly the changed rows; otherwise they are looked up in the head state by row id. `new_hash`, if
    given, is the same sum over the new images (0 for deletes), which spares the query over the change rows.
    `fresh` says the caller knows every row is an insert of a new row id (nothing to look up).
    """
    if old is None:
        return None
    if rows.num_rows == 0 and set(columns) >= set(head.columns):
        return old
    if old_hash is not None and new_hash is not None and head.record.version >= 0 and set(columns) >= set(head.columns):
        return (old - old_hash + new_hash) % MOD  # both sums came with the operation's own scan
    con = head.con
    name = "logstore_fingerprint_changes"
    con.register(name, rows)
    try:
        added = _value(con, sum_sql(f"(SELECT * FROM {name} WHERE {OP} <> '{DELETE}') AS c", columns))
        if head.record.version < 0:
            return added % MOD
        if not set(columns) >= set(head.columns):
            # a commit that drops or changes columns (restore to an older schema) changes every row's image:
            # recount, each column read from the head's column of the same identity (evolution.py)
            held = {c.ident: c for c in head.columns}
            select = ", ".join(_from_head(c, held.get(c.ident)) for c in columns)
            kept = (
                f"(SELECT {ROW_ID}{', ' + select if select else ''} FROM {head.state_sql()} AS h "
                f"ANTI JOIN (SELECT {ROW_ID} FROM {name}) AS c USING ({ROW_ID})) AS k"
            )
            return (_value(con, sum_sql(kept, columns)) + added) % MOD
        fresh = fresh or not rows.num_rows or (
            _value(con, f"SELECT count(*) FROM {name} WHERE {OP} <> '{INSERT}' OR {ROW_ID} < {head.record.next_row_id}") == 0
        )
        removed = 0
        if old_hash is not None and set(columns) >= set(head.columns):
            removed = old_hash % MOD
        elif not fresh:  # old images: the head rows whose row id this commit changes
            old_rows = f"(SELECT * FROM {head.state_sql()} AS h SEMI JOIN (SELECT {ROW_ID} FROM {name}) AS c USING ({ROW_ID})) AS o"
            removed = _value(con, sum_sql(old_rows, head.columns))
    finally:
        con.unregister(name)
    return (old - removed + added) % MOD


def _from_head(column: Column, held: Column | None) -> str:
    if held is None:
        return f"CAST(NULL AS {column.type}) AS {quote(column.name)}"
    return f"CAST({quote(held.name)} AS {column.type}) AS {quote(column.name)}"


def _value(con, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])  # execute: bound once (con.sql binds to describe, then to run)


def _escape(text: str) -> str:
    return text.replace("'", "''")
