"""export.py's pipe into real files and pipes (issue 13, round 3): the bytes DuckDB writes into the named pipe are
spliced by the kernel into a plain file or stream (no copy through Python), and copied through write() where the
destination cannot take a splice (an in-memory stream, a compressor, a file opened for appending). Every way out must
give the same bytes, and a reader that goes away must end the command (no hang, one line, status 1)."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys

import pytest

import logstore
from logstore import connection, export

ROWS_SQL = "SELECT range AS id, 'row ' || range::VARCHAR || repeat('x', range % 50) AS text, range / 7.0 AS value FROM range(60000)"


def _relation():
    return connection.new().sql(ROWS_SQL)


@pytest.fixture
def splices(monkeypatch):
    """The bytes os.splice moved, per call (the kernel's path), while a test runs."""
    moved: list[int] = []
    real = os.splice

    def counting(*args, **kwargs):
        n = real(*args, **kwargs)
        moved.append(n)
        return n

    monkeypatch.setattr(export.os, "splice", counting)
    return moved


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson", "parquet"])
def test_a_file_a_stream_and_a_compressor_get_the_same_bytes(tmp_path, fmt, splices):
    streamed = io.BytesIO()  # no file descriptor: written through write()
    size = export.write_relation(_relation(), streamed, fmt)
    assert splices == []
    assert size == len(streamed.getvalue()) > (1 << 20 if fmt != "parquet" else 0)  # text: more than the pipe holds
    path = tmp_path / f"rows.{fmt}"
    assert export.write_relation(_relation(), path, fmt) == size
    assert path.read_bytes() == streamed.getvalue()  # spliced into the temporary file, then published
    assert sum(splices) == size
    with open(tmp_path / "raw.bin", "wb") as raw:  # an unbuffered file object: spliced too
        unbuffered = io.FileIO(raw.fileno(), "wb", closefd=False)
        assert export.write_relation(_relation(), unbuffered, fmt) == size
    assert (tmp_path / "raw.bin").read_bytes() == streamed.getvalue()
    assert sum(splices) == 2 * size
    if fmt in ("csv", "json"):
        export.write_relation(_relation(), tmp_path / f"rows.{fmt}.gz")
        assert sum(splices) == 2 * size  # a compressor is written through write()
        assert gzip.decompress((tmp_path / f"rows.{fmt}.gz").read_bytes()) == streamed.getvalue()


def test_a_file_opened_for_appending_keeps_what_it_had(tmp_path):
    """Linux refuses to splice into an O_APPEND file: the copy takes over, after what the file already held."""
    expected = io.BytesIO()
    export.write_relation(_relation(), expected, "csv")
    path = tmp_path / "log.csv"
    path.write_bytes(b"already here\n")
    with open(path, "ab") as out:
        out.write(b"buffered, not yet flushed\n")
        export.write_relation(_relation(), out, "csv")
    assert path.read_bytes() == b"already here\nbuffered, not yet flushed\n" + expected.getvalue()


def test_what_was_buffered_before_comes_first(tmp_path):
    path = tmp_path / "out.csv"
    with open(path, "wb") as out:
        out.write(b"# a line written before the rows\n")
        size = export.write_relation(_relation(), out, "csv")
        out.write(b"# and one after\n")
    data = path.read_bytes()
    assert data.startswith(b"# a line written before the rows\nid,text,value\n")
    assert data.endswith(b"# and one after\n")
    assert len(data) == size + len(b"# a line written before the rows\n# and one after\n")


def test_a_pipe_reader_that_goes_away_ends_the_cli(tmp_path):
    """`logstore sql ... | head -c 1000`: stdout is a real pipe (spliced into); when its reader closes it, the
    command ends at once with status 1 and no traceback."""
    store = logstore.init(tmp_path / "store")
    store.create_table("big", _relation().to_arrow_table())
    env = {**os.environ, "NO_COLOR": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "logstore_cli", "--store", str(tmp_path / "store"), "sql", "SELECT * FROM big", "-f", "csv"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    head = child.stdout.read(1000)
    child.stdout.close()
    assert child.wait(timeout=60) == 1
    assert head.startswith(b"id,text,value\n0,row 0,0.0")
    assert b"Traceback" not in child.stderr.read()


def test_stdout_into_a_file_is_the_library_csv(tmp_path):
    """The CLI's stdout redirected to a file (the benchmark's case) holds exactly the CSV of the rows."""
    store = logstore.init(tmp_path / "store")
    store.create_table("big", _relation().to_arrow_table())
    expected = io.BytesIO()
    export.write_relation(store.sql("SELECT * FROM big"), expected, "csv", store=store)
    with open(tmp_path / "out.csv", "wb") as out:
        subprocess.run([sys.executable, "-m", "logstore_cli", "--store", str(tmp_path / "store"), "sql", "SELECT * FROM big", "-f", "csv"], stdout=out, check=True, timeout=120)
    assert (tmp_path / "out.csv").read_bytes() == expected.getvalue()


def test_parquet_of_a_version_read_from_several_files_is_in_row_order(tmp_path):
    """A version read from a base file, compacted blocks and change files (a UNION ALL of several scans): the
    Parquet file holds the rows in the table's row order, exactly as read() gives them, every column OPTIONAL.
    (An empty UNION ALL branch that kept the columns OPTIONAL made DuckDB write the scans out of order.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = logstore.init(tmp_path / "store")
    n = 300000  # a base file of several row groups, scanned by several threads
    t = store.create_table("t", pa.table({"id": pa.array(range(n), pa.int64()), "v": pa.array([float(i) for i in range(n)])}), key="id")
    for k in range(12):
        t.update({"v": "v + 1"}, where=f"id % 97 = {k}")
        t.append(pa.table({"id": pa.array(range(n + 100 * k, n + 100 * k + 100), pa.int64()), "v": pa.array([0.5] * 100)}))
        t.delete(where=f"id % 89 = {k}")
    t.compact()
    t.update({"v": "v * 2"}, where="id % 13 = 0")
    expected = t.read()
    relation = t.to_duckdb()
    assert relation.sql_query().count("UNION ALL") >= 2  # several scans
    export.write_relation(relation, tmp_path / "v.parquet", store=store)
    written = pq.read_table(tmp_path / "v.parquet")
    assert written.column("id").to_pylist() == expected.column("id").to_pylist()
    assert written.column("v").to_pylist() == expected.column("v").to_pylist()
    schema = pq.ParquetFile(tmp_path / "v.parquet").schema
    assert all(schema.column(i).max_definition_level == 1 for i in range(len(schema)))
    text = io.BytesIO()
    export.write_relation(t.to_duckdb(), text, "csv", store=store)
    assert [int(line.split(b",")[0]) for line in text.getvalue().splitlines()[1:]] == expected.column("id").to_pylist()


def test_parquet_of_the_standard_workload_is_in_row_order(tmp_path):
    """The case that showed it (~10 s) (benchmarks/cli_stream.py's store: 1M rows, 300 commits; a base file with dead rows,
    three compacted blocks and a change file): the empty UNION ALL branch put 189,414 rows out of place."""
    import pyarrow.parquet as pq

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    from core import run_logstore
    from workload import Workload

    built = run_logstore(Workload(rows=1_000_000, commits=300), str(tmp_path), lambda message: None)
    t = built["table"]
    export.write_relation(t.to_duckdb(), tmp_path / "v.parquet", store=built["store"])
    assert pq.read_table(tmp_path / "v.parquet").column("id").to_pylist() == t.read(columns=["id"]).column("id").to_pylist()
