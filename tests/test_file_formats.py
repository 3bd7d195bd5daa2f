"""Input files: dates and timestamps are ISO 8601 unless a format is named, and a value that does not fit its
column is refused naming the column, the line and the value. Output files: compressed as their name says
(.gz, .zst), or refused before anything is written; repeated checkouts are byte-identical."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json

import pyarrow as pa
import pytest
import zstandard
from click.testing import CliRunner

import logstore
from logstore.errors import InputValueError
from logstore_cli.main import cli

OCT_1, DEC_1 = dt.date(2024, 10, 1), dt.date(2024, 12, 1)


pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("id,d\n1,10/01/2024\n")
    (tmp_path / "b.csv").write_text("id,d\n2,12/01/2024\n")
    return tmp_path


@pytest.fixture
def run(home):
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(cli, [str(a) for a in args], input=input)


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


def refused(excinfo, column, line, value):
    e = excinfo.value
    assert isinstance(e, logstore.InvalidInputError)
    assert (e.column, e.line, e.value) == (column, line, value)
    assert f"line {line}" in str(e) and repr(column) in str(e) and repr(value) in str(e), str(e)
    return e


def store_with(home, data: pa.Table, name="t"):
    store = logstore.init(home / "store")
    return store.create_table(name, data)


# --- item 14: dates are ISO 8601 unless a format is named ----------------------------------------------------


@pytest.mark.parametrize("name, value", [("a.csv", "10/01/2024"), ("b.csv", "12/01/2024")])
def test_ambiguous_csv_date_is_refused_without_a_format(home, name, value):
    with pytest.raises(InputValueError) as excinfo:
        logstore.read_file(home / name)
    assert "ISO 8601" in str(refused(excinfo, "d", 2, value))


def test_date_format_reads_every_file_the_same_way(home):
    table = logstore.read_files([home / "a.csv", home / "b.csv"], date_format="%m/%d/%Y")
    assert table.to_pylist() == [{"id": 1, "d": OCT_1}, {"id": 2, "d": DEC_1}]


def test_iso_dates_and_timestamps_are_accepted(home):
    (home / "iso.csv").write_text(
        "d,t,tz\n"
        "2024-10-01,2024-10-01T10:00:00,2024-10-01T10:00:00Z\n"
        "2024-12-01,2024-12-01 10:00:00.5,2024-12-01 10:00:00.25+02:00\n"
    )
    table = logstore.read_file(home / "iso.csv")
    assert table.column("d").to_pylist() == [OCT_1, DEC_1]
    assert table.column("t").to_pylist() == [dt.datetime(2024, 10, 1, 10), dt.datetime(2024, 12, 1, 10, 0, 0, 500000)]
    utc = dt.UTC
    assert [v.astimezone(utc) for v in table.column("tz").to_pylist()] == [
        dt.datetime(2024, 10, 1, 10, tzinfo=utc),
        dt.datetime(2024, 12, 1, 8, 0, 0, 250000, tzinfo=utc),
    ]


def test_ambiguous_timestamp_is_refused_without_a_format(home):
    (home / "ts.csv").write_text("id,t\n1,10/01/2024 10:30:00\n")
    with pytest.raises(InputValueError) as excinfo:
        logstore.read_file(home / "ts.csv")
    refused(excinfo, "t", 2, "10/01/2024 10:30:00")
    table = logstore.read_file(home / "ts.csv", timestamp_format="%m/%d/%Y %H:%M:%S")
    assert table.column("t").to_pylist() == [dt.datetime(2024, 10, 1, 10, 30)]


def test_appending_non_iso_text_to_a_date_column_is_refused(home):
    t = store_with(home, pa.table({"id": pa.array([0], pa.int64()), "d": pa.array([OCT_1], pa.date32())}))
    (home / "more.csv").write_text("id,d\n1,2024-01-01\n2,10/01/2024\n")
    with pytest.raises(InputValueError) as excinfo:
        logstore.read_file(home / "more.csv", schema=t.schema())
    refused(excinfo, "d", 3, "10/01/2024")
    (home / "us.csv").write_text("id,d\n1,10/01/2024\n2,12/01/2024\n")
    t.append(logstore.read_file(home / "us.csv", schema=t.schema(), date_format="%m/%d/%Y"))
    assert t.read().column("d").to_pylist() == [OCT_1, OCT_1, DEC_1]


def test_a_text_column_keeps_date_like_text(home):
    t = store_with(home, pa.table({"id": pa.array([0], pa.int64()), "d": pa.array(["x"], pa.string())}))
    table = logstore.read_files([home / "a.csv", home / "b.csv"], schema=t.schema())
    assert table.column("d").to_pylist() == ["10/01/2024", "12/01/2024"]


def test_a_bad_integer_names_column_line_and_value(home):
    schema = pa.schema([("id", pa.int64()), ("n", pa.int64())])
    (home / "bad.csv").write_text("id,n\n1,5\n2,abc\n3,7\n")
    with pytest.raises(InputValueError) as excinfo:
        logstore.read_file(home / "bad.csv", schema=schema)
    assert "BIGINT" in str(refused(excinfo, "n", 3, "abc"))
    (home / "bad.tsv").write_text("id\tn\n1\t5\n\n2\tx y\n")
    with pytest.raises(InputValueError) as excinfo:
        logstore.read_file(home / "bad.tsv", schema=schema)
    refused(excinfo, "n", 4, "x y")


def test_ndjson_dates_are_iso_unless_a_format_is_named(home):
    (home / "d.ndjson").write_text('{"id": 1, "d": "10-01-2024"}\n\n{"id": 2, "d": "12-01-2024"}\n')
    with pytest.raises(InputValueError) as excinfo:
        logstore.read_file(home / "d.ndjson")
    refused(excinfo, "d", 1, "10-01-2024")
    table = logstore.read_file(home / "d.ndjson", date_format="%m-%d-%Y")
    assert table.to_pylist() == [{"id": 1, "d": OCT_1}, {"id": 2, "d": DEC_1}]
    (home / "iso.ndjson").write_text('{"d": "2024-10-01", "t": "2024-10-01T10:00:00"}\n')
    assert logstore.read_file(home / "iso.ndjson").to_pylist() == [{"d": OCT_1, "t": dt.datetime(2024, 10, 1, 10)}]


def test_json_values_that_do_not_fit_the_table_name_column_line_and_value(home):
    t = store_with(home, pa.table({"id": pa.array([0], pa.int64()), "d": pa.array([OCT_1], pa.date32())}))
    (home / "bad.ndjson").write_text('{"id": "1", "d": "2024-01-01"}\n\n{"id": "abc", "d": "2024-01-02"}\n')
    with pytest.raises(InputValueError) as excinfo:  # numbers written as text are parsed, strictly
        logstore.read_file(home / "bad.ndjson", schema=t.schema())
    refused(excinfo, "id", 3, "abc")
    (home / "float.ndjson").write_text('{"id": 1.5, "d": "2024-01-01"}\n')  # a JSON number keeps its type
    with pytest.raises(logstore.SchemaMismatchError):
        t.append(logstore.read_file(home / "float.ndjson", schema=t.schema()))
    (home / "bad.json").write_text(json.dumps([{"id": 1, "d": "2024-01-01"}, {"id": 2, "d": "01/02/2024"}]))
    with pytest.raises(InputValueError) as excinfo:
        logstore.read_file(home / "bad.json", schema=t.schema())
    e = excinfo.value
    assert (e.column, e.line, e.value) == ("d", 2, "01/02/2024") and "record 2" in str(e)


def test_cli_refuses_ambiguous_dates_and_takes_a_date_format(run, home):
    ok(run("init"))
    fails(run("create", "t", "a.csv"), "line 2", "'d'", "'10/01/2024'", "ISO 8601")
    ok(run("create", "t", "a.csv", "--date-format", "%m/%d/%Y"))
    fails(run("append", "t", "b.csv"), "line 2", "'d'", "'12/01/2024'")
    ok(run("append", "t", "b.csv", "--date-format", "%m/%d/%Y"))
    table = logstore.open(home / ".logstore").table("t")
    assert table.read().to_pylist() == [{"id": 1, "d": OCT_1}, {"id": 2, "d": DEC_1}]
    (home / "c.csv").write_text("id,t\n3,2024-10-01 10:30\n")
    ok(run("create", "u", "c.csv"))
    (home / "d.csv").write_text("id,t\n4,10/01/2024 11:00\n")
    fails(run("append", "u", "d.csv"), "line 2", "'t'", "'10/01/2024 11:00'")
    ok(run("append", "u", "d.csv", "--timestamp-format", "%m/%d/%Y %H:%M"))
    assert logstore.open(home / ".logstore").table("u").read().column("t").to_pylist()[-1] == dt.datetime(2024, 10, 1, 11)


def test_cli_bad_integer_names_column_line_and_value(run, home):
    (home / "n.csv").write_text("id,n\n1,5\n")
    (home / "bad.csv").write_text("id,n\n2,6\n3,abc\n")
    ok(run("init"))
    ok(run("create", "t", "n.csv"))
    fails(run("append", "t", "bad.csv"), "line 3", "'n'", "'abc'")
    fails(run("create", "u", "-", "--schema", "id BIGINT, n BIGINT", input="id,n\n1,x\n"), "line 2", "'n'", "'x'")
    ok(run("create", "v", "a.csv", "--schema", "id BIGINT, d VARCHAR"))  # a text column keeps the text
    assert logstore.open(home / ".logstore").table("v").read().column("d").to_pylist() == ["10/01/2024"]


# --- item 15: compressed input and output ----------------------------------------------------------------------

DATA = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b, c", None], "d": pa.array([OCT_1, DEC_1, None])})


def decompress(data: bytes, name: str) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()


@pytest.fixture
def events(run, home):
    store = logstore.init(home / ".logstore")
    store.create_table("events", DATA)
    return store


@pytest.mark.parametrize("name", ["x.csv.gz", "x.csv.zst", "x.ndjson.zst", "x.json.gz", "x.ndjson.gz", "x.csv.zstd"])
def test_checkout_compresses_as_named_and_reads_back(run, home, events, name):
    plain = name.rsplit(".", 1)[0].replace("x.", "plain.")
    ok(run("checkout", "events", "-o", plain))
    ok(run("checkout", "events", "-o", name))
    assert decompress((home / name).read_bytes(), name) == (home / plain).read_bytes()
    assert logstore.read_file(home / name).to_pylist() == DATA.to_pylist()


def test_gzip_output_is_reproducible(run, home, events):
    ok(run("checkout", "events", "-o", "one.csv.gz"))
    ok(run("checkout", "events", "-o", "two.csv.gz"))
    ok(run("checkout", "events", "-o", "one.ndjson.zst"))
    ok(run("checkout", "events", "-o", "two.ndjson.zst"))
    one = (home / "one.csv.gz").read_bytes()
    assert one == (home / "two.csv.gz").read_bytes()
    assert one[4:8] == b"\0\0\0\0" and not one[3] & 0x08  # mtime 0, no file name in the header
    assert (home / "one.ndjson.zst").read_bytes() == (home / "two.ndjson.zst").read_bytes()


@pytest.mark.parametrize("name", ["x.parquet.gz", "x.parquet.zst", "x.csv.bz2", "x.json.xz"])
def test_checkout_refuses_a_compression_it_cannot_honour_before_writing(run, home, events, name):
    fails(run("checkout", "events", "-o", name), name)
    fails(run("checkout", "events", "-o", name, "--file-format", "csv"), name)
    assert sorted(p.name for p in home.iterdir()) == [".logstore", "a.csv", "b.csv"]
    with pytest.raises(logstore.InvalidInputError):
        logstore.write_file(DATA, home / name)
    assert sorted(p.name for p in home.iterdir()) == [".logstore", "a.csv", "b.csv"]


def test_compressed_input_is_recognised_by_its_content(home):
    csv = b"id,d\n1,2024-10-01\n"
    (home / "packed.csv").write_bytes(gzip.compress(csv))  # gzip under a plain name
    (home / "packed.tsv").write_bytes(zstandard.ZstdCompressor().compress(csv.replace(b",", b"\t")))
    expected = [{"id": 1, "d": OCT_1}]
    assert logstore.read_file(home / "packed.csv").to_pylist() == expected
    assert logstore.read_file(home / "packed.tsv").to_pylist() == expected
    assert logstore.read_file(io.BytesIO(gzip.compress(csv))).to_pylist() == expected
    (home / "x.csv").write_bytes(b"BZh91AY&SY" + b"\0" * 20)
    with pytest.raises(logstore.InvalidInputError, match="bzip2"):
        logstore.read_file(home / "x.csv")
    (home / "p.parquet.gz").write_bytes(gzip.compress(b"PAR1"))
    with pytest.raises(logstore.InvalidInputError, match="Parquet"):
        logstore.read_file(home / "p.parquet.gz")
