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
