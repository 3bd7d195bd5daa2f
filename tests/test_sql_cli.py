"""`logstore sql`: formats, the three ways to give a query, and errors."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pytest
from click.testing import CliRunner

from logstore_cli.main import cli


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    import logstore.storage

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logstore.storage, "_fsync", lambda path: None)
        path = tmp_path_factory.mktemp("sqlcli") / "store"
        store = logstore.init(path)
        t = store.create_table("events", pa.table({"id": [1, 2], "kind": ["a", "b"]}), key="id", timestamp="2022-01-01")
        t.append(pa.table({"id": [3], "kind": ["c"]}), timestamp="2022-02-01")
        t.tag("v1", 0)
    return str(path)


def run(store_path, *args, input=None):
    return CliRunner().invoke(cli, ["--store", store_path, "sql", *args], input=input)


def test_table_format_is_the_default(store_path):
    result = run(store_path, "SELECT id, kind FROM events AS OF VERSION 0 ORDER BY id")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "kind"] and lines[2].split() == ["1", "a"] and len(lines) == 4


def test_csv_format(store_path):
    result = run(store_path, "SELECT * FROM events ORDER BY id", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [["id", "kind"], ["1", "a"], ["2", "b"], ["3", "c"]]


def test_short_f_is_the_output_format_as_everywhere(store_path, tmp_path):
    result = run(store_path, "SELECT count(*) AS n FROM events", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 3}]
    query = tmp_path / "q.sql"
    query.write_text("SELECT 1")
    assert run(store_path, "-f", str(query)).exit_code == 2  # no longer the query file: not a format


@pytest.mark.parametrize(
    "statement,kind",
    [
        ("INSTALL httpfs", "INSTALL"),
        ("FORCE INSTALL httpfs", "FORCE INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS"),
    ],
)
def test_extension_statements_are_named_as_written(store_path, statement, kind):
    result = run(store_path, statement)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {kind} statements are refused: "), result.stderr


def test_json_format(store_path):
    result = run(store_path, "SELECT a.id, a.kind AS old, b.kind AS new FROM events AS OF VERSION 'v1' a JOIN events b USING (id)", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"id": 1, "old": "a", "new": "a"}, {"id": 2, "old": "b", "new": "b"}]


def test_query_from_stdin(store_path):
    result = run(store_path, "--format", "csv", input="SELECT count(*) AS n FROM events VERSION AS OF 0\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["n", "2"]


def test_query_from_file(store_path, tmp_path):
    query = tmp_path / "q.sql"
    query.write_text("-- events AS OF VERSION 0\nSELECT count(*) AS n FROM events -- latest\n")
    result = run(store_path, "--query-file", str(query), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 3}]


def test_errors_are_one_line_and_exit_1(store_path):
    result = run(store_path, "SELECT * FROM nope")
    assert result.exit_code == 1 and "no table 'nope'" in result.output and "events" in result.output
    result = run(store_path, "DELETE FROM events")
    assert result.exit_code == 1 and "read-only" in result.output
    result = run(store_path, "SELECT * FROM events AS OF VERSION 9")
    assert result.exit_code == 1 and "latest version is 1" in result.output


def test_usage_errors(store_path, tmp_path):
    query = tmp_path / "q.sql"
    query.write_text("SELECT 1")
    assert run(store_path, "SELECT 1", "--query-file", str(query)).exit_code == 2
    assert run(store_path, input="   \n").exit_code == 2
    assert run(store_path, "SELECT 1", "--format", "xml").exit_code == 2
