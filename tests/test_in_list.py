"""Long `column IN (constants)` predicates run as a semi join over an Arrow array (expressions.predicate).

The change rows an update or delete builds must be exactly those of the plain SQL predicate, whatever the
constants: escapes, unicode, duplicates, values outside the column's type, case-different column names.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import expressions, operations, testing

ROWS = 300


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    store = logstore.init(tmp_path_factory.mktemp("inlist") / "store")
    words = [f"w{i}" for i in range(ROWS - 5)] + ["it's", "a\\b", "x\ny", "é", ""]
    data = pa.table({
        "k": pa.array(range(-150, ROWS - 150), pa.int64()),
        "s": pa.array(words, pa.string()),
        "small": pa.array([i % 200 - 100 for i in range(ROWS)], pa.int16()),
        "f": pa.array([i / 4 for i in range(ROWS)], pa.float64()),
    })
    return store.create_table("t", data, key="k")


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def change_rows(table, op: str, where: str) -> list:
    head = testing.head(table)
    if op == "delete":
        return operations.delete(head, where).rows.to_pylist()
    return operations.update(head, {"f": "f + 1"}, where).rows.to_pylist()


def both_ways(table, monkeypatch, op: str, where: str):
    fast = change_rows(table, op, where)
    with monkeypatch.context() as patch:
        patch.setattr(expressions, "IN_LIST_MIN", 10**9)
        plain = change_rows(table, op, where)
    return fast, plain


integers = st.one_of(st.integers(-200, ROWS), st.integers(-(2**63), 2**63 - 1))
strings = st.one_of(st.sampled_from(["it's", "a\\b", "x\ny", "é", "", "w1", "W1", "w10 "]), st.text(max_size=4))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(integers, min_size=expressions.IN_LIST_MIN + 1, max_size=150), column=st.sampled_from(["k", "K", "small"]), op=st.sampled_from(["delete", "update"]))
def test_integer_lists_match_the_plain_predicate(table, monkeypatch, values, column, op):
    where = f"{column} IN ({', '.join(map(str, values))})"
    fast, plain = both_ways(table, monkeypatch, op, where)
    assert fast == plain


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(strings, min_size=expressions.IN_LIST_MIN + 1, max_size=120), op=st.sampled_from(["delete", "update"]))
def test_string_lists_match_the_plain_predicate(table, monkeypatch, values, op):
    where = f"s IN ({', '.join(sql_string(v) for v in values)})"
    fast, plain = both_ways(table, monkeypatch, op, where)
    assert fast == plain


def test_the_fast_path_is_taken_only_for_the_plain_shape(table):
    con, columns = testing.connection(testing.store(table)), testing.head(table).columns
    many = ", ".join(str(i) for i in range(100))

    def shape(where):
        return expressions.predicate(con, where, columns)[1]

    found = shape(f"k IN ({many})")
    assert found.column == "k" and found.values.to_pylist() == list(range(100))
    assert shape(f"K IN ({many})").column == "k"
    assert shape(f"k IN ({', '.join(str(i) for i in range(10))})") is None  # short: DuckDB's own filter is better
    assert shape(f"k NOT IN ({many})") is None
    assert shape(f"k IN ({many}, NULL)") is None
    assert shape(f"k IN ({many}, 1.5)") is None
    assert shape(f"k IN ({many}, 1 + 1)") is None
    assert shape(f"f IN ({many})") is None  # a float column: DuckDB's casts decide
    assert shape(f"s IN ({many})") is None  # integers against a string column
    assert shape(f"k + 0 IN ({many})") is None
    assert shape(f"k IN ({many}, {2**64})") is None  # beyond BIGINT
    assert shape(f"k IN ({many}) AND s = 'a'") is None


def test_a_long_list_commits_the_same_as_a_short_one(table, tmp_path):
    store = logstore.init(tmp_path / "store")
    t = store.create_table("t", table.read(), key="k")
    ids = list(range(-150, -50))
    t.update({"f": "-1"}, f"k IN ({', '.join(map(str, ids))})")
    t.delete(f"k IN ({', '.join(map(str, ids[::2]))})")
    rows = {r["k"]: r["f"] for r in t.read().to_pylist()}
    assert all(k not in rows for k in ids[::2]) and all(rows[k] == -1 for k in ids[1::2])
    assert len(rows) == ROWS - 50
    assert t.verify(full=True).ok


def test_the_registered_list_lives_only_as_long_as_the_operation(table):
    head = testing.head(table)
    count = "SELECT count(*) FROM duckdb_views() WHERE view_name LIKE 'logstore_in_list%'"
    with operations._predicate(head, f"k IN ({', '.join(str(i) for i in range(100))})") as (sql, state):
        # the list, and the rows holding its keys if the head cache's key lookup found them (headcache.py)
        views = 1 + (state.startswith("logstore_in_list"))
        assert "logstore_in_list" in sql and head.con.sql(count).fetchall() == [(views,)]
    assert head.con.sql(count).fetchall() == [(0,)]
