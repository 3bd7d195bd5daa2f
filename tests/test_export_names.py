"""Duplicate column names in streamed output (issue 13, round 4): a query may name two columns alike (`SELECT 1 AS a,
2 AS a`, or `SELECT *` over a join of two tables that both have `id`). Every format must write each column's own
values, under the unique names DuckDB gives such columns (`a`, `a_1`; names compare case-insensitively), the same
names in CSV, JSON, NDJSON, Parquet and the human table. Before, the text formats wrote the first column's values
under both names."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import logstore
from logstore import connection, export
from logstore_cli.main import cli

pytestmark = pytest.mark.usefixtures("cli_env")

DUPLICATES = "SELECT 1 AS a, 2 AS a, 'x' AS b, 3 AS A, 4 AS a_1"
NAMES = ["a", "a_1", "b", "A_2", "a_1_1"]  # DuckDB's unique names for these columns
VALUES = [1, 2, "x", 3, 4]


def _text(fmt: str, data: bytes) -> list[dict]:
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(data.decode())))
        return [dict(zip(rows[0], r)) for r in rows[1:]] if rows[0] == NAMES else [{"header": rows[0]}]
    if fmt == "ndjson":
        return [json.loads(line, object_pairs_hook=_no_repeats) for line in data.decode().splitlines()]
    return json.loads(data, object_pairs_hook=_no_repeats)


def _no_repeats(pairs):
    keys = [k for k, _ in pairs]
    assert len(set(keys)) == len(keys), keys  # a repeated key would lose one of the values in every JSON reader
    return dict(pairs)


def _expected(fmt: str) -> list[dict]:
    return [dict(zip(NAMES, [str(v) for v in VALUES] if fmt == "csv" else VALUES))]


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_each_duplicate_column_keeps_its_own_values(fmt):
    out = io.BytesIO()
    export.write_relation(connection.new().sql(DUPLICATES), out, fmt)
    assert _text(fmt, out.getvalue()) == _expected(fmt)


def test_parquet_keeps_each_duplicate_column(tmp_path):
    export.write_relation(connection.new().sql(DUPLICATES), tmp_path / "d.parquet")
    t = pq.read_table(tmp_path / "d.parquet")
    assert t.column_names == NAMES and [t.column(i)[0].as_py() for i in range(5)] == VALUES


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_join_of_two_tables_with_the_same_column_through_the_store(tmp_path, fmt):
    """Through a store's confined connection (the pipe in its staging directory) and through store.connect()'s,
    which may not write there (the rows then pass over Arrow to a writer connection)."""
    store = logstore.init(tmp_path / "store")
    store.create_table("users", pa.table({"id": [1, 2], "name": ["ann", "bob"]}), key="id")
    store.create_table("orders", pa.table({"id": [10, 11], "user_id": [2, 1]}), key="id")
    query = "SELECT * FROM orders JOIN users ON orders.user_id = users.id ORDER BY orders.id"
    for relation in (store.sql(query), store.connect().sql(query)):
        target = tmp_path / f"join.{fmt}"
        export.write_relation(relation, target, force=True, store=store)
        if fmt == "parquet":
            rows = pq.read_table(target).to_pylist()
        elif fmt == "csv":
            rows = [{k: int(v) if v.isdigit() else v for k, v in r.items()} for r in csv.DictReader(io.StringIO(target.read_text()))]
        else:
            rows = json.loads(target.read_text(), object_pairs_hook=_no_repeats)
        assert rows == [{"id": 10, "user_id": 2, "id_1": 2, "name": "bob"}, {"id": 11, "user_id": 1, "id_1": 1, "name": "ann"}]


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_cli_sql_with_duplicate_names(tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    logstore.init(tmp_path / ".logstore")
    result = CliRunner().invoke(cli, ["sql", DUPLICATES, "-f", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "table":
        header, _, row = result.output.splitlines()[:3]
        assert header.split() == NAMES and row.split() == [str(v) for v in VALUES]
    else:
        assert _text(fmt, result.stdout_bytes) == _expected(fmt)


def test_cli_sql_parquet_with_duplicate_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logstore.init(tmp_path / ".logstore")
    result = CliRunner().invoke(cli, ["sql", DUPLICATES, "-o", str(tmp_path / "d.parquet")])
    assert result.exit_code == 0, result.output
    t = pq.read_table(tmp_path / "d.parquet")
    assert t.column_names == NAMES and [t.column(i)[0].as_py() for i in range(5)] == VALUES


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_names_with_quotes_commas_and_case(tmp_path, fmt):
    """Names are quoted in the alias list as in the SELECT: quotes, commas and spaces, differing by case only."""
    query = 'SELECT 1 AS "we""ird, name", 2 AS "WE""IRD, NAME", 3 AS """"'
    target = tmp_path / f"w.{fmt}"
    export.write_relation(connection.new().sql(query), target)
    expected = {'we"ird, name': 1, 'WE"IRD, NAME_1': 2, '"': 3}
    if fmt == "parquet":
        assert pq.read_table(target).to_pylist() == [expected]
    elif fmt == "csv":
        assert list(csv.DictReader(io.StringIO(target.read_text()))) == [{k: str(v) for k, v in expected.items()}]
    else:
        assert json.loads(target.read_text(), object_pairs_hook=_no_repeats) == [expected]
