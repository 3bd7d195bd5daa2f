"""Streamed CLI output (issue 13): show, sql, changes, diff and checkout write rows with DuckDB's writers
(logstore/export.py), never as Python rows. The output must equal the library's rows, keep the scripting contract
(one JSON document, times with a Z, CSV header, true/false, NULL empty) and never leave a half-written file.
How fast and how small it is, is benchmarks/cli_stream.py's business: nothing here times anything."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from click.testing import CliRunner

import logstore
from logstore import export
from logstore_cli.main import cli

pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def events(home):
    """Table `events` (key id) with every kind of value the text formats cast: an aware and a naive timestamp,
    a boolean, NULLs, a NaN, a quote and a comma, a list; versions 0..3 (an update, a delete, an append)."""
    store = logstore.init(home / ".logstore")
    data = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "kind": ["click", 'say "hi", ok', None, "view"],
            "ok": [True, False, None, True],
            "score": [1.5, float("nan"), None, 4.25],
            "at": pa.array([dt.datetime(2021, 1, 1, 12, 30, 0, 123456, tzinfo=dt.UTC)] * 3 + [None], pa.timestamp("us", tz="UTC")),
            "local": pa.array([dt.datetime(2021, 1, 2, 3, 4, 5)] * 4, pa.timestamp("us")),
            "tags": [["a", "b"], [], None, ["c"]],
        }
    )
    t = store.create_table("events", data, key="id", timestamp="2021-06-01")
    t.update(set={"score": "score + 1", "kind": "'changed'"}, where="id = 1", timestamp="2021-07-01")
    t.delete(where="id = 2", timestamp="2021-08-01")
    t.append(data.slice(0, 1).set_column(0, "id", pa.array([5], pa.int64())), timestamp="2021-09-01")
    return t


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def fails(result, *fragments):
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result


# --- what a row of the library's Arrow result looks like in the text formats -------------------------------------


def _text(value) -> object:
    """A library value as the JSON output writes it (the scripting contract)."""
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value.tzinfo else value.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return text
    if isinstance(value, float) and value != value:
        return None
    return value


def expected_json(table: pa.Table) -> list[dict]:
    return [{k: _text(v) for k, v in row.items()} for row in table.to_pylist()]


def _cell(value) -> str:
    value = _text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def expected_csv(table: pa.Table) -> list[list[str]]:
    return [table.column_names] + [[_cell(v) for v in row.values()] for row in table.to_pylist()]


def plain(table: pa.Table) -> list[dict]:
    """Rows to compare (NaN is not equal to itself)."""
    return [{k: "NaN" if isinstance(v, float) and v != v else v for k, v in row.items()} for row in table.to_pylist()]


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- each command, each format ---------------------------------------------------------------------------------


def _commands(t: logstore.Table):
    """(CLI arguments, the library's rows for them)."""
    return {
        "show": (["show", "events", "--version", "0"], t.read(version=0)),
        "show-limit": (["show", "events", "--limit", "2"], t.read().slice(0, 2)),
        "sql": (["sql", "SELECT * FROM events AS OF VERSION 1 ORDER BY id"], t.read(version=1).sort_by("id")),
        "changes": (["changes", "events", "0", "3"], t.changes(0, 3)),
        "changes-limit": (["changes", "events", "1", "--limit", "3"], t.changes(1).slice(0, 3)),
        "diff": (["diff", "events", "0", "3"], t.diff(0, 3)),
    }


@pytest.mark.parametrize("name", ["show", "show-limit", "sql", "changes", "changes-limit", "diff"])
def test_json_is_one_document_equal_to_the_library_rows(events, name):
    args, rows = _commands(events)[name]
    out = ok(run(*args, "-f", "json")).stdout
    assert json.loads(out) == expected_json(rows)  # json.loads: one valid document, whatever its layout


@pytest.mark.parametrize("name", ["show", "show-limit", "sql", "changes", "changes-limit", "diff"])
def test_csv_has_a_header_and_equals_the_library_rows(events, name):
    args, rows = _commands(events)[name]
    out = ok(run(*args, "-f", "csv")).stdout
    assert parse_csv(out) == expected_csv(rows)


def test_times_are_iso_utc_with_a_z_and_microseconds(events):
    rows = json.loads(ok(run("changes", "events", "1", "1", "-f", "json")).stdout)
    assert {r["_timestamp"] for r in rows} == {"2021-07-01T00:00:00.000000Z"}
    assert rows[0]["at"] == "2021-01-01T12:30:00.123456Z" and rows[0]["local"] == "2021-01-02T03:04:05.000000"
    header, first = parse_csv(ok(run("show", "events", "--version", "0", "-f", "csv")).stdout)[:2]
    assert dict(zip(header, first)) == {
        "id": "1", "kind": "click", "ok": "true", "score": "1.5", "at": "2021-01-01T12:30:00.123456Z",
        "local": "2021-01-02T03:04:05.000000", "tags": "[a, b]",
    }  # fmt: skip


def test_no_rows_is_an_empty_array_and_a_header(events):
    assert json.loads(ok(run("show", "events", "--where", "id > 100", "-f", "json")).stdout) == []
    assert ok(run("show", "events", "--where", "id > 100", "-f", "csv")).stdout == "id,kind,ok,score,at,local,tags\n"
    assert json.loads(ok(run("diff", "events", "1", "1", "-f", "json")).stdout) == []


def test_the_human_table_of_a_query_is_bounded(events, monkeypatch):
    from logstore_cli import output

    monkeypatch.setattr(output, "TABLE_ROWS", 2)
    lines = ok(run("sql", "SELECT * FROM range(10)")).stdout.splitlines()
    assert len(lines) == 2 + 2 + 1 and lines[-1].startswith("(first 2 rows shown; use --format csv|json or -o FILE")
    assert len(json.loads(ok(run("sql", "SELECT * FROM range(10)", "-f", "json")).stdout)) == 10  # scripts get all
    assert ok(run("changes", "events", "0")).stdout.splitlines()[-1] == "(first 2 rows shown; raise --limit to see more)"
    assert ok(run("diff", "events", "0", "3")).stdout.splitlines()[-1] == "(first 2 rows shown; raise --limit to see more)"


# --- files: -o of sql, changes, diff; checkout ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["parquet", "csv", "csv.gz", "json", "json.zst", "ndjson", "ndjson.gz"])
def test_output_files_hold_the_rows(events, home, suffix):
    cases = {
        "sql": (["sql", "SELECT * FROM events ORDER BY id"], events.read().sort_by("id")),
        "changes": (["changes", "events", "0", "3"], events.changes(0, 3)),
        "diff": (["diff", "events", "0", "3"], events.diff(0, 3)),
        "checkout": (["checkout", "events"], events.read()),
    }
    for name, (args, rows) in cases.items():
        target = home / f"{name}.{suffix}"
        result = ok(run(*args, "-o", target))
        assert str(target) in result.stdout
        data = target.read_bytes()
        if suffix.endswith(".gz"):
            data = gzip.decompress(data)
        elif suffix.endswith(".zst"):
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if suffix == "parquet":
            got = pq.read_table(target)
            assert got.column_names == rows.column_names
            assert plain(got) == plain(rows.replace_schema_metadata(None).cast(got.schema)), name
        elif suffix.startswith("csv"):
            assert parse_csv(data.decode()) == expected_csv(rows), name
        elif suffix.startswith("json"):
            assert json.loads(data) == expected_json(rows), name
        else:
            assert [json.loads(line) for line in data.decode().splitlines()] == expected_json(rows), name


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json", "ndjson"])
def test_checkout_twice_gives_identical_bytes(events, home, fmt):
    ok(run("checkout", "events", "--version", "3", "--file-format", fmt, "-o", "a.out"))
    ok(run("checkout", "events", "--version", "3", "--file-format", fmt, "-o", "b.out"))
    assert (home / "a.out").read_bytes() == (home / "b.out").read_bytes()


def test_parquet_of_many_rows_is_identical_twice(home):
    """More rows than one Arrow batch and one row group: the writer's threads must not change the bytes."""
    con = logstore.connection.new()
    query = "SELECT range AS id, range % 7 AS k, 'row ' || range AS text FROM range(300000)"
    export.write_relation(con.sql(query), home / "a.parquet")
    export.write_relation(con.sql(query), home / "b.parquet")
    assert (home / "a.parquet").read_bytes() == (home / "b.parquet").read_bytes()
    assert pq.read_table(home / "a.parquet").column("id").to_pylist() == list(range(300000))  # in order


def test_output_is_refused_over_an_existing_file_without_force(events, home):
    (home / "out.csv").write_text("precious")
    for args in (["sql", "SELECT 1 AS x"], ["changes", "events", "1"], ["diff", "events", "0", "1"], ["checkout", "events"]):
        fails(run(*args, "-o", "out.csv"), "already exists", "--force")
        assert (home / "out.csv").read_text() == "precious"
    ok(run("sql", "SELECT 1 AS x", "-o", "out.csv", "--force"))
    assert (home / "out.csv").read_text() == "x\n1\n"
    assert [p for p in os.listdir(home) if p.endswith(".tmp")] == []


def test_a_failing_query_leaves_no_file_and_says_error(events, home):
    # fails only while rows are written (the error is DuckDB's, at run time, after the header would be out)
    query = "SELECT CASE WHEN id > 3 THEN error('boom at ' || id) ELSE id END AS x FROM events"
    fails(run("sql", query, "-o", "out.csv"), "boom at")
    fails(run("sql", query, "-o", "out.parquet"), "boom at")
    assert sorted(os.listdir(home)) == [".logstore"]  # no target, no temporary file
    result = fails(run("sql", query, "-f", "csv"), "boom at")
    assert "Traceback" not in result.output


def test_refused_names_fail_before_the_query_runs(events, home):
    fails(run("sql", "SELECT 1 AS x", "-o", "x.parquet.gz"), "Parquet compresses its data itself")
    fails(run("sql", "SELECT 1 AS x", "-o", "x.csv.bz2"), "bzip2")
    assert run("sql", "SELECT 1 AS x", "-o", "x.xlsx").exit_code == 1
    assert sorted(os.listdir(home)) == [".logstore"]


def test_output_dash_is_stdout(events):
    assert ok(run("sql", "SELECT 1 AS x, true AS y", "-o", "-")).stdout == "x,y\n1,true\n"
    out = ok(run("changes", "events", "2", "2", "-o", "-", "--file-format", "ndjson")).stdout
    assert [json.loads(line)["_change_type"] for line in out.splitlines()] == ["delete"]


def test_export_confines_its_writer_and_the_store_keeps_its_confinement(events, home):
    """The writer may touch the one file it writes; the store's connection still refuses other files."""
    relation = events.to_duckdb()
    size = export.write_relation(relation, home / "x.csv")
    assert size == os.path.getsize(home / "x.csv")
    with pytest.raises(logstore.FileAccessError):
        logstore.open(home / ".logstore").sql(f"SELECT * FROM read_csv('{home / 'x.csv'}')").fetchall()
    with pytest.raises(logstore.ReadOnlyError):
        logstore.open(home / ".logstore").sql(f"COPY (SELECT 1) TO '{home / 'y.csv'}'")


def test_commands_stream_relations_not_tables(events, monkeypatch):
    """Cheap guard: the streaming path is handed a DuckDB relation (rows never become a pyarrow Table first)."""
    import duckdb

    from logstore_cli import output

    seen = []
    real = output.write_relation

    def spy(rows, *args, **kwargs):
        seen.append(type(rows))
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(output, "write_relation", spy)
    for args in (["show", "events"], ["sql", "SELECT * FROM events"], ["changes", "events", "0"], ["diff", "events", "0", "3"]):
        ok(run(*args, "-f", "csv"))
    ok(run("checkout", "events", "-o", "-"))
    assert len(seen) == 5 and all(issubclass(t, duckdb.DuckDBPyRelation) for t in seen)


def test_the_library_relations_equal_the_tables(events):
    assert plain(events.changes_relation(0, 3).to_arrow_table()) == plain(events.changes(0, 3))
    assert plain(events.diff_relation(3, 0).to_arrow_table()) == plain(events.diff(3, 0))


def test_relations_of_other_connections_are_written_too(events, home):
    """A relation on a connection that may not write the store's staging directory (store.connect() reads only
    its views' files) hands its rows over as an Arrow stream; one on an unconfined connection needs no store."""
    store = logstore.open(home / ".logstore")
    con = store.connect()
    export.write_relation(con.sql("SELECT * FROM events ORDER BY id"), home / "a.csv", store=store)
    export.write_relation(con.sql("SELECT * FROM events ORDER BY id"), home / "a.parquet")
    assert parse_csv((home / "a.csv").read_text()) == expected_csv(events.read().sort_by("id"))
    assert plain(pq.read_table(home / "a.parquet")) == plain(events.read().sort_by("id"))
    buffer = io.BytesIO()
    assert export.write_relation(logstore.connection.new().sql("SELECT 1 AS x"), buffer, "json") == len(buffer.getvalue())
    assert json.loads(buffer.getvalue()) == [{"x": 1}]
    assert not any(name.endswith(".fifo") for name in os.listdir(home / ".logstore" / "_staging"))


def test_a_reader_that_goes_away_stops_the_writer(events):
    """`logstore sql ... | head`: the stream refusing bytes ends the COPY with that error (no hang)."""

    class Closed(io.RawIOBase):
        def write(self, data):
            raise BrokenPipeError(32, "Broken pipe")

    relation = logstore.connection.new().sql("SELECT range AS id, repeat('x', 100) AS pad FROM range(200000)")
    with pytest.raises(BrokenPipeError):
        export.write_relation(relation, Closed(), "csv")


def test_checkout_of_a_table_without_columns(home):
    logstore.init(home / ".logstore").create_table("empty")
    ok(run("checkout", "empty"))
    assert pq.read_table(home / "empty.parquet").num_columns == 0
    assert json.loads(ok(run("checkout", "empty", "-o", "-", "--file-format", "json")).stdout) == []
