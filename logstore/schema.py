"""Table schemas: columns as DuckDB type names on disk, Arrow schemas in memory, and checking incoming data."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from . import connection
from .errors import InvalidInputError, SchemaMismatchError, first_line

RESERVED_PREFIX = "_"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a DuckDB type name, e.g. BIGINT, VARCHAR, TIMESTAMP WITH TIME ZONE
    id: str | None = None  # the column's identity (evolution.py; format 4); None: its name is its identity
    default: str | None = None  # format 4: the value (DuckDB text of it) of rows written before the column was added

    @property
    def ident(self) -> str:
        """The column's identity: its `id`, or its name in records without ids (docs/format.md, schema evolution)."""
        return self.id if self.id is not None else self.name

    def to_json(self) -> dict:
        out = {"name": self.name, "type": self.type}
        if self.id is not None:
            out["id"] = self.id
        if self.default is not None:
            out["default"] = self.default
        return out

    @classmethod
    def from_json(cls, obj: dict) -> Column:
        id_, default = obj.get("id"), obj.get("default")
        if id_ is not None and not isinstance(id_, str) or default is not None and not isinstance(default, str):
            raise ValueError(f"column id and default must be strings, not {id_!r}, {default!r}")
        return cls(name=obj["name"], type=obj["type"], id=id_, default=default)


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def columns_from_arrow(schema: pa.Schema) -> tuple[Column, ...]:
    check_distinct(schema.names)  # DuckDB would rename a repeated name ('a', 'a' -> 'a', 'a_1')
    con = connection.new(files=connection.Confined())  # no file access: it runs schema text users give
    con.register("empty_input", schema.empty_table())
    described = con.execute("DESCRIBE empty_input").fetchall()
    return tuple(Column(name, type_) for name, type_, *_ in described)


def columns_from_ddl(text: str) -> tuple[Column, ...]:
    """Columns from a DuckDB column list such as 'id BIGINT, name VARCHAR'."""
    con = connection.new(files=connection.Confined())  # no file access: it runs schema text users give
    try:
        con.execute(f"CREATE TABLE schema_probe ({text})")
    except duckdb.Error as e:
        raise InvalidInputError(text, f"cannot read schema {text!r}: {first_line(e)}") from None
    described = con.execute("DESCRIBE schema_probe").fetchall()
    return tuple(Column(name, type_) for name, type_, *_ in described)


def columns_from_any(schema) -> tuple[Column, ...]:
    """Columns from a pyarrow Schema, a {name: duckdb_type} dict or a DDL column list."""
    if isinstance(schema, pa.Schema):
        return columns_from_arrow(schema)
    if isinstance(schema, dict):
        check_distinct([str(n) for n in schema])
        return columns_from_ddl(", ".join(f"{quote(n)} {t}" for n, t in schema.items()))
    if isinstance(schema, str):
        return columns_from_ddl(schema)
    raise InvalidInputError(schema, f"cannot use {type(schema).__name__} as a schema (give a pyarrow.Schema, a dict or DDL text)")


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema DuckDB produces for these columns."""
    return _arrow_schema(tuple(columns))


@functools.lru_cache(maxsize=512)
def _arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:  # a fresh DuckDB connection per call costs ~15 ms
    if not columns:
        return pa.schema([])
    select = ", ".join(f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in columns)
    return connection.new(files=connection.Confined()).sql(f"SELECT {select} LIMIT 0").to_arrow_table().schema


def check_names(columns: tuple[Column, ...]) -> None:
    seen: set[str] = set()
    for c in columns:
        if not c.name or c.name.startswith(RESERVED_PREFIX):
            raise InvalidInputError(c.name, f"column name {c.name!r} is reserved: names starting with '_' belong to logstore")
        if c.name.lower() in seen:
            raise InvalidInputError(c.name, f"column {c.name!r} appears twice")
        seen.add(c.name.lower())


def check_distinct(names) -> None:
    """Refuse column names that repeat, exactly or up to case (DuckDB identifiers are case-insensitive)."""
    seen: dict[str, str] = {}
    for name in names:
        first = seen.get(name.lower())
        if first is not None:
            raise InvalidInputError([first, name], _repeated(first, name))
        seen[name.lower()] = name


def _repeated(first: str, second: str) -> str:
    if first == second:
        return f"column {first!r} appears twice"
    return f"columns {first!r} and {second!r} differ only by case (column names are case-insensitive)"


def conform(data: pa.Table, columns: tuple[Column, ...], *, merge: bool = False) -> tuple[pa.Table, tuple[Column, ...]]:
    """Cast `data` to the table's columns, in table order.

    Names must match exactly. With merge=True, extra columns are added to the schema (as nullable columns, after
    the existing ones) and missing ones are filled with nulls. Returns the cast data and the (possibly grown) columns.
    """
    check_distinct(data.column_names)
    incoming = set(data.column_names)
    known = [c.name for c in columns]
    known_set = set(known)
    missing = [n for n in known if n not in incoming]
    extra = [n for n in data.column_names if n not in known_set]
    if (missing or extra) and not merge:
        problems = [f"missing column {n!r}" for n in missing] + [f"unexpected column {n!r}" for n in extra]
        raise SchemaMismatchError(problems)
    if extra:
        _check_case_clashes(extra, known)
        added = columns_from_arrow(pa.schema([data.schema.field(n) for n in extra]))
        check_names(added)
        columns = columns + added
    target = arrow_schema(columns)
    arrays, problems = [], []
    for field in target:
        if field.name not in incoming:
            arrays.append(pa.nulls(data.num_rows, field.type))
            continue
        array, problem = _cast(data.column(field.name), field)
        arrays.append(array)
        if problem:
            problems.append(problem)
    if problems:
        raise SchemaMismatchError(problems)
    return pa.Table.from_arrays(arrays, schema=target), columns


def _check_case_clashes(extra: list[str], known: list[str]) -> None:
    """Columns a merge would add must not differ only by case from the table's (DuckDB would take them for one)."""
    by_lower = {n.lower(): n for n in known}
    clashes = [
        f"column {n!r} of the data and the table's column {by_lower[n.lower()]!r} differ only by case "
        "(column names are case-insensitive)"
        for n in extra if n.lower() in by_lower
    ]
    if clashes:
        raise SchemaMismatchError(clashes)


def _cast(array: pa.ChunkedArray, field: pa.Field):
    source = array.type
    if source == field.type:
        return array, None
    if not _compatible(source, field.type):
        return None, f"column {field.name!r} is {source}, table has {field.type}"
    try:
        return array.cast(field.type, safe=True), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        return None, f"column {field.name!r} ({source}) does not fit {field.type} without loss: {first_line(e)}"


def _compatible(source: pa.DataType, target: pa.DataType) -> bool:
    t = pa.types
    if t.is_null(source):
        return True
    if t.is_dictionary(source):
        return _compatible(source.value_type, target)
    families = [
        lambda x: t.is_integer(x) or t.is_floating(x) or t.is_decimal(x),
        lambda x: t.is_string(x) or t.is_large_string(x) or t.is_string_view(x),
        lambda x: t.is_binary(x) or t.is_large_binary(x) or t.is_binary_view(x) or t.is_fixed_size_binary(x),
        t.is_timestamp,
        t.is_date,
        t.is_time,
        t.is_boolean,
        lambda x: t.is_list(x) or t.is_large_list(x) or t.is_list_view(x) or t.is_fixed_size_list(x),
        t.is_struct,
        t.is_map,
        t.is_duration,
        t.is_interval,
    ]
    for same_family in families:
        if same_family(source) and same_family(target):
            if t.is_floating(source) and (t.is_integer(target) or t.is_decimal(target)):
                return False
            if t.is_timestamp(source) and (source.tz is None) != (target.tz is None):
                return False
            return True
    return False
