"""Schema evolution (format 4): ALTER (add, drop, rename, widen columns) without rewriting any data file, and the
mapping from a file's columns to a version's columns by column id. docs/format.md, "Schema evolution (format 4)".

Every column has an identity, `Column.ident`: its `id` when the record gives one, else its name (records of older
formats, and of tables never altered: their columns were never renamed or dropped, so names are identities). The
first ALTER writes an explicit `id` on every column (its identity so far), and every later record keeps them; a
column added later gets the fresh id `_<version>.<position>` (names starting with `_` are reserved, so a fresh id is
never any column's name). A reader maps each file's columns (those of the version that wrote it) to the columns of
the version it reads by identity: renamed columns are selected under their new name, widened ones cast, columns the
file lacks (added later, or re-added under a new id) are NULL or the column's `default`, dropped ones not selected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import duckdb

from . import connection
from .errors import SchemaChangeError, first_line
from .schema import Column, check_distinct, literal, quote

if TYPE_CHECKING:
    from .operations import ChangeSet, Head

# --- identities --------------------------------------------------------------------------------------------------------


def has_ids(columns: Iterable[Column]) -> bool:
    return any(c.id is not None for c in columns)


def explicit(columns: Sequence[Column]) -> tuple[Column, ...]:
    """The columns with their identity written out as `id`."""
    return tuple(c if c.id is not None else replace(c, id=c.ident) for c in columns)


def fresh_id(version: int, position: int) -> str:
    return f"_{version}.{position}"


def assign_ids(base: Sequence[Column], columns: Sequence[Column], version: int) -> tuple[Column, ...]:
    """The columns a commit at `version` records: once the table has ids (after its first ALTER), a column without
    one (added by a write with schema_mode='merge') gets a fresh id, so a re-added name is a new column."""
    if not has_ids(base) and not has_ids(columns):
        return tuple(columns)
    return tuple(c if c.id is not None else replace(c, id=fresh_id(version, i)) for i, c in enumerate(columns))


def probe(columns: Sequence[Column]) -> tuple[Column, ...]:
    """`columns` as text under reserved names (restore reads the head's files in a target's columns with them: a
    value of any stored type compares as text, with no cast that could fail)."""
    return tuple(replace(c, name=f"__head_{i}", type="VARCHAR") for i, c in enumerate(columns))


def consistent(schemas: Iterable[Sequence[Column]]) -> bool:
    """Whether files written with these schemas can be merged into one file (compaction): every identity has one
    name and one type, and every name one identity."""
    by_id: dict[str, tuple[str, str, str | None]] = {}
    by_name: dict[str, str] = {}
    held: list[set[str]] = []
    for columns in schemas:
        for c in columns:
            if by_id.setdefault(c.ident, (c.name, c.type, c.default)) != (c.name, c.type, c.default) or by_name.setdefault(c.name, c.ident) != c.ident:
                return False
        held.append({c.ident for c in columns})
    # a column with a default must be in every version: merged, the rows written before it would hold NULL instead
    return all(i in h for i, (_, _, default) in by_id.items() if default is not None for h in held)


# --- reading a file written with other columns ---------------------------------------------------------------------


def special(columns: Sequence[Column], held: frozenset[str], physical: Sequence[Column] | None, *, defaults: bool = True) -> tuple[tuple[str, str], ...]:
    """(name, SQL) of the columns of a version that a file written with `physical` (holding the names `held`)
    cannot give by the plain name-based projection: renamed, widened, re-added under a new id (the file's column
    of that name is another column), or with a default where the file lacks them (NULL instead without
    `defaults`: the change feed's images of versions before the column existed). Empty for most files."""
    if physical is None:
        return ()
    by_id = {p.ident: p for p in physical if p.name in held}
    out = []
    for c in columns:
        p = by_id.get(c.ident)
        if p is None:
            if c.default is not None and defaults or c.name in held:
                out.append((c.name, missing(c) if defaults else f"CAST(NULL AS {c.type}) AS {quote(c.name)}"))
        elif p.name != c.name or p.type != c.type:
            value = quote(p.name) if p.type == c.type else f"CAST({quote(p.name)} AS {c.type})"
            out.append((c.name, f"{value} AS {quote(c.name)}"))
    return tuple(out)


def missing(c: Column) -> str:
    """The value of column `c` in a row written before it existed: its default, else NULL."""
    if c.default is None:
        return f"CAST(NULL AS {c.type}) AS {quote(c.name)}"
    return f"CAST({literal(c.default)} AS {c.type}) AS {quote(c.name)}"


def physical_name(column: Column, source: Any) -> str | None:
    """The name under which a source (materialize.Source) holds `column` (a version's), None if it does not."""
    if source.physical is None:
        return column.name if column.name in source.columns else None
    return next((p.name for p in source.physical if p.ident == column.ident and p.name in source.columns), None)


def layout(log, first: int, last: int, held: frozenset[str]) -> tuple[Column, ...]:
    """The columns (with identities) of a file standing for versions first..last that holds the names `held`:
    those of version `last`, and, for names it lacks (dropped inside a compacted block), of the versions before."""
    columns = [c for c in log.read(last).columns if c.name in held]
    if len(columns) < len(held) and first < last:
        seen = {c.name for c in columns}
        for record in reversed(log.read_range(first, last - 1)):
            for c in record.columns:
                if c.name in held and c.name not in seen:
                    columns.append(c)
                    seen.add(c.name)
    return tuple(columns)


# --- ALTER ---------------------------------------------------------------------------------------------------------------

_SIGNED = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"]
_UNSIGNED = ["UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"]


def widens(old: str, new: str) -> bool:
    """Whether every value of DuckDB type `old` converts to `new` without loss, and `new` is wider: integers to
    wider integers (unsigned to a wider signed too), FLOAT to DOUBLE, DECIMAL(p, s) to DECIMAL(p2, s2) with s2 >= s
    and p2 - s2 >= p - s. Anything to a string is not a widening."""
    old, new = old.upper(), new.upper()
    if old == new:
        return False
    for chain in (_SIGNED, _UNSIGNED):
        if old in chain and new in chain:
            return chain.index(new) > chain.index(old)
    if old in _UNSIGNED and new in _SIGNED:
        return _SIGNED.index(new) > _UNSIGNED.index(old)
    if (old, new) == ("FLOAT", "DOUBLE"):
        return True
    a, b = _decimal(old), _decimal(new)
    if a is not None and b is not None:
        return b[1] >= a[1] and b[0] - b[1] >= a[0] - a[1]
    return False


def _decimal(type_: str) -> tuple[int, int] | None:
    if not (type_.startswith("DECIMAL(") and type_.endswith(")")):
        return None
    precision, scale = type_[len("DECIMAL(") : -1].split(",")
    return int(precision), int(scale)


@dataclass(frozen=True)
class Altered:
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    parameters: dict
    rehash: bool  # whether the content fingerprint changes (a drop, a widening or a default): one hashing scan


def alter(columns: Sequence[Column], key: Sequence[str], version: int, *, add=None, drop=None, rename=None, widen=None) -> Altered:
    """The columns and key after an ALTER at `version` of a table with `columns` and `key`; SchemaChangeError (naming
    the offending value) for anything refused. Names in drop/rename/widen are the columns before the ALTER."""
    drops, renames, widens_ = _names(drop, "drop"), _mapping(rename, "rename"), _mapping(widen, "widen")
    added = parse_added(add)
    if not (drops or renames or widens_ or added):
        raise SchemaChangeError(None, "alter needs at least one of add, drop, rename, widen")
    by_name = {c.name: c for c in columns}
    listed = ", ".join(by_name) or "none"
    for what, names in (("drop", drops), ("rename", list(renames)), ("widen", list(widens_))):
        for name in names:
            if name not in by_name:
                raise SchemaChangeError(name, f"cannot {what} column {name!r}: no such column (columns: {listed})")
            if what != "drop" and name in drops:
                raise SchemaChangeError(name, f"cannot both drop and {what} column {name!r}")
    for name in drops:
        if name in key:
            raise SchemaChangeError(name, f"cannot drop key column {name!r} (key: {', '.join(key)})")
    out = []
    for c in explicit(columns):
        if c.name in drops:
            continue
        if c.name in widens_:
            target = canonical_type(widens_[c.name])
            if not widens(c.type, target):
                raise SchemaChangeError(widens_[c.name], f"cannot widen column {c.name!r} from {c.type} to {target}: not a lossless widening (allowed: integers to wider integers, FLOAT to DOUBLE, DECIMAL to a larger precision)")
            c = replace(c, type=target)
        if c.name in renames:
            c = replace(c, name=renames[c.name])
        out.append(c)
    start = len(out)
    out += [replace(c, id=fresh_id(version, start + i)) for i, c in enumerate(added)]
    new_key = tuple(renames.get(k, k) for k in key)
    if drops and not any(c.name not in new_key for c in out):
        raise SchemaChangeError(drops[-1], f"cannot drop {drops[-1]!r}: it would leave no column outside the key")
    _check_names(out, [c.name for c in added] + list(renames.values()))
    parameters = {"add": [_spec(c) for c in added], "drop": drops, "rename": renames, "widen": {k: canonical_type(v) for k, v in widens_.items()}}
    rehash = bool(drops or widens_ or any(c.default is not None for c in added))
    return Altered(tuple(out), new_key, {k: v for k, v in parameters.items() if v}, rehash)


def _spec(c: Column) -> str:
    return f"{c.name} {c.type}" + (f" DEFAULT {c.default!r}" if c.default is not None else "")


def _check_names(columns: Sequence[Column], new: list[str]) -> None:
    for name in new:
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise SchemaChangeError(name, f"column name {name!r} is reserved or empty: names starting with '_' belong to logstore")
    try:
        check_distinct([c.name for c in columns])
    except Exception as e:  # InvalidInputError naming the two names
        raise SchemaChangeError(getattr(e, "value", None), str(e)) from None


def _names(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        if len(set(value)) != len(value):
            raise SchemaChangeError(value, f"{what} names a column twice: {list(value)!r}")
        return list(value)
    raise SchemaChangeError(value, f"{what} must be a column name or a list of names, not {value!r}")


def _mapping(value, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    raise SchemaChangeError(value, f"{what} must be a dict of column name to {'new name' if what == 'rename' else 'type'}, not {value!r}")


def canonical_type(text: str) -> str:
    """DuckDB's name of the type `text` (e.g. 'int8' -> BIGINT); SchemaChangeError if DuckDB does not know it."""
    return parse_added(f"x {text}")[0].type


def parse_added(value) -> list[Column]:
    """Columns to add from DDL text ('c BIGINT DEFAULT 0, d VARCHAR'), a list of such texts, or a {name: type}
    dict; read with DuckDB's parser (a CREATE TABLE on a connection without file access), each default evaluated
    once, now, to a constant (it may not refer to columns)."""
    if value is None:
        return []
    if isinstance(value, dict):
        texts = [f"{quote(str(k))} {v}" for k, v in value.items()]
    elif isinstance(value, str):
        texts = [value]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        texts = list(value)
    else:
        raise SchemaChangeError(value, f"add must be DDL text ('c BIGINT DEFAULT 0'), a list of them or a dict of name to type, not {value!r}")
    out: list[Column] = []
    for text in texts:
        out.extend(_parse_one(text))
    return out


def _parse_one(text: str) -> list[Column]:
    con = connection.new(files=connection.Confined())
    try:
        con.execute(f"CREATE TABLE alter_probe ({text})")
        described = con.execute(
            "SELECT column_name, data_type, column_default FROM duckdb_columns() WHERE table_name = 'alter_probe' ORDER BY column_index"
        ).fetchall()
    except duckdb.Error as e:
        raise SchemaChangeError(text, f"cannot read column specification {text!r}: {first_line(e)}") from None
    out = []
    for name, type_, default in described:
        value = None
        if default is not None:
            try:
                value = con.execute(f"SELECT CAST(CAST(({default}) AS {type_}) AS VARCHAR)").fetchall()[0][0]
            except duckdb.Error as e:
                raise SchemaChangeError(text, f"cannot evaluate the default of column {name!r} ({default}): {first_line(e)}") from None
        out.append(Column(name, type_, default=value))
    return out


def change_set(head: Head, *, add: Any = None, drop: Any = None, rename: Any = None, widen: Any = None) -> ChangeSet:
    """The commit of an ALTER on `head` (operations.Head): no change rows, the new columns and key, and the content
    fingerprint (unchanged by a rename or an added column without default; else one hashing scan of the head's rows
    read in the new columns; nothing is written but the commit record)."""
    from . import fingerprint
    from .operations import ChangeSet, change_schema

    record = head.record
    altered = alter(head.columns, head.key, record.version + 1, add=add, drop=drop, rename=rename, widen=widen)
    rows = change_schema(altered.columns).empty_table()
    if altered.rehash or record.fingerprint is None:
        content = fingerprint.of_plan(head.con, replace(head.plan, columns=altered.columns))
    else:
        content = fingerprint.decode(record.fingerprint)
    return ChangeSet(
        rows, altered.columns, record.next_row_id, altered.parameters,
        num_rows=record.commit.num_rows, fingerprint=content, key=altered.key,
    )
