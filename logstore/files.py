"""Reading data files into Arrow and writing one version out to a file.

`read_file` reads Parquet, CSV, TSV, JSON (an array or newline-delimited) and NDJSON through DuckDB, choosing the
format from the extension (`.gz`/`.zst` compressed text files too); `"-"` or a binary file object reads CSV from it
(stdin for `"-"`). `write_file` writes a table as Parquet (zstd), CSV, JSON (one array) or NDJSON with fixed
settings and fixed row-group boundaries, so writing the same rows twice gives byte-identical files. It writes to a
temporary file next to the target and publishes it at once: a failed write leaves nothing behind, and an existing
file is only replaced with `force=True`.

Nothing here prints; long writes report progress through an optional callback.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import os
import sys
import tempfile
import uuid
from typing import BinaryIO, Callable, Iterable

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import InvalidInputError, OutputExistsError
from .schema import columns_from_arrow

READ_FORMATS = ("parquet", "csv", "tsv", "json", "ndjson")
WRITE_FORMATS = ("parquet", "csv", "json", "ndjson")
EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
COMPRESSED = (".gz", ".zst", ".zstd")
ROWS_PER_GROUP = 65_536  # the fixed slice size of every write: row groups (Parquet) and progress steps
_ENCODING = "utf-8"


def format_of(path, default: str | None = None) -> str:
    """The file format named by `path`'s extension (a compression suffix is looked through)."""
    name = os.fspath(path).lower()
    for suffix in COMPRESSED:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    for ext, fmt in EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    if default is not None:
        return default
    known = ", ".join(sorted(EXTENSIONS))
    raise InvalidInputError(path, f"cannot tell the format of {os.fspath(path)!r} from its extension (known: {known}); name the format")


# --- reading -------------------------------------------------------------------------------------------------


def read_file(source, format: str | None = None, *, schema: pa.Schema | None = None) -> pa.Table:  # noqa: A002
    """Read one data file into a pyarrow Table with DuckDB.

    `source` is a path, `"-"` (CSV from stdin) or a binary file object (CSV unless `format` says otherwise).
    `format` overrides the extension: parquet, csv, tsv, json or ndjson. `schema` (e.g. the target table's) fixes
    the types of CSV/TSV columns whose names it knows, instead of inferring them from the text.
    """
    if format is not None and format not in READ_FORMATS:
        raise InvalidInputError(format, f"unknown input format {format!r} (use one of {', '.join(READ_FORMATS)})")
    if source == "-" or hasattr(source, "read"):
        stream = sys.stdin.buffer if source == "-" else source
        return _read_stream(stream, format or "csv", schema, "stdin" if source == "-" else "the input stream")
    path = os.fspath(source)
    fmt = format or format_of(path)
    if not os.path.isfile(path):
        raise InvalidInputError(path, f"input file {path!r} does not exist or is not a file")
    return _read_path(path, fmt, schema, path)


def read_files(
    sources: Iterable,
    format: str | None = None,  # noqa: A002
    *,
    schema: pa.Schema | None = None,
    progress: Callable[[object], None] | None = None,
) -> pa.Table:
    """Read several files (see read_file) into one table, their columns matched by name (a column missing from
    some files is null there; types widen where they can, e.g. BIGINT and DOUBLE to DOUBLE).

    `progress` is called with each source once it has been read.
    """
    sources = list(sources)
    tables = []
    for source in sources:
        tables.append(read_file(source, format, schema=schema))
        if progress is not None:
            progress(source)
    if not tables:
        raise InvalidInputError(sources, "no input files given")
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InvalidInputError(sources, f"the input files do not share a schema: {_first_line(e)}") from None


def _read_stream(stream: BinaryIO, fmt: str, schema, label: str) -> pa.Table:
    data = stream.read()
    if isinstance(data, str):
        data = data.encode(_ENCODING)
    if not data.strip():
        raise InvalidInputError(label, f"no data on {label}")
    suffix = {"parquet": ".parquet", "tsv": ".tsv", "json": ".json", "ndjson": ".ndjson"}.get(fmt, ".csv")
    handle, temp = tempfile.mkstemp(prefix="logstore-input-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        return _read_path(temp, fmt, schema, label)
    finally:
        os.unlink(temp)


def _read_path(path: str, fmt: str, schema: pa.Schema | None, label: str) -> pa.Table:
    con = duckdb.connect()
    literal = _literal(path)
    try:
        if fmt == "parquet":
            sql = f"SELECT * FROM read_parquet({literal})"
        elif fmt in ("csv", "tsv"):
            options = ", delim = '\\t'" if fmt == "tsv" else ""
            types = _csv_types(con, literal, options, schema)
            sql = f"SELECT * FROM read_csv({literal}{options}{types})"
        elif fmt == "json":
            sql = f"SELECT * FROM read_json({literal}, format = 'auto')"
        else:
            sql = f"SELECT * FROM read_json({literal}, format = 'newline_delimited')"
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise InvalidInputError(label, f"cannot read {label!r} as {fmt.upper()}: {_first_line(e)}") from None
    finally:
        con.close()


def _csv_types(con, literal: str, options: str, schema: pa.Schema | None) -> str:
    """A `types = {...}` argument fixing the columns `schema` knows (only those the file has)."""
    if schema is None or len(schema) == 0:
        return ""
    present = {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM read_csv({literal}{options})").fetchall()}
    wanted = [c for c in columns_from_arrow(schema) if c.name in present]
    if not wanted:
        return ""
    pairs = ", ".join(f"{_literal(c.name)}: {_literal(c.type)}" for c in wanted)
    return f", types = {{{pairs}}}"


# --- writing -------------------------------------------------------------------------------------------------


def write_file(
    table: pa.Table,
    path,
    format: str | None = None,  # noqa: A002
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write `table` to `path` (or a binary file object) as parquet, csv, json or ndjson; return the bytes written.

    The format comes from `format` or the extension. Output is deterministic: the same rows give the same bytes.
    OutputExistsError if `path` exists and not `force`; the file appears complete or not at all. `progress` is
    called with the number of rows written after each slice.
    """
    if hasattr(path, "write"):
        fmt = format or "csv"
        _check_write_format(fmt)
        counter = _CountingWriter(path)
        _write(table, counter, fmt, progress)
        return counter.count
    target = os.fspath(path)
    fmt = format or format_of(target)
    _check_write_format(fmt)
    if os.path.lexists(target) and not force:
        raise OutputExistsError(target)
    if os.path.isdir(target):
        raise InvalidInputError(target, f"{target!r} is a directory")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise InvalidInputError(target, f"cannot write {target!r}: directory {directory!r} does not exist")
    temp = os.path.join(directory, f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as f:
            _write(table, f, fmt, progress)
            f.flush()
            os.fsync(f.fileno())
        size = os.path.getsize(temp)
        if force:
            os.replace(temp, target)
        else:
            try:
                os.link(temp, target)  # fails if another process created the file meanwhile
            except FileExistsError:
                raise OutputExistsError(target) from None
        return size
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass


def _check_write_format(fmt: str) -> None:
    if fmt not in WRITE_FORMATS:
        raise InvalidInputError(fmt, f"cannot write {fmt!r} files (use one of {', '.join(WRITE_FORMATS)})")


def _slices(table: pa.Table):
    """Fixed-size slices, independent of how the table happens to be chunked in memory."""
    if table.num_rows == 0:
        return
    for offset in range(0, table.num_rows, ROWS_PER_GROUP):
        yield table.slice(offset, ROWS_PER_GROUP)


def _write(table: pa.Table, out: BinaryIO, fmt: str, progress) -> None:
    report = progress or (lambda rows: None)
    if fmt == "parquet":
        with pq.ParquetWriter(out, table.schema, compression="zstd", write_statistics=True) as writer:
            for part in _slices(table):
                writer.write_table(part, row_group_size=ROWS_PER_GROUP)
                report(part.num_rows)
    elif fmt == "csv":
        options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
        with pacsv.CSVWriter(out, table.schema, write_options=options) as writer:  # writes the header even for no rows
            for part in _slices(table):
                writer.write_table(part)
                report(part.num_rows)
    else:
        lines = fmt == "ndjson"
        if not lines:
            out.write(b"[")
        first = True
        for part in _slices(table):
            chunk = []
            for row in part.to_pylist():
                text = json.dumps(json_value(row), ensure_ascii=False, allow_nan=False)
                if lines:
                    chunk.append(text + "\n")
                else:
                    chunk.append(("\n" if first else ",\n") + text)
                first = False
            out.write("".join(chunk).encode(_ENCODING))
            report(part.num_rows)
        if not lines:
            out.write(b"\n]\n" if not first else b"]\n")


def json_value(value):
    """A JSON-ready copy of a value read from Arrow: times as ISO-8601 (aware ones in UTC, with Z), decimals as
    text, bytes as base64, NaN and infinities as null."""
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


class _CountingWriter:
    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def write(self, data) -> int:
        self.raw.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    @property
    def closed(self) -> bool:
        return False

    def tell(self) -> int:
        return self.count


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["READ_FORMATS", "WRITE_FORMATS", "format_of", "json_value", "read_file", "read_files", "write_file"]
