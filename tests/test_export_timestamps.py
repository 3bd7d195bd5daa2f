"""Timestamps in CSV output (issue 13, round 5): a TIMESTAMP column is written by DuckDB's CSV writer with
TIMESTAMPFORMAT instead of a strftime per value in the SELECT. The bytes must be those strftime gave, for every value
DuckDB can hold: NULL, the infinities, years before 1 and after 9999, any microseconds; nested timestamps (lists,
structs) keep DuckDB's own text, and the other timestamp types (with a time zone, seconds, milliseconds, nanoseconds)
their strftime forms."""

from __future__ import annotations

import csv
import io
import json

import duckdb
import pytest

from logstore import connection, export

VALUES = [
    "NULL",
    "'infinity'",
    "'-infinity'",
    "'1970-01-01'",
    "'0001-01-01 00:00:00'",
    "'0010-02-03 04:05:06.07'",
    "'-0044-03-15 10:00:00'",
    "'1969-12-31 23:59:59.999999'",
    "'2022-06-01 12:34:56.000001'",
    "'2022-06-01 12:34:56.5'",
    "'9999-12-31 23:59:59.999999'",
    "'294246-12-31 23:59:59'",
]
LOCAL = "%Y-%m-%dT%H:%M:%S.%f"


@pytest.fixture
def con():
    c = connection.new()
    rows = ", ".join(f"({i}, CAST({v} AS TIMESTAMP))" for i, v in enumerate(VALUES))
    c.execute(f"CREATE TABLE t AS SELECT * FROM (VALUES {rows}) AS v(i, ts)")
    yield c
    c.close()


def _csv(relation: duckdb.DuckDBPyRelation) -> str:
    out = io.BytesIO()
    export.write_relation(relation, out, "csv")
    return out.getvalue().decode()


def test_a_timestamp_column_as_strftime_wrote_it(con):
    got = _csv(con.sql("SELECT i, ts FROM t ORDER BY i"))
    expected = con.sql(f"SELECT i, strftime(ts, '{LOCAL}') AS s FROM t ORDER BY i").fetchall()
    rows = list(csv.reader(io.StringIO(got)))
    assert rows[0] == ["i", "ts"]
    assert [tuple(r) for r in rows[1:]] == [(str(i), "" if s is None else s) for i, s in expected]
    assert rows[9][1] == "2022-06-01T12:34:56.000001" and rows[4][1] == "1970-01-01T00:00:00.000000"
    assert rows[2][1] == "infinity" and rows[1][1] == ""


def test_the_same_bytes_as_the_strftime_select(con):
    """Every kind of column next to each other: the whole file is byte for byte what a strftime per TIMESTAMP value
    wrote (the COPY before round 5), written here by hand."""
    kinds = (
        "i, ts, [ts] AS l, {'a': ts, 'b': [ts]} AS s, CAST(ts AS TIMESTAMPTZ) AS tz, "
        "CAST(CASE WHEN isfinite(ts) AND year(ts) BETWEEN 1700 AND 2200 THEN ts END AS TIMESTAMP_NS) AS ns, "
        "CAST(CASE WHEN isfinite(ts) AND year(ts) BETWEEN 1700 AND 2200 THEN ts END AS TIMESTAMP_MS) AS ms, 1.5 AS d"
    )
    con.execute("SET TimeZone = 'UTC'")
    got = _csv(con.sql(f"SELECT {kinds} FROM t ORDER BY i"))
    by_hand = (
        f"SELECT i, strftime(ts, '{LOCAL}') AS ts, l, s, strftime(tz AT TIME ZONE 'UTC', '{LOCAL}Z') AS tz, "
        f"strftime(ns, '{LOCAL}') AS ns, strftime(ms, '{LOCAL}') AS ms, d FROM (SELECT {kinds} FROM t) ORDER BY i"
    )
    with connection.new() as plain:
        plain.execute(f"CREATE TABLE t AS SELECT * FROM (VALUES {', '.join(f'({i}, CAST({v} AS TIMESTAMP))' for i, v in enumerate(VALUES))}) AS v(i, ts)")
        plain.execute("SET TimeZone = 'UTC'")
        expected = io.BytesIO()
        export.write_relation(plain.sql(by_hand), expected, "csv")  # all text but l and s: nothing for the writer to format
    assert got.encode() == expected.getvalue()


def test_json_keeps_strftime(con):
    out = io.BytesIO()
    export.write_relation(con.sql("SELECT i, ts FROM t WHERE i IN (3, 8) ORDER BY i"), out, "json")
    assert json.loads(out.getvalue()) == [{"i": 3, "ts": "1970-01-01T00:00:00.000000"}, {"i": 8, "ts": "2022-06-01T12:34:56.000001"}]


def test_lists_of_timestamps_and_decimals_are_written_by_duckdb(con):
    """A bug before round 5: a column of type TIMESTAMP[] (or TIMESTAMPTZ[], TIMESTAMP_NS[]) was given strftime, as
    if it were one timestamp (a binder error: `logstore sql "SELECT [ts] ..." -f csv` failed), and a DECIMAL(...)[]
    was cast to one string in JSON (`"[1.50, 2.00]"` instead of an array)."""
    lists = "SELECT i, [ts] AS l, [CAST(ts AS TIMESTAMPTZ)] AS z, [1.5::DECIMAL(4,2), 2] AS d FROM t WHERE i IN (3, 8) ORDER BY i"
    rows = list(csv.reader(io.StringIO(_csv(con.sql(lists)))))
    assert rows[0] == ["i", "l", "z", "d"] and rows[1][1] == "['1970-01-01 00:00:00']" and rows[2][3] == "[1.50, 2.00]"
    out = io.BytesIO()
    export.write_relation(con.sql(lists), out, "json")
    assert [r["d"] for r in json.loads(out.getvalue())] == [[1.5, 2.0], [1.5, 2.0]]
