"""Fast paths of the commit (issue 13) give the answers of the paths they skip.

- operations._plain_in_list reads `column IN (<integers>)` without DuckDB's parser: whenever it finds an InList,
  expressions.predicate (the parser's reading) finds the same one.
- SET expressions are checked once per (expression, columns), and a string literal assigned to a VARCHAR column is
  not sent to DuckDB's parser at all: invalid expressions are still refused.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import expressions, operations
from logstore.schema import Column

COLUMNS = (Column("id", "BIGINT"), Column("Order", "INTEGER"), Column("select", "BIGINT"), Column("s", "VARCHAR"), Column("f", "DOUBLE"), Column("we ird", "SMALLINT"))
NAMES = ["id", "ID", '"id"', '"ID"', "Order", '"Order"', "select", '"select"', "s", "f", '"we ird"', '"we ""ird"', "nope", "id2", "_id"]
SPACES = st.sampled_from(["", " ", "  ", "\n", "\t"])
NUMBERS = st.one_of(st.integers(0, 10**6), st.integers(0, 2**64), st.sampled_from(["007", "0", "9223372036854775807", "9223372036854775808", "-1", "1.5", "1e3", "NULL", "'1'", "1_000"]))


@pytest.fixture(scope="module")
def con():
    return duckdb.connect()


@st.composite
def predicates(draw):
    name = draw(st.sampled_from(NAMES))
    numbers = draw(st.lists(NUMBERS, min_size=expressions.IN_LIST_MIN - 2, max_size=expressions.IN_LIST_MIN + 40))
    sep = draw(SPACES) + "," + draw(SPACES)
    inside = sep.join(str(n) for n in numbers)
    keyword = draw(st.sampled_from(["IN", "in", "In", "NOT IN"]))
    return f"{draw(SPACES)}{name}{draw(st.sampled_from([' ', '  ', chr(10)]))}{keyword}{draw(SPACES)}({draw(SPACES)}{inside}{draw(SPACES)}){draw(SPACES)}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=predicates())
def test_plain_in_list_agrees_with_the_parser(con, where):
    fast = operations._plain_in_list(con, where, COLUMNS)
    if fast is None:
        return
    try:
        _, parsed = expressions.predicate(con, where, COLUMNS)
    except logstore.InvalidExpressionError as e:
        raise AssertionError(f"the parser refuses what the fast path took: {where!r}: {e}") from None
    assert parsed is not None and parsed.column == fast.column and parsed.values.equals(fast.values), where


def test_plain_in_list_reads_the_benchmark_shape(con):
    where = f"id IN ({', '.join(str(i) for i in range(1000))})"
    found = operations._plain_in_list(con, where, COLUMNS)
    assert found is not None and found.column == "id" and found.values.equals(pa.array(range(1000), pa.int64()))
    assert operations._plain_in_list(con, "select IN (" + ", ".join(["1"] * 70) + ")", COLUMNS) is None  # reserved
    assert operations._plain_in_list(con, "id IN (1, 2, 3)", COLUMNS) is None  # short: stays in the SQL


def test_set_expressions_are_still_checked(tmp_path):
    t = logstore.init(tmp_path / "s").create_table("t", pa.table({"id": [1, 2], "s": ["a", "b"], "f": [1.0, 2.0]}), key="id")
    t.update({"s": "'it''s'", "f": "f + 1"}, "id = 1")
    t.update({"s": "'x'", "f": "f + 1"}, "id = 2")  # f + 1 checked before: remembered
    assert t.read().to_pylist() == [{"id": 1, "s": "it's", "f": 2.0}, {"id": 2, "s": "x", "f": 3.0}]
    for bad in ("f +", "(SELECT 1)", "sum(f)", "'a'; DROP TABLE x", "'unterminated"):
        with pytest.raises(logstore.InvalidExpressionError):
            t.update({"f": bad}, "id = 1")
    with pytest.raises(logstore.InvalidExpressionError):
        t.update({"s": "'a' || (SELECT 'b')"}, "id = 1")
    with pytest.raises(logstore.InvalidExpressionError):
        t.update({"f": "'not a number'"}, "id = 1")  # a literal, but not for a VARCHAR column: checked, refused
    assert t.version == 2
