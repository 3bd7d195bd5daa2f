"""Streaming the rows of a DuckDB query out to a file or a binary stream, never as Python rows.

    write_relation(store.sql("SELECT * FROM events"), "events.csv.gz", store=store)     # -> bytes written
    write_relation(table.to_duckdb(version=3), sys.stdout.buffer, "json", store=store)

DuckDB's own writers (`COPY ... TO`) write the rows as Parquet (zstd), CSV (a header row), JSON (one array
document) or NDJSON; CSV and JSON are compressed with gzip or zstd when the name ends in .gz / .zst
(files.output_format decides, and refuses what it cannot honour), reproducibly, by files.py's compressors (DuckDB
does not compress into a pipe). Memory stays bounded by DuckDB's buffers, whatever
the number of rows.

Where DuckDB writes: the COPY runs on the relation's own connection (so the query runs where it was planned,
in parallel with the writer), into a named pipe (FIFO) that a thread empties into the destination: with splice(2)
into a plain file or stream (the kernel moves the pages; stdout redirected to a file or a pipe, the temporary file
of a path), else through the destination's write() (a compressor, an in-memory stream, a terminal). The store's
connections may write only inside the store (logstore/connection.py), so with `store=` the pipe is made in the
store's staging directory, where they already write snapshots; the confinement of every connection stays as it was.
Without `store`, the pipe is made in a private temporary directory (enough for a relation on an unconfined
connection). If the relation's connection may not write there (store.connect()'s, or a read-only store), the rows
pass instead as an Arrow stream to a separate writer connection that may write that one pipe only (slower: the
query and the writer then take turns).

Files: written to a temporary file next to the target and published at once (files.publish: an existing file is
replaced only with `force`; a failed write leaves nothing behind). Streams (stdout, a BytesIO, anything with
`write`): rows already written cannot be taken back when a query fails part-way.

Text output is the CLI's scripting contract, cast in SQL before DuckDB writes it (plain TIMESTAMP columns in CSV: by
the CSV writer's TIMESTAMPFORMAT, the same text): times ISO 8601 with
microseconds (`2022-01-01T00:00:00.000000`), those with a time zone in UTC with a `Z`; booleans true/false;
NULL empty in CSV and null in JSON; NaN and infinities as NULL; intervals as seconds; blobs as base64; decimals as
text in JSON (as written in CSV). Nested values (lists, structs, maps) are written by DuckDB: JSON arrays and
objects in JSON, DuckDB's text form (`[1, 2]`, `{'a': 1}`) in CSV. Parquet keeps every type as it is.

Column names: a name repeating an earlier one (case-insensitively: `SELECT 1 AS a, 2 AS a`, `SELECT *` of a join of
two tables that both have `id`) is written under the unique name DuckDB gives it (`a_1`) in every format, each column
with its own values (a JSON object with two `a` keys would lose one of them in most readers).

Output is deterministic: the same rows in the same order give the same bytes (DuckDB's Parquet writer keeps row
groups of ROW_GROUP_SIZE rows in order with any number of threads; checked by tests/test_cli_stream.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, cast

import duckdb

from . import connection
from .files import PathName, _check_write_format, _compressed, _output_encoding, publish
from .schema import literal, quote

if TYPE_CHECKING:
    from .store import Store

BATCH_ROWS = 122_880  # rows per Arrow batch on the fallback path (DuckDB's row group size)
ROW_GROUP_SIZE = 122_880
PIPE_CHUNK = 1 << 20
UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_ROWS = "_logstore_rows"


def write_relation(
    relation: duckdb.DuckDBPyRelation,
    target: PathName | IO[bytes],
    format: str | None = None,  # noqa: A002
    *,
    force: bool = False,
    store: Store | None = None,
) -> int:
    """Write the rows of a DuckDB relation to `target` (a path, or a binary stream such as stdout); return the bytes
    written.

    The format is `format` or, for a path, its extension: parquet, csv, json (one array) or ndjson; a stream gets
    CSV unless `format` says otherwise. A path ending in .gz or .zst compresses CSV and JSON (Parquet with one, and
    other compressions, are refused before anything runs). OutputExistsError if the path exists and not `force`;
    the file appears complete or not at all. `store`: the store whose connection the relation runs on (its
    staging directory holds the pipe DuckDB writes into). The rows are streamed: never all in memory, never
    Python objects. A DuckDB error of the query is raised as it is (duckdb.Error).
    """
    if hasattr(target, "write"):
        fmt = format or "csv"
        _check_write_format(fmt)
        return _write(relation, cast(IO[bytes], target), fmt, store)
    path = os.fspath(target)
    fmt, compression = _output_encoding(path, format)

    def fill(temp: str) -> None:
        with open(temp, "wb") as raw, _compressed(raw, compression) as out:  # DuckDB does not compress into a pipe
            _write(relation, cast(IO[bytes], out), fmt, store)

    return publish(path, fill, force=force)


def _write(relation: duckdb.DuckDBPyRelation, out: IO[bytes], fmt: str, store: Store | None) -> int:
    """COPY the relation into a named pipe while a thread copies its bytes into `out`; the bytes copied."""
    with _fifo(store) as fifo:
        # the read end, opened without waiting for a writer; our own write end keeps it from seeing an end before
        # DuckDB has opened the pipe (or when it never does, e.g. a query that fails to bind)
        read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        write_fd = os.open(fifo, os.O_WRONLY)
        os.set_blocking(read_fd, True)
        _widen(read_fd)
        copied, failed = [0], []

        def pump() -> None:
            try:
                sink = _sink(out)
                while sink is not None:  # the kernel moves the pipe's pages into the file or pipe: no copies here
                    try:
                        moved = os.splice(read_fd, sink, PIPE_CHUNK)
                    except OSError as e:
                        if e.errno not in _NO_SPLICE:
                            raise
                        sink = None  # e.g. a terminal or a file opened for appending: copy instead
                    else:
                        if not moved:
                            return
                        copied[0] += moved
                while chunk := os.read(read_fd, PIPE_CHUNK):
                    out.write(chunk)
                    copied[0] += len(chunk)
            except BaseException as e:  # noqa: BLE001 - raised below (e.g. BrokenPipeError from `| head`)
                failed.append(e)
            finally:
                os.close(read_fd)  # a writer still writing gets EPIPE and fails instead of blocking

        thread = threading.Thread(target=pump, name="logstore-export", daemon=True)
        thread.start()
        try:
            try:
                relation.query(_ROWS, _copy_sql(_names(relation), relation.types, _ROWS, fifo, fmt))
            except duckdb.PermissionException:  # the relation's connection may not write there: hand the rows over
                _copy_over_arrow(relation, fifo, fmt)
        except duckdb.Error:
            if failed:  # the destination failed first (DuckDB then failed writing into a closed pipe)
                raise failed[0] from None
            raise
        finally:
            os.close(write_fd)  # with DuckDB's handle closed, the reader sees the end
            thread.join()
        if failed:
            raise failed[0]
    flush = getattr(out, "flush", None)
    if flush is not None:
        flush()
    return copied[0]


_NO_SPLICE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.EXDEV}


def _sink(out: IO[bytes]) -> int | None:
    """The descriptor to splice the pipe into: that of a plain file or stream (io's own raw or buffered files, e.g.
    stdout, its buffer flushed first); None for anything else (a compressor, an in-memory stream), which is written
    through its write()."""
    if not hasattr(os, "splice") or type(out) not in (io.BufferedWriter, io.BufferedRandom, io.FileIO):
        return None
    try:
        out.flush()
        return out.fileno()
    except (OSError, ValueError):
        return None


def _widen(fd: int) -> None:
    """Give the pipe a buffer of PIPE_CHUNK bytes where the system allows (Linux: 64 KiB by default), so that
    DuckDB's writer and the copy wake each other up less often."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_CHUNK)


@contextlib.contextmanager
def _fifo(store: Store | None) -> Iterator[str]:
    """A new named pipe: in the store's staging directory (which the store's connections may write), else (no
    store, or a store this process cannot write) in a private temporary directory; removed afterwards."""
    if store is not None:
        try:
            path = store._storage.staging_file(".fifo")
            os.mkfifo(path, 0o600)
        except OSError:  # a read-only store: the pipe goes elsewhere, and the rows over Arrow (_write)
            pass
        else:
            try:
                yield path
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            return
    directory = tempfile.mkdtemp(prefix="logstore-export-")
    try:
        path = os.path.join(directory, "rows.fifo")
        os.mkfifo(path, 0o600)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _copy_over_arrow(relation: duckdb.DuckDBPyRelation, path: str, fmt: str) -> None:
    """The rows as an Arrow stream into a new connection that may write `path` only, and COPY there."""
    reader = relation.to_arrow_reader(BATCH_ROWS)
    settings: dict[str, object] | None = {"threads": 1} if fmt == "parquet" else None  # one thread: same row groups every time
    con = connection.new(files=connection.Confined(paths=(path,)), settings=settings)
    try:
        con.register(_ROWS, reader)
        scan = con.sql(f"SELECT * FROM {_ROWS}")
        con.execute(_copy_sql(_names(scan), scan.types, _ROWS, path, fmt))
    finally:
        con.close()
        reader.close()


def _names(relation: duckdb.DuckDBPyRelation) -> list[str]:
    """The names the relation's columns are written under: its own, except that a name repeating an earlier one
    (DuckDB compares names case-insensitively: `SELECT 1 AS a, 2 AS a`, a join of two tables that both have `id`)
    gets the unique name DuckDB gives it when the relation is read as a table (`a_1`), as DuckDB's own COPY, the
    Parquet output and the CLI's table do."""
    columns = list(relation.columns)
    if len({c.lower() for c in columns}) == len(columns):
        return columns
    return list(relation.project("*").columns)  # binds only: nothing runs


def _copy_sql(columns: list[str], types: list, source: str, path: str, fmt: str) -> str:
    """The COPY of `source`'s rows to `path`; `columns` are its columns' unique names (_names), in order: each is
    bound by position (the source's own names may repeat, and would each find its first column)."""
    source = f"{source} AS {_ROWS}_named({', '.join(quote(c) for c in columns)})"
    if fmt == "parquet":
        # DuckDB writes a column REQUIRED when the statistics of what it reads show no NULL, so the same rows read
        # through other files (a snapshot, a compacted block) would give other bytes: a NULL the planner cannot rule
        # out (random() is never folded) keeps every column OPTIONAL, as the table's schema says (all nullable).
        # Not an empty UNION ALL branch: with one, DuckDB wrote the parts of a read of several files out of their
        # order (and on one thread)
        rows = f"SELECT CASE WHEN random() < 0 THEN NULL ELSE COLUMNS(*) END FROM {source}"  # each column, its name kept
        options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
        return f"COPY ({rows}) TO {literal(path)} ({options})"
    select = ", ".join(_text_column(name, str(type_), fmt) for name, type_ in zip(columns, types))
    # CSV: a TIMESTAMP column is written by the writer's own TIMESTAMPFORMAT (the bytes strftime gives, NULL, infinities,
    # years before 1 and after 9999 included; nested values untouched either way), ~2x cheaper than strftime per value
    csv = f"FORMAT csv, HEADER true, TIMESTAMPFORMAT '{LOCAL_FORMAT}'"
    options = {"csv": csv, "json": "FORMAT json, ARRAY true", "ndjson": "FORMAT json"}[fmt]
    return f"COPY (SELECT {select} FROM {source}) TO {literal(path)} ({options})"


def _text_column(name: str, type_: str, fmt: str) -> str:
    """The SQL writing column `name` of DuckDB type `type_` as the text formats' contract says (module docstring)."""
    q = quote(name)
    kind = type_.upper()
    if kind.endswith("]"):  # a list or array (of timestamps, decimals, ...): written by DuckDB, as structs and maps are
        return q
    if kind in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        value = f"strftime({q} AT TIME ZONE 'UTC', '{UTC_FORMAT}')"
    elif kind == "TIMESTAMP" and fmt == "csv":
        return q  # the CSV writer's TIMESTAMPFORMAT (_copy_sql)
    elif kind.startswith("TIMESTAMP"):  # TIMESTAMP (JSON), TIMESTAMP_S/_MS/_NS
        value = f"strftime({q}, '{LOCAL_FORMAT}')"
    elif kind in ("DOUBLE", "FLOAT", "REAL"):
        value = f"CASE WHEN isfinite({q}) THEN {q} END"
    elif kind == "BLOB":
        value = f"to_base64({q})"
    elif kind == "INTERVAL":
        value = f"epoch({q})"
    elif kind.startswith("DECIMAL") and fmt != "csv":
        value = f"CAST({q} AS VARCHAR)"
    else:
        return q
    return f"{value} AS {q}"


__all__ = ["write_relation"]
