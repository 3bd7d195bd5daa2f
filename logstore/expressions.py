"""User-supplied SQL expressions (predicates, SET values): parsed by DuckDB, checked, never pasted in blindly.

An expression must parse as exactly one scalar expression: no second statement, no FROM, no subquery (so no table
function can read or write files), and it must bind against the table's columns.
"""

from __future__ import annotations

import json

import duckdb

from .errors import InvalidExpressionError
from .schema import Column, quote


def check(con: duckdb.DuckDBPyConnection, expression, columns: tuple[Column, ...], *, kind: str, bind: bool = True) -> str:
    """Return `expression` if it is one safe scalar expression over `columns`, else raise InvalidExpressionError.

    bind=False skips the binding probe, for a caller that runs the expression in a WHERE clause itself and turns
    DuckDB's error into an InvalidExpressionError (binding a predicate of 1,000 constants costs ~8 ms).
    """
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidExpressionError(str(expression), f"the {kind} must be a non-empty SQL expression string")
    text, tree = _parse(con, expression)
    _check_shape(expression, text, tree, kind)
    if bind:
        _bind(con, expression, columns)
    return expression


def _parse(con, expression: str) -> tuple[str, dict]:
    text = con.execute("SELECT json_serialize_sql(?)", [f"SELECT {expression}"]).fetchall()[0][0]
    tree = json.loads(text)
    if tree.get("error"):
        raise InvalidExpressionError(expression, f"DuckDB cannot parse it: {tree.get('error_message')}")
    return text, tree


def _check_shape(expression: str, text: str, tree: dict, kind: str) -> None:
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise InvalidExpressionError(expression, f"the {kind} must be one expression, not {len(statements)} statements")
    node = statements[0]["node"]
    single = (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list", [])) == 1
        and node.get("from_table", {}).get("type") == "EMPTY"
        and not node.get("where_clause")
        and not node.get("group_expressions")
        and not node.get("having")
        and not node.get("qualify")
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
    )
    if not single:
        raise InvalidExpressionError(expression, f"the {kind} must be a single SQL expression")
    # a subquery node has class SUBQUERY or a "subquery" field; when neither word occurs anywhere in the parser's
    # JSON (string literals included), there is none, and the walk over a tree of 1,000 constants can be skipped
    maybe = _SUBQUERY_CLASS in text or _SUBQUERY_FIELD in text
    if maybe and _contains_subquery(node["select_list"][0]):
        raise InvalidExpressionError(expression, f"subqueries are not allowed in a {kind}")


_SUBQUERY_CLASS, _SUBQUERY_FIELD = '"SUBQUERY"', '"subquery"'


def _contains_subquery(obj) -> bool:
    if isinstance(obj, dict):
        if obj.get("class") == "SUBQUERY" or "subquery" in obj:
            return True
        return any(_contains_subquery(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_contains_subquery(v) for v in obj)
    return False


def _bind(con, expression: str, columns: tuple[Column, ...]) -> None:
    probe = ", ".join(f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in columns) or "NULL AS _none"
    try:
        # in a WHERE clause so that aggregates and window functions are refused as well
        con.execute(f"SELECT 1 FROM (SELECT {probe}) AS t WHERE (({expression}) IS NULL OR true) LIMIT 0").fetchall()
    except duckdb.Error as e:
        raise InvalidExpressionError(expression, _message(e)) from None


def _message(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
