"""logstore.read_file / read_files / write_file and Table.info(): the library side of the CLI."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import os
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import logstore
from logstore.files import json_value

DATA = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array(["a", "b, with comma", None], pa.string()),
        "score": pa.array([1.5, None, 3.0], pa.float64()),
    }
)


def test_read_every_format_by_extension(tmp_path):
    pq.write_table(DATA, tmp_path / "d.parquet")
    (tmp_path / "d.csv").write_text('id,name,score\n1,a,1.5\n2,"b, with comma",\n3,,3.0\n')
    (tmp_path / "d.tsv").write_text("id\tname\tscore\n1\ta\t1.5\n2\tb, with comma\t\n3\t\t3.0\n")
    (tmp_path / "d.json").write_text(json.dumps(DATA.to_pylist()))
    (tmp_path / "d.ndjson").write_text("".join(json.dumps(r) + "\n" for r in DATA.to_pylist()))
    for name in ("d.parquet", "d.csv", "d.tsv", "d.json", "d.ndjson"):
        assert logstore.read_file(tmp_path / name).to_pylist() == DATA.to_pylist(), name


def test_read_format_override_and_stream(tmp_path):
    (tmp_path / "data.txt").write_text("x\n1\n")
    assert logstore.read_file(tmp_path / "data.txt", "csv").to_pylist() == [{"x": 1}]
    assert logstore.read_file(io.BytesIO(b"x,y\n1,2\n")).to_pylist() == [{"x": 1, "y": 2}]
    assert logstore.read_file(io.BytesIO(b'{"x": 1}\n'), "ndjson").to_pylist() == [{"x": 1}]


def test_read_with_schema_fixes_csv_types(tmp_path):
    (tmp_path / "d.csv").write_text("id,score\n1,\n")
    schema = pa.schema([("id", pa.int32()), ("score", pa.float64()), ("absent", pa.string())])
    table = logstore.read_file(tmp_path / "d.csv", schema=schema)
    assert table.schema.field("id").type == pa.int32() and table.schema.field("score").type == pa.float64()


def test_read_errors(tmp_path):
    with pytest.raises(logstore.InvalidInputError, match="cannot tell the format"):
        logstore.read_file(tmp_path / "x.xlsx")
    with pytest.raises(logstore.InvalidInputError, match="does not exist"):
        logstore.read_file(tmp_path / "missing.csv")
    with pytest.raises(logstore.InvalidInputError, match="unknown input format"):
        logstore.read_file(tmp_path / "x.csv", "xml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(logstore.InvalidInputError, match="cannot read .* as JSON"):
        logstore.read_file(tmp_path / "bad.json")
    with pytest.raises(logstore.InvalidInputError, match="no data"):
        logstore.read_file(io.BytesIO(b""))


def test_read_files_concatenates(tmp_path):
    (tmp_path / "a.csv").write_text("id,v\n1,1\n")
    (tmp_path / "b.csv").write_text("id,v\n2,2.5\n")
    seen = []
    table = logstore.read_files([tmp_path / "a.csv", tmp_path / "b.csv"], progress=seen.append)
    assert table.to_pylist() == [{"id": 1, "v": 1.0}, {"id": 2, "v": 2.5}] and len(seen) == 2
    (tmp_path / "c.csv").write_text("id,v\nx,1\n")  # id is text here
    with pytest.raises(logstore.InvalidInputError):
        logstore.read_files([tmp_path / "a.csv", tmp_path / "c.csv"])


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json", "ndjson"])
def test_write_is_deterministic_and_round_trips(tmp_path, fmt, monkeypatch):
    monkeypatch.setattr(logstore.files, "ROWS_PER_GROUP", 2)  # several slices: boundaries must not depend on chunking
    rechunked = pa.Table.from_batches(DATA.to_batches(max_chunksize=1))
    written = []
    size = logstore.write_file(DATA, tmp_path / f"a.{fmt}", progress=written.append)
    logstore.write_file(rechunked, tmp_path / "b.out", fmt)
    assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / "b.out").read_bytes()
    assert size == os.path.getsize(tmp_path / f"a.{fmt}") and sum(written) == 3
    assert logstore.read_file(tmp_path / f"a.{fmt}").to_pylist() == DATA.to_pylist()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json", "ndjson"])
def test_write_empty_table(tmp_path, fmt):
    logstore.write_file(DATA.slice(0, 0), tmp_path / f"e.{fmt}")
    text = (tmp_path / f"e.{fmt}").read_bytes()
    if fmt == "json":
        assert json.loads(text) == []
    elif fmt == "ndjson":
        assert text == b""
    elif fmt == "parquet":
        assert pq.read_table(tmp_path / "e.parquet").schema == DATA.schema


def test_write_refuses_to_overwrite(tmp_path):
    target = tmp_path / "t.parquet"
    target.write_bytes(b"keep")
    with pytest.raises(logstore.OutputExistsError, match="already exists"):
        logstore.write_file(DATA, target)
    assert target.read_bytes() == b"keep"
    logstore.write_file(DATA, target, force=True)
    assert pq.read_table(target).num_rows == 3
    assert sorted(os.listdir(tmp_path)) == ["t.parquet"]  # no temporary file left behind


def test_write_errors(tmp_path):
    with pytest.raises(logstore.InvalidInputError, match="cannot write 'tsv'"):
        logstore.write_file(DATA, tmp_path / "x.tsv")
    with pytest.raises(logstore.InvalidInputError, match="does not exist"):
        logstore.write_file(DATA, tmp_path / "no" / "x.csv")


def test_write_to_a_stream():
    buffer = io.BytesIO()
    size = logstore.write_file(DATA, buffer, "ndjson")
    assert size == len(buffer.getvalue()) and [json.loads(x)["id"] for x in buffer.getvalue().splitlines()] == [1, 2, 3]


def test_json_value():
    aware = dt.datetime(2022, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert json_value(aware) == "2022-01-01T00:00:00Z"
    assert json_value(dt.datetime(2022, 1, 1)) == "2022-01-01T00:00:00"
    assert json_value(dt.date(2022, 1, 2)) == "2022-01-02"
    assert json_value(decimal.Decimal("1.10")) == "1.10"
    assert json_value(b"\x00\x01") == "AAE="
    assert json_value(float("nan")) is None
    assert json_value({"a": [1, dt.time(1, 2)]}) == {"a": [1, "01:02:00"]}


def test_table_info(store):
    t = store.create_table("t", DATA, key="id", timestamp="2021-01-01")
    t.delete(where="id = 1", timestamp="2021-06-01")
    t.tag("v0", 0)
    t.snapshot()
    info = t.info()
    assert isinstance(info, logstore.TableInfo)
    assert (info.name, info.key, info.version, info.num_rows) == ("t", ("id",), 1, 2)
    assert info.schema == t.schema() and info.columns == (("id", "BIGINT"), ("name", "VARCHAR"), ("score", "DOUBLE"))
    assert info.snapshots[-1] == 1 and info.tags == {"v0": 0}
    assert info.first_commit == dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    assert info.last_commit == dt.datetime(2021, 6, 1, tzinfo=dt.UTC)
    table_dir = pathlib.Path(store.path) / "tables" / "t"
    assert info.bytes_on_disk == sum(f.stat().st_size for f in table_dir.rglob("*") if f.is_file()) > 0
    with pytest.raises(AttributeError):
        info.version = 5  # frozen
