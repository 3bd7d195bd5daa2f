"""SQL over a store: DuckDB queries whose table references can travel in time.

    store.sql("SELECT * FROM events AS OF VERSION 3 a JOIN events b USING (id)")   # a DuckDB relation
    store.connect()                                                                # plain connection, one view per table

A bare table name is the table's latest version (resolved when the query is issued). These forms pin a version,
each optionally followed by an alias (`[AS] a`, also `a(x, y)`):

    t AS OF VERSION 3          t VERSION AS OF 3           t AT (VERSION => 3)
    t AS OF TIMESTAMP '...'    t TIMESTAMP AS OF '...'     t AT (TIMESTAMP => TIMESTAMP '...')
    t FOR SYSTEM_TIME AS OF '...'
    a tag wherever a version goes: t AS OF VERSION 'v1.0', t AT (VERSION => 'v1.0')

A value is a number, a string, a typed literal (TIMESTAMP '...', TIMESTAMPTZ '...', DATE '...'), a parameter
(`?` or `$name`), a function call such as now(), CURRENT_TIMESTAMP, or any expression in parentheses; inside
AT (...) any constant expression works. A timestamp without an offset is UTC. A pinned reference always means the
logstore table (a CTE of the same name shadows only bare references).

How a query is rewritten (no regular expressions over the text; string literals, quoted identifiers and comments
are single tokens, so nothing inside them is ever matched or changed):

1. Canonicalize, on tokens (`duckdb.tokenize`): every clause form above that follows a name token is rewritten to
   DuckDB's own `name [AS alias] AT (UNIT => value)` (an alias written after the clause moves before AT), and the
   byte span of every AT clause and its value is recorded.
2. Parse, with DuckDB (`json_serialize_sql`): the statement JSON lists every BASE_TABLE (name, alias, at_clause and
   its byte span), TABLE_FUNCTION, PARAMETER and CTE name, so DuckDB decides what is a table reference.
3. Bind, on a private cursor of the store's connection: each pinned (table, version) the query names becomes a
   TEMP VIEW `"t@vN"` over the materialization plan's SQL (`ScanPlan.select_sql()`), and its BASE_TABLE span is
   replaced by `"t@vN" AS alias`; each bare logstore name becomes a TEMP VIEW of that name at the latest version,
   so DuckDB's binder lets CTEs shadow it. Views are inlined by DuckDB, so projections and filters reach the
   Parquet scans. Only the versions a query names are planned.

store.sql is read-only: INSERT/UPDATE/DELETE/CREATE/DROP/ATTACH/COPY... raise ReadOnlyError (writes go through the
Table API so that they are versioned). Parse errors raise SQLSyntaxError with DuckDB's message and the position in
the query as written; other DuckDB errors raised while binding raise SQLError.

Files: a query sees the store's tables only. It runs on the store's connection, which DuckDB itself confines to the
store's directory (enable_external_access off, allowed_directories = the store root, configuration locked: see
logstore/connection.py), so read_csv('/etc/passwd'), glob('/*') or FROM 'data.csv' outside the store raise
FileAccessError (an SQLError); SET is refused like any statement but a query, and the lock refuses it on the
relation's connection too. allow_files=True runs the query on a fresh connection of its own that can read any file
the process can. store.connect() reads only the files of its views (allowed_paths), unless allow_files=True. No
connection ever installs or loads a DuckDB extension by itself.

Extension point: table functions. TABLE_FUNCTIONS maps a (lower-case) function name to
`fn(store, *args, **kwargs)`; a call `name(arg, ..., key := value)` in a FROM clause is found in the statement
JSON, its arguments are evaluated as constants by DuckDB (or taken from params), and `fn` returns either a SQL
SELECT string (best: DuckDB keeps pushdown; `version_sql(table, version)` gives the SQL of one version) or anything
DuckDB can register and scan (a pyarrow Table or RecordBatchReader, a pandas or polars DataFrame). The call is
replaced by a reference to a per-query view of that result, aliased as written (or by the function name).
Register with `register_table_function("table_changes", fn)`.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from . import changes, connection, planner, selectors
from .errors import (
    FileAccessError,
    LogstoreError,
    ReadOnlyError,
    SQLError,
    SQLSyntaxError,
    TableNotFoundError,
    TimestampError,
    VersionNotFoundError,
    first_line,
)
from .schema import quote

VERSION, TIMESTAMP = "VERSION", "TIMESTAMP"
NO_LOCATION = 2**64 - 1
WRITE_STATEMENTS = {
    "INSERT", "UPDATE", "DELETE", "CREATE", "CREATE_FUNC", "DROP", "ALTER", "ATTACH", "DETACH", "COPY",
    "COPY_DATABASE", "EXPORT", "IMPORT", "MERGE_INTO", "VACUUM", "LOAD", "UPDATE_EXTENSIONS",
}
# DuckDB's parser gives some statements the type of another: INSTALL and FORCE INSTALL are LOAD statements,
# ANALYZE a VACUUM one, CHECKPOINT a CALL, USE and RESET SET ones. A refusal names them as written.
SPELLINGS = {
    "LOAD": ("FORCE INSTALL", "INSTALL", "LOAD"),
    "VACUUM": ("ANALYZE", "VACUUM"),
    "CALL": ("FORCE CHECKPOINT", "CHECKPOINT", "CALL"),
    "SET": ("RESET", "USE", "SET"),
}
TYPED_LITERALS = {"TIMESTAMP", "TIMESTAMPTZ", "DATE"}
CONSTANT_WORDS = {"CURRENT_TIMESTAMP", "CURRENT_DATE", "NOW"}

TableFunction = Callable[..., Any]
TABLE_FUNCTIONS: dict[str, TableFunction] = {
    "table_changes": changes.sql_table_changes,  # the change feed and diff (changes.py) as table functions
    "table_diff": changes.sql_table_diff,
}


def register_table_function(name: str, fn: TableFunction) -> None:
    """Make `name(...)` usable in FROM clauses of store.sql; see the module docstring for the contract."""
    TABLE_FUNCTIONS[name.lower()] = fn


def version_sql(table, version: int) -> str:
    """SQL selecting the table's columns (not _row_id, no ordering) at `version`, over the Parquet files."""
    return _version_sql(table._files, version)


def _version_sql(files: planner.TableFiles, version: int) -> str:
    return _plan_sql(planner.checked_plan(files, version, build=planner.scan_plan))


def _plan_sql(plan) -> str:
    """The rows of a version in the table's row order (scan.py), the table's columns only."""
    return plan.select_sql()


# --- public entry points -----------------------------------------------------------------------------------


def sql(store, query: str, params=None, *, allow_files: bool = False) -> duckdb.DuckDBPyRelation:
    """Run one read-only query over the store's tables; returns a DuckDB relation (.arrow(), .df(), .pl(), ...).

    allow_files=True lets the query read files outside the store (see "Files" in the module docstring)."""
    if not isinstance(query, str):
        raise SQLError(str(query), f"the query must be a string, not {type(query).__name__}")
    return _Query(store, query, params, allow_files=allow_files).run()


def connect(store, *, allow_files: bool = False) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with one view per table at its latest version (plain SQL, no time travel).

    It can open only the Parquet files those views read, and its configuration is locked; allow_files=True makes
    a connection that can open any file (and be configured)."""
    tables = _tables(store)
    plans = {name: _latest_plan(tables.get(name)) for name in tables.names}
    con = connection.new(files=None if allow_files else _files_of(plans.values()), cache_parquet_metadata=True)
    for name, plan in plans.items():
        con.execute(f"CREATE VIEW {quote(name)} AS {_plan_sql(plan)}")
    return con


def _latest_plan(files: planner.TableFiles):
    return planner.checked_plan(files, files.log.latest(), build=planner.scan_plan)


def _files_of(plans) -> connection.Confined:
    """Exactly the Parquet files these plans read (DuckDB's allowed_paths: no directory listing, no other file)."""
    return connection.Confined(paths=tuple(sorted({s.url for plan in plans for s in plan.sources() if not s.table})))


# --- tokens ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    start: int  # byte offsets into the UTF-8 text
    end: int
    kind: str  # identifier, keyword, numeric_const, string_const, operator, comment
    text: str

    @property
    def word(self) -> str | None:
        """The upper-cased text of an unquoted word, else None (so '"AS"' or 'AS' in a string never matches)."""
        if self.kind == "keyword" or (self.kind == "identifier" and not self.text.startswith('"')):
            return self.text.upper()
        return None


def tokens(raw: bytes) -> list[Token]:
    text = raw.decode()
    pairs = duckdb.tokenize(text)
    out = []
    for i, (start, kind) in enumerate(pairs):
        stop = pairs[i + 1][0] if i + 1 < len(pairs) else len(raw)
        chunk = raw[start:stop].rstrip()
        out.append(Token(start, start + len(chunk), kind.name, chunk.decode(errors="replace")))
    return out


_keyword_lock = threading.Lock()
_keyword_categories: dict[str, str] = {}


def _keyword_category(word: str) -> str | None:
    with _keyword_lock:
        if not _keyword_categories:
            rows = connection.new().sql("SELECT keyword_name, keyword_category FROM duckdb_keywords()").fetchall()
            _keyword_categories.update((name.upper(), category) for name, category in rows)
    return _keyword_categories.get(word)


def _is_name(tok: Token | None) -> bool:
    """A token that can name a table or an alias: an identifier or a keyword DuckDB allows as one."""
    if tok is None:
        return False
    if tok.kind == "identifier":
        return True
    return tok.kind == "keyword" and _keyword_category(tok.text.upper()) in ("unreserved", "column_name")


def _matching(toks: list[Token], i: int) -> int | None:
    """Index of the ')' closing the '(' at toks[i]."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].kind != "operator":
            continue
        depth += toks[j].text.count("(") - toks[j].text.count(")")
        if depth <= 0 and ")" in toks[j].text:
            return j if depth == 0 and toks[j].text == ")" else None
    return None


def statement_kind(statement) -> tuple[str, str]:
    """(category, name) of a statement from duckdb's extract_statements: the category is DuckDB's statement type
    (what decides whether it is refused as a write), the name is how a refusal calls it, as written where DuckDB's
    type lumps several statements together (SPELLINGS). A type DuckDB's Python enum lacks (UPDATE EXTENSIONS in
    DuckDB 2.0) is named by the statement's first words."""
    words = [tok.word for tok in tokens(statement.query.encode()) if tok.kind != "comment"][:2]
    words = [w for w in words if w is not None]
    try:
        category = statement.type.name
    except ValueError:
        name = " ".join(words) or "unknown"
        return name.replace(" ", "_").upper(), name
    for spelled in SPELLINGS.get(category, ()):
        if words[: spelled.count(" ") + 1] == spelled.split():
            return category, spelled
    return category, category


# --- step 1: canonicalize ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    """An AT clause in the canonical text (byte offsets): the whole clause and its value."""

    start: int
    end: int
    unit: str
    value_start: int
    value_end: int
    original: int  # where the clause starts in the query as written


@dataclass(frozen=True)
class Splice:
    orig_start: int
    orig_end: int
    new_start: int
    new_end: int


def canonicalize(raw: bytes) -> tuple[bytes, list[Clause], list[Splice]]:
    """Rewrite every time-travel clause to `[AS alias] AT (UNIT => value)`; see the module docstring."""
    toks = [t for t in tokens(raw) if t.kind != "comment"]
    out, clauses, splices = bytearray(), [], []
    copied = 0  # raw[:copied] is in `out`
    i = 1
    while i < len(toks):
        found = _clause_at(toks, i) if toks[i - 1].kind in ("identifier", "keyword") else None
        if found is None:
            i += 1
            continue
        unit, value_first, value_last, after, native = found
        alias_end = _alias_end(toks, after)
        value = raw[toks[value_first].start : toks[value_last].end]
        if native and alias_end == after:  # DuckDB's own form, nothing to move: record it, change nothing
            start = len(out) + toks[i].start - copied
            clauses.append(
                Clause(start, start + toks[after - 1].end - toks[i].start, unit,
                       start + toks[value_first].start - toks[i].start, start + toks[value_last].end - toks[i].start, toks[i].start)
            )
            i = after
            continue
        out += raw[copied : toks[i].start]
        region_end = toks[alias_end - 1].end
        alias = raw[toks[after].start : region_end] + b" " if alias_end > after else b""
        new_start = len(out)
        head = b" " + alias + b"AT (" + unit.encode() + b" => "
        out += head + value + b")"
        clauses.append(Clause(new_start + 1 + len(alias), len(out), unit, new_start + len(head), new_start + len(head) + len(value), toks[i].start))
        splices.append(Splice(toks[i].start, region_end, new_start, len(out)))
        copied = region_end
        i = alias_end
    out += raw[copied:]
    return bytes(out), clauses, splices


def _clause_at(toks: list[Token], i: int):
    """(unit, first value token, last value token, index after the clause, is DuckDB's AT form) or None."""

    def word(k):
        return toks[k].word if k < len(toks) else None

    def text(k):
        return toks[k].text if k < len(toks) else None

    if word(i) == "AS" and word(i + 1) == "OF" and word(i + 2) in (VERSION, TIMESTAMP):
        unit, v = word(i + 2), i + 3
    elif word(i) in (VERSION, TIMESTAMP) and word(i + 1) == "AS" and word(i + 2) == "OF":
        unit, v = word(i), i + 3
    elif word(i) == "FOR" and word(i + 1) == "SYSTEM_TIME" and word(i + 2) == "AS" and word(i + 3) == "OF":
        unit, v = TIMESTAMP, i + 4
    elif word(i) == "AT" and text(i + 1) == "(" and word(i + 2) is not None and text(i + 3) == "=>":
        close = _matching(toks, i + 1)
        if close is None or close <= i + 4:
            return None
        return word(i + 2), i + 4, close - 1, close + 1, True
    else:
        return None
    end = _value_end(toks, v)
    return None if end is None else (unit, v, end - 1, end, False)


def _value_end(toks: list[Token], v: int) -> int | None:
    if v >= len(toks):
        return None
    tok, nxt = toks[v], toks[v + 1] if v + 1 < len(toks) else None
    if tok.kind in ("numeric_const", "string_const") or tok.text == "?":
        return v + 1
    if tok.text in ("-", "+") and nxt is not None and nxt.kind == "numeric_const":
        return v + 2
    if tok.text == "$" and nxt is not None and nxt.start == tok.end and nxt.kind in ("identifier", "keyword", "numeric_const"):
        return v + 2
    if tok.word in TYPED_LITERALS and nxt is not None and nxt.kind == "string_const":
        return v + 2
    if tok.text == "(" or (tok.kind in ("identifier", "keyword") and nxt is not None and nxt.text == "("):
        start = v if tok.text == "(" else v + 1
        close = _matching(toks, start)
        return None if close is None else close + 1
    if tok.word in CONSTANT_WORDS:
        return v + 1
    return None


def _alias_end(toks: list[Token], k: int) -> int:
    """Index after an alias (`[AS] name [(columns)]`) starting at toks[k]; k itself when there is none."""
    if k < len(toks) and toks[k].word == "AS" and _is_name(toks[k + 1] if k + 1 < len(toks) else None):
        j = k + 2
    elif k < len(toks) and _is_name(toks[k]):
        j = k + 1
    else:
        return k
    if j < len(toks) and toks[j].text == "(":
        close = _matching(toks, j)
        if close is not None:
            j = close + 1
    return j


def to_original(position: int, splices: list[Splice]) -> int:
    """A byte offset in the canonical text, mapped back to the query as written."""
    shift = 0
    for s in splices:
        if position < s.new_start:
            break
        if position < s.new_end:
            return s.orig_start
        shift = s.orig_end - s.new_end
    return position + shift


# --- steps 2 and 3: parse and bind -------------------------------------------------------------------------


@dataclass
class _Found:
    base_tables: list = field(default_factory=list)
    functions: list = field(default_factory=list)
    parameters: list = field(default_factory=list)
    ctes: set = field(default_factory=set)


def _walk(node, found: _Found) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            found.base_tables.append(node)
        elif kind == "TABLE_FUNCTION":
            found.functions.append(node)
        elif node.get("class") == "PARAMETER":
            found.parameters.append(node)
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            found.ctes.update(entry["key"].lower() for entry in cte_map.get("map", []))
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)


_table_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _TableCache:
    """The tables of one store (their TableFiles), kept so their commit-record caches survive between queries."""

    def __init__(self, store):
        self.store = store
        self.objects: dict = {}
        self.names: list[str] = []

    def refresh(self) -> list[str]:
        self.names = self.store.tables()
        return self.names

    def lookup(self, name: str) -> str | None:
        if name in self.names:
            return name
        folded = [n for n in self.names if n.lower() == name.lower()]
        return folded[0] if len(folded) == 1 else None

    def get(self, name: str) -> planner.TableFiles:
        files = self.objects.get(name)
        if files is None:
            files = self.objects[name] = self.store.table(name)._files
        return files


def _tables(store) -> _TableCache:
    cache = _table_cache.get(store)
    if cache is None:
        cache = _table_cache[store] = _TableCache(store)
    cache.refresh()
    return cache


class _Query:
    def __init__(self, store, query: str, params, *, allow_files: bool):
        self.store = store
        self.query = query
        self.raw = query.encode()
        self.params = params
        # the store's connection is confined to the store's directory; with allow_files, a fresh one that is not
        self.con = connection.new(cache_parquet_metadata=True) if allow_files else store._connection().cursor()

    # errors point at the query as written, in characters
    def _char(self, byte_position: int | None) -> int | None:
        if byte_position is None:
            return None
        return len(self.raw[:byte_position].decode(errors="ignore"))

    def _error(self, message: str, canonical_position: int | None = None, cls=SQLError) -> SQLError:
        original = None if canonical_position is None else to_original(canonical_position, self.splices)
        return cls(self.query, message, self._char(original))

    def run(self) -> duckdb.DuckDBPyRelation:
        try:
            self.canonical, self.clauses, self.splices = canonicalize(self.raw)
        except (duckdb.Error, UnicodeError) as e:
            raise SQLSyntaxError(self.query, f"cannot tokenize the query: {e}") from None
        parsed = json.loads(self.con.execute("SELECT json_serialize_sql(?)", [self.canonical.decode()]).fetchall()[0][0])
        if parsed.get("error"):
            self._refuse_non_select(parsed)
        statements = parsed["statements"]
        if len(statements) != 1:
            raise SQLError(self.query, f"give one statement at a time (got {len(statements)})")
        found = _Found()
        _walk(statements[0], found)
        self.tables = _tables(self.store)
        self.consumed: set[str] = set()
        replacements = self._bind_pinned(found) + self._bind_functions(found)
        self._bind_latest(found, replacements)
        final = self._splice(replacements).decode()
        params = self._remaining_params(found, replacements)
        try:
            return self.con.sql(final) if params is None else self.con.sql(final, params=params)
        except duckdb.ParserException as e:
            raise SQLSyntaxError(self.query, first_line(e)) from None
        except duckdb.PermissionException as e:
            raise FileAccessError(self.query, first_line(e)) from None
        except duckdb.Error as e:
            raise SQLError(self.query, first_line(e)) from e

    def _refuse_non_select(self, parsed: dict):
        if parsed.get("error_type") == "parser":
            position = parsed.get("position")
            raise self._error(parsed.get("error_message", "syntax error"), int(position) if position else None, SQLSyntaxError)
        try:
            statements = self.con.extract_statements(self.canonical.decode())
        except duckdb.Error as e:
            raise SQLSyntaxError(self.query, first_line(e)) from None
        for statement in statements:
            category, kind = statement_kind(statement)
            if category in WRITE_STATEMENTS:
                raise ReadOnlyError(self.query, kind, self._mentioned_tables())
            if category != "SELECT":
                hint = " (for a plan, call .explain() on the relation store.sql returns)" if kind == "EXPLAIN" else ""
                raise SQLError(self.query, f"{kind} statements are not supported: store.sql runs queries (SELECT, FROM, WITH, DESCRIBE, SUMMARIZE){hint}")
        raise SQLError(self.query, f"cannot read the query: {parsed.get('error_message')}")

    def _mentioned_tables(self) -> set[str]:
        names = _tables(self.store)
        mentioned = set()
        for tok in tokens(self.raw):
            if tok.kind in ("identifier", "keyword"):
                name = tok.text[1:-1].replace('""', '"') if tok.text.startswith('"') else tok.text
                hit = names.lookup(name)
                if hit is not None:
                    mentioned.add(hit)
        return mentioned

    def _table(self, node: dict, name: str) -> planner.TableFiles:
        real = self.tables.lookup(name)
        if real is None:
            raise TableNotFoundError(name, self.tables.names)
        return self.tables.get(real)

    def _bind_pinned(self, found: _Found) -> list[tuple[int, int, bytes]]:
        out, views = [], {}
        for node in found.base_tables:
            at = node.get("at_clause")
            if not at:
                continue
            start, length = node["query_location"], node["query_location_length"]
            name = node["table_name"]
            if start == NO_LOCATION:
                raise SQLError(self.query, f"cannot locate the time-travel reference to {name!r}; write it in a FROM clause")
            clause = next((c for c in self.clauses if start <= c.start < start + length), None)
            if clause is None:
                raise self._error(f"cannot read the AT clause of {name!r}", start)
            if node.get("schema_name") or node.get("catalog_name"):
                raise self._error(f"time travel applies to logstore tables, not {node['schema_name']}.{name}", start)
            files = self._table(node, name)
            version = self._version(files, clause, at)
            view = f"{files.name}@v{version}"
            if view not in views:
                views[view] = _version_sql(files, version)
                self.con.execute(f"CREATE TEMP VIEW {quote(view)} AS {views[view]}")
            alias = _alias_sql(node.get("alias") or name, node.get("column_name_alias") or [])
            tail = self.canonical[clause.end : start + length]  # e.g. TABLESAMPLE after the clause
            out.append((start, start + length, f"{quote(view)} AS {alias}".encode() + tail))
        return out

    def _version(self, files: planner.TableFiles, clause: Clause, at: dict) -> int:
        """The version an AT clause names: a tag (a string) or a version for VERSION, a moment for TIMESTAMP
        (selectors.py resolves them as the API does)."""
        unit = at.get("unit", "").upper()
        expr = at.get("expr") or {}
        value = self._evaluate(clause.value_start, clause.value_end, expr)
        if unit == VERSION:
            if isinstance(value, str):
                return selectors.resolve(files, tag=value)
            if isinstance(value, int) and not isinstance(value, bool):
                return selectors.resolve(files, version=value)
            raise VersionNotFoundError(value, files.log.latest())
        if unit == TIMESTAMP:
            if isinstance(value, (str, dt.date)) or hasattr(value, "to_pydatetime"):
                return selectors.resolve(files, as_of=value)
            raise TimestampError(value, f"cannot read {value!r} as a timestamp (give a string or a TIMESTAMP)")
        raise self._error(f"unknown time-travel unit {unit!r} (use VERSION or TIMESTAMP)", clause.start)

    def _evaluate(self, start: int, end: int, expr: dict | None = None):
        """The value of a constant expression at canonical[start:end]: a parameter, or DuckDB's evaluation."""
        if expr and expr.get("class") == "PARAMETER":
            return self._param(expr["identifier"], start)
        text = self.canonical[start:end].decode()
        inner = tokens(self.canonical[start:end])
        if any(t.text in ("?", "$") for t in inner):
            raise self._error("a parameter in a time-travel clause or table function argument must stand alone", start)
        if len(inner) == 1 and inner[0].kind == "numeric_const" and text.isdigit():
            return int(text)
        try:
            return self.con.execute(f"SELECT {text}").fetchall()[0][0]
        except duckdb.PermissionException as e:
            raise FileAccessError(self.query, first_line(e)) from None
        except duckdb.Error as e:
            raise self._error(f"cannot evaluate {text!r}: {first_line(e)}", start) from None

    def _param(self, identifier: str, position: int):
        self.consumed.add(identifier)
        params = self.params
        try:
            if isinstance(params, dict):
                return params[identifier]
            if params is not None and identifier.isdigit():
                return list(params)[int(identifier) - 1]
        except (KeyError, IndexError):
            pass
        raise self._error(f"no value for parameter {identifier!r}", position)

    def _bind_functions(self, found: _Found) -> list[tuple[int, int, bytes]]:
        out = []
        for n, node in enumerate(found.functions):
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            fn = TABLE_FUNCTIONS.get(name)
            if fn is None or function.get("schema") or function.get("catalog"):
                continue
            start, length = node["query_location"], node["query_location_length"]
            if start == NO_LOCATION:
                raise SQLError(self.query, f"cannot locate the call to {name}(); write it in a FROM clause")
            args, kwargs = self._arguments(start, start + length, function)
            try:
                result = fn(self.store, *args, **kwargs)
            except LogstoreError:
                raise
            except TypeError as e:
                raise self._error(f"{name}(): {e}", start) from None
            view = f"{name}#{n}"
            if isinstance(result, str):
                self.con.execute(f"CREATE TEMP VIEW {quote(view)} AS {result}")
            else:
                self.con.register(view, result)
            alias = _alias_sql(node.get("alias") or name, node.get("column_name_alias") or [])
            out.append((start, start + length, f"{quote(view)} AS {alias}".encode()))
        return out

    def _arguments(self, start: int, end: int, function: dict):
        """Evaluate the arguments of a table function call spanning canonical[start:end]."""
        toks = tokens(self.canonical[start:end])
        opening = next((k for k, t in enumerate(toks) if t.text == "("), None)
        close = _matching(toks, opening) if opening is not None else None
        if close is None:
            raise self._error("cannot read the arguments of this table function", start)
        pieces, depth, first = [], 0, opening + 1
        for k in range(opening + 1, close + 1):
            t = toks[k]
            if t.kind == "operator":
                depth += t.text.count("(") - t.text.count(")")
            if k == close or (depth == 0 and t.text == ","):
                if k > first:
                    pieces.append((first, k - 1))
                first = k + 1
        arguments = function.get("arguments") or []
        args, kwargs = [], {}
        for index, (a, b) in enumerate(pieces):
            key = None
            if b > a + 1 and toks[a + 1].text in (":=", "=>") and toks[a].kind in ("identifier", "keyword"):
                key, a = toks[a].text.strip('"'), a + 2
            expr = arguments[index].get("expression") if index < len(arguments) and isinstance(arguments[index], dict) else None
            value = self._evaluate(start + toks[a].start, start + toks[b].end, expr if (expr or {}).get("class") == "PARAMETER" else None)
            if key is None:
                args.append(value)
            else:
                kwargs[key] = value
        return args, kwargs

    def _bind_latest(self, found: _Found, replacements) -> None:
        """TEMP VIEWs for the bare logstore names the query uses; unknown plain names raise TableNotFoundError."""
        replaced = [(a, b) for a, b, _ in replacements]
        created = set()
        for node in found.base_tables:
            if node.get("at_clause") or node.get("schema_name") or node.get("catalog_name"):
                continue
            name = node["table_name"]
            location = node["query_location"]
            if any(a <= location < b for a, b in replaced):
                continue
            real = self.tables.lookup(name)
            if real is not None:
                if real not in created:
                    files = self.tables.get(real)
                    self.con.execute(f"CREATE TEMP VIEW {quote(real)} AS {_version_sql(files, files.log.latest())}")
                    created.add(real)
            elif name.lower() not in found.ctes and not self._known_to_duckdb(name) and not _looks_like_file(name):
                raise TableNotFoundError(name, self.tables.names)

    def _known_to_duckdb(self, name: str) -> bool:
        rows = self.con.execute(
            "SELECT 1 FROM duckdb_tables() WHERE lower(table_name) = lower(?) "
            "UNION ALL SELECT 1 FROM duckdb_views() WHERE lower(view_name) = lower(?)",
            [name, name],
        ).fetchall()
        return bool(rows)

    def _splice(self, replacements) -> bytes:
        out, copied = bytearray(), 0
        for a, b, text in sorted(replacements):
            if a < copied:  # nested inside a span already replaced (e.g. a table function argument)
                continue
            out += self.canonical[copied:a] + text
            copied = b
        return bytes(out + self.canonical[copied:])

    def _remaining_params(self, found: _Found, replacements):
        if self.params is None:
            return None
        spans = [(a, b) for a, b, _ in replacements]
        remaining = [p["identifier"] for p in found.parameters if not any(a <= p["query_location"] < b for a, b in spans)]
        if isinstance(self.params, dict):
            return {k: v for k, v in self.params.items() if k in remaining} if self.consumed else self.params
        if not self.consumed:
            return self.params
        values = list(self.params)
        questions = all(self.canonical[p["query_location"] : p["query_location"] + 1] == b"?" for p in found.parameters)
        if not questions:
            raise SQLError(self.query, "use ? (or $name with a dict) for parameters in time-travel clauses and table functions")
        try:
            return [values[int(i) - 1] for i in sorted(set(remaining), key=int)]
        except IndexError:
            raise SQLError(self.query, f"the query has more parameters than the {len(values)} given") from None


def _alias_sql(alias: str, columns: list[str]) -> str:
    text = quote(alias)
    if columns:
        text += "(" + ", ".join(quote(c) for c in columns) + ")"
    return text


def _looks_like_file(name: str) -> bool:
    """A replacement scan such as FROM 'data.csv': DuckDB reads the file; it is not a table name."""
    return any(ch in name for ch in "./\\:*")
