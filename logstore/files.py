"""Reading data files into Arrow and writing one version out to a file.

`read_file` reads Parquet, CSV, TSV, JSON (an array or newline-delimited) and NDJSON through DuckDB, choosing the
format from the extension; gzip and zstd compressed text files are recognised by their content (`.gz`/`.zst`
names are looked through), other compressions are refused. `"-"` or a binary file object reads CSV from it (stdin
for `"-"`).

Dates and timestamps in text input must be ISO 8601 (YYYY-MM-DD, YYYY-MM-DD[T ]HH:MM:SS[.ffffff][offset]) unless
the caller names their format (`date_format=`, `timestamp_format=`, strptime-style): DuckDB's sniffer guesses a
date format per file, so `10/01/2024` would be October 1 in one file and January 10 in the next. A column is read
as the table's type where `schema` names it, else as the sniffer's guess; a value that does not fit (a non-ISO
date, `abc` in a BIGINT column) raises InputValueError naming the column, the line (CSV, NDJSON; the record of a
JSON array) and the value. CSV rejects come from DuckDB's reject tables (`store_rejects`), JSON ones from comparing
a lenient read (`ignore_errors`) with the raw text.

A file that names no columns is refused with InvalidInputError naming it (DuckDB would invent a `column0` or `json`
column): 0 bytes, a CSV/TSV without even a header line, a JSON/NDJSON file without a record (blank, or `[]`). A CSV
with a header and no rows reads as those columns and no rows (what an append of it commits: see the CLI).

`write_file` writes a table as Parquet (zstd), CSV, JSON (one array) or NDJSON with fixed settings and fixed
row-group boundaries, so writing the same rows twice gives byte-identical files; a `.gz` or `.zst` name compresses
CSV and JSON output (gzip without a time or name in its header), and a compression that cannot be honoured
(`.parquet.gz`, `.bz2`, ...) is refused before anything is written. It writes to a temporary file next to the target
and publishes it at once: a failed write leaves nothing behind, and an existing file is only replaced with
`force=True`.

Nothing here prints; long writes report progress through an optional callback.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import decimal
import gzip
import io
import json
import math
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import IO, Any, BinaryIO, Protocol, TypeAlias, cast

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import zstandard

from . import connection
from .errors import InputValueError, InvalidInputError, OutputExistsError, first_line
from .schema import columns_from_any, literal

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
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}  # what a name's last suffix asks for
COMPRESSED = tuple(COMPRESSIONS)
UNSUPPORTED_COMPRESSIONS = {
    ".bz2": "bzip2", ".xz": "xz", ".lzma": "lzma", ".lz4": "lz4", ".br": "brotli",
    ".zip": "zip", ".7z": "7z", ".z": "compress", ".sz": "snappy", ".snappy": "snappy",
}  # fmt: skip
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"\x04\x22\x4d\x18", "lz4"),
)
ISO_DATE = "%Y-%m-%d"
ROWS_PER_GROUP = 65_536  # the fixed slice size of every write: row groups (Parquet) and progress steps
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
REJECTS_KEPT = 100  # CSV rejects DuckDB records per file; only the first is reported
_ENCODING = "utf-8"
STDIN_LABEL, STREAM_LABEL = "stdin", "the input stream"  # how errors name a source that is not a file

PathName: TypeAlias = "str | PathLike[str]"
"""A file's path."""
Source: TypeAlias = "str | PathLike[str] | IO[bytes]"
"""What read_file reads: a path, "-" (stdin) or a binary file object."""
SchemaLike: TypeAlias = "pa.Schema | dict[str, str] | str | None"
"""A table's columns: a pyarrow Schema, a {name: duckdb_type} dict or a DDL column list."""


class _Writable(Protocol):
    """Where _write writes: a binary file, a compressing writer or a _CountingWriter."""

    def write(self, data: bytes, /) -> int: ...


_Reject: TypeAlias = tuple[Any, ...]
"""A row of DuckDB's CSV rejects table (line, column_idx, column_name, error_type, csv_line, error_message)."""


def format_of(path: PathName, default: str | None = None) -> str:
    """The file format named by `path`'s extension (a .gz/.zst suffix is looked through, others are refused)."""
    name, _ = _split_compression(path)
    name = name.lower()
    for ext, fmt in EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    if default is not None:
        return default
    known = ", ".join(sorted(EXTENSIONS))
    raise InvalidInputError(path, f"cannot tell the format of {os.fspath(path)!r} from its extension (known: {known}); name the format")


def output_format(path: PathName, format: str | None = None) -> str:  # noqa: A002
    """The format write_file writes `path` in (`format`, else the extension), after checking that the name's
    compression can be honoured: .gz and .zst compress CSV and JSON; Parquet (compressed inside) and other
    compression suffixes are refused. Call it before producing the rows to fail early."""
    return _output_encoding(os.fspath(path), format)[0]


def _split_compression(path: PathName) -> tuple[str, str | None]:
    """`path` without its compression suffix, and the compression that suffix names (gzip, zstd or None)."""
    name = os.fspath(path)
    lower = name.lower()
    for suffix, kind in COMPRESSIONS.items():
        if lower.endswith(suffix):
            return name[: -len(suffix)], kind
    for suffix, kind in UNSUPPORTED_COMPRESSIONS.items():
        if lower.endswith(suffix):
            reason = f"{name!r} names {kind} compression ({suffix}), which logstore does not support: use .gz or .zst"
            raise InvalidInputError(name, reason)
    return name, None


# --- reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """How to read text input: the target types the table gives, and the named date/timestamp formats."""

    types: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    timestamp_format: str | None = None


def read_file(
    source: Source,
    format: str | None = None,  # noqa: A002
    *,
    schema: SchemaLike = None,
    date_format: str | None = None,
    timestamp_format: str | None = None,
) -> pa.Table:
    """Read one data file into a pyarrow Table with DuckDB.

    `source` is a path, `"-"` (CSV from stdin) or a binary file object (CSV unless `format` says otherwise).
    `format` overrides the extension: parquet, csv, tsv, json or ndjson. `schema` (e.g. the target table's: a
    pyarrow Schema, a {name: type} dict or DDL) fixes the types of the text columns whose names it knows, instead of
    inferring them. Dates and timestamps must be ISO 8601 unless `date_format` / `timestamp_format` (strptime-style,
    e.g. '%m/%d/%Y') name theirs; a value that does not fit its column raises InputValueError.
    """
    if format is not None and format not in READ_FORMATS:
        raise InvalidInputError(format, f"unknown input format {format!r} (use one of {', '.join(READ_FORMATS)})")
    options = _options(schema, date_format, timestamp_format)
    if source == "-" or hasattr(source, "read"):
        stream = sys.stdin.buffer if source == "-" else cast(IO[bytes], source)
        return _read_stream(stream, format or "csv", options, STDIN_LABEL if source == "-" else STREAM_LABEL)
    path = os.fspath(source)
    fmt = format or format_of(path)
    if not os.path.isfile(path):
        raise InvalidInputError(path, f"input file {path!r} does not exist or is not a file")
    return _read_path(path, fmt, options, path)


def read_files(
    sources: Iterable[Source],
    format: str | None = None,  # noqa: A002
    *,
    schema: SchemaLike = None,
    date_format: str | None = None,
    timestamp_format: str | None = None,
    progress: Callable[[object], None] | None = None,
) -> pa.Table:
    """Read several files (see read_file; the same formats apply to all) into one table, their columns matched by
    name (a column missing from some files is null there; types widen where they can, e.g. BIGINT and DOUBLE to
    DOUBLE).

    `progress` is called with each source once it has been read.
    """
    sources = list(sources)
    tables = []
    for source in sources:
        tables.append(read_file(source, format, schema=schema, date_format=date_format, timestamp_format=timestamp_format))
        if progress is not None:
            progress(source)
    if not tables:
        raise InvalidInputError(sources, "no input files given")
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InvalidInputError(sources, f"the input files do not share a schema: {first_line(e)}") from None


def _options(schema: SchemaLike, date_format: str | None, timestamp_format: str | None) -> _Options:
    for name, value in (("date_format", date_format), ("timestamp_format", timestamp_format)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInputError(value, f"{name} must be a strptime-style format such as '%m/%d/%Y', got {value!r}")
    empty = schema is None or (isinstance(schema, pa.Schema) and len(schema) == 0)
    types = {} if empty else {c.name: c.type for c in columns_from_any(schema)}
    return _Options(types, date_format, timestamp_format)


def _read_stream(stream: IO[bytes], fmt: str, options: _Options, label: str) -> pa.Table:
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
        return _read_path(temp, fmt, options, label)
    finally:
        os.unlink(temp)


def _read_path(path: str, fmt: str, options: _Options, label: str) -> pa.Table:
    if os.path.getsize(path) == 0:
        raise InvalidInputError(label, f"{_subject(label)} is empty (0 bytes): it names no columns, so there is nothing to read")
    compression = _compression(path, label)
    if fmt == "parquet" and compression != "none":
        reason = f"{label!r} is {compression}-compressed: Parquet files compress their data themselves; decompress it first"
        raise InvalidInputError(label, reason)
    if fmt != "parquet":
        _refuse_no_columns(path, fmt, compression, label)
    con = connection.new()  # reads the file the user named, wherever it is
    try:
        if fmt == "parquet":
            return con.sql(f"SELECT * FROM read_parquet({literal(path)})").to_arrow_table()
        source = _Source(con, path, fmt, compression, options, label)
        return _read_csv(source) if fmt in ("csv", "tsv") else _read_json(source)
    except duckdb.Error as e:
        raise InvalidInputError(label, f"cannot read {label!r} as {fmt.upper()}: {first_line(e)}") from None
    finally:
        con.close()


def _compression(path: str, label: str) -> str:
    """The compression of the file at `path` by its first bytes: gzip, zstd or none; others are refused."""
    with open(path, "rb") as f:
        head = f.read(16)
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if kind is None and head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        kind = "bzip2"
    if kind in (None, "gzip", "zstd"):
        return kind or "none"
    reason = f"{label!r} is {kind}-compressed, which logstore cannot read: decompress it, or use gzip (.gz) or zstd (.zst)"
    raise InvalidInputError(label, reason)


EMPTY_PROBE_BYTES = 64 * 1024  # text files longer than this (decompressed) are never taken for empty


def _refuse_no_columns(path: str, fmt: str, compression: str, label: str) -> None:
    """Refuse a text file that names no columns: a CSV/TSV without even a header line, a JSON/NDJSON file without a
    record (blank, or `[]`), compressed or not. DuckDB would invent a column (`column0`, `json`) for them. A CSV
    with a header and no rows is fine: it names its columns and holds no rows."""
    with _open_input(path, compression) as f:
        head = f.read(EMPTY_PROBE_BYTES + 1)
    if len(head) > EMPTY_PROBE_BYTES:
        return
    text = head.decode(_ENCODING, errors="replace").lstrip("\ufeff").strip()
    if not text:
        what = "no header line" if fmt in ("csv", "tsv") else "no records"
        raise InvalidInputError(label, f"{_subject(label)} is blank ({what}): it names no columns, so there is nothing to read")
    if fmt == "json" and text.startswith("[") and text.endswith("]") and not text[1:-1].strip():
        raise InvalidInputError(label, f"{_subject(label)} holds no records ([]): it names no columns, so there is nothing to read")


def _subject(label: str) -> str:
    return label if label in (STDIN_LABEL, STREAM_LABEL) else f"input file {label!r}"


@dataclass(frozen=True)
class _Source:
    con: duckdb.DuckDBPyConnection
    path: str
    fmt: str
    compression: str
    options: _Options
    label: str


# CSV and TSV: the sniffer (given only the caller's formats) fixes the dialect and guesses the types; the read
# itself detects nothing, takes the table's type for every column the table knows, ISO 8601 dates unless a format
# is named, and DuckDB's own (ISO) timestamp parsing unless one is named; every value that does not fit is a reject.


def _read_csv(src: _Source) -> pa.Table:
    delim = ", delim = '\\t'" if src.fmt == "tsv" else ""
    sniffed = src.con.execute(
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns "
        f"FROM sniff_csv({literal(src.path)}, compression = '{src.compression}'{delim}{_sniff_formats(src.options)})"
    ).fetchall()[0]
    columns = {c["name"]: src.options.types.get(c["name"], c["type"]) for c in sniffed[7]}
    formats = f", dateformat = {literal(src.options.date_format or ISO_DATE)}"
    if src.options.timestamp_format:
        formats += f", timestampformat = {literal(src.options.timestamp_format)}"
    arguments = (
        f"{literal(src.path)}, compression = '{src.compression}', auto_detect = false, {_dialect(sniffed)}, "
        f"columns = {_struct(columns)}{formats}"
    )
    table, reject = _scan_csv(src.con, arguments)
    if reject is not None:
        raise _csv_reject(src, reject, sniffed, columns)
    return table


def _scan_csv(con: duckdb.DuckDBPyConnection, arguments: str) -> tuple[pa.Table, _Reject | None]:
    """read_csv(arguments) keeping its rejects (values that do not fit, malformed lines): the rows and the first
    reject by line, if any. The reject tables have names of their own, so a shared connection is fine."""
    rejects, scans = (f"logstore_{kind}_{uuid.uuid4().hex}" for kind in ("rejects", "scans"))
    keep = f"store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scans}', rejects_limit = {REJECTS_KEPT}"
    try:
        table = con.sql(f"SELECT * FROM read_csv({arguments}, {keep})").to_arrow_table()
        first = con.execute(
            f"SELECT line, column_idx, column_name, error_type, csv_line, error_message FROM {rejects} "
            "ORDER BY line, column_idx LIMIT 1"
        ).fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {rejects}")
        con.execute(f"DROP TABLE IF EXISTS {scans}")
    return table, (first[0] if first else None)


def _sniff_formats(options: _Options) -> str:
    """Only the formats the caller named: the sniffer's own guesses are what the read then refuses."""
    text = f", dateformat = {literal(options.date_format)}" if options.date_format else ""
    if options.timestamp_format:
        text += f", timestampformat = {literal(options.timestamp_format)}"
    return text


def _dialect(sniffed: Sequence[Any]) -> str:
    delim, quote, escape, newline, comment, skip, header = (_plain(v) for v in sniffed[:7])
    text = f"delim = {literal(delim)}, quote = {literal(quote)}, escape = {literal(escape)}, skip = {int(skip)}"
    text += f", comment = {literal(comment)}, header = {'true' if header else 'false'}"
    return text + (f", new_line = {literal(newline)}" if newline else "")


def _plain(value: Any) -> Any:
    return "" if value == "(empty)" else value


def _csv_reject(src: _Source, reject: _Reject, sniffed: Sequence[Any], columns: dict[str, str]) -> InvalidInputError:
    line, index, column, kind, text, message = reject
    if kind != "CAST" or column not in columns:
        return InvalidInputError(src.label, f"{src.label}: line {line}: {first_line(message)}")
    value = _csv_field(text, index, sniffed)
    if value is None:
        return InvalidInputError(src.label, f"{src.label}: line {line}, column {column!r}: {first_line(message)}")
    return InputValueError(src.label, line=line, column=column, value=value, reason=_reason(value, columns[column], src.options))


def _csv_field(text: str, index: int, sniffed: Sequence[Any]) -> str | None:
    """Field `index` (1-based) of the CSV record `text`, split in the file's dialect."""
    delim, quote, escape = (_plain(v) for v in sniffed[:3])
    try:
        reader = csv.reader(
            io.StringIO(text.strip("\r\n"), newline=""),
            delimiter=delim,
            quotechar=quote or None,
            escapechar=escape or None,
            quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
            strict=False,
        )
        return next(reader)[index - 1]
    except (csv.Error, TypeError, StopIteration, IndexError):
        return None


def _reason(value: str, type_: str, options: _Options) -> str:
    kind = _temporal(type_)
    if kind == "date" and options.date_format:
        return f"{value!r} does not match date_format {options.date_format!r}"
    if kind == "date":
        return (
            f"{value!r} is not an ISO 8601 date (YYYY-MM-DD); give the format of the file's dates as date_format "
            "(CLI: --date-format), e.g. '%m/%d/%Y'"
        )
    if kind == "timestamp" and options.timestamp_format:
        return f"{value!r} does not match timestamp_format {options.timestamp_format!r}"
    if kind == "timestamp":
        return (
            f"{value!r} is not an ISO 8601 timestamp (YYYY-MM-DD[T ]HH:MM:SS[.ffffff][+HH:MM]); give the format of "
            "the file's timestamps as timestamp_format (CLI: --timestamp-format), e.g. '%m/%d/%Y %H:%M:%S'"
        )
    return f"cannot read {value!r} as {type_}"


def _temporal(type_: str) -> str | None:
    name = type_.upper()
    if name == "DATE":
        return "date"
    return "timestamp" if name.startswith("TIMESTAMP") else None


# JSON and NDJSON: the same rule, through read_json's `columns` (DuckDB's JSON reader parses dates and timestamps
# as ISO 8601 when it is given the types, and with the caller's formats when named). Its errors name no column, so
# a failed read is repeated leniently (bad values become null) and compared with the raw text to find the value.


def _read_json(src: _Source) -> pa.Table:
    layout = "auto" if src.fmt == "json" else "newline_delimited"
    base = f"{literal(src.path)}, format = '{layout}', compression = '{src.compression}'"
    formats = _sniff_formats(src.options)
    sniffed = src.con.execute(f"DESCRIBE SELECT * FROM read_json({base}{formats})").fetchall()
    columns = {name: _json_type(src.options.types.get(name), type_) for name, type_, *_ in sniffed}
    typed = f"{base}, columns = {_struct(columns)}{formats}"
    try:
        return src.con.sql(f"SELECT * FROM read_json({typed})").to_arrow_table()
    except duckdb.Error as e:
        error = _json_reject(src, base, typed, columns)
        if error is None:
            raise e from None
        raise error from None


def _json_type(table_type: str | None, sniffed: str) -> str:
    """The table's type for a column of JSON strings (dates, numbers written as text: DuckDB parses them strictly);
    JSON numbers, booleans, nested and mixed values keep their own type and conform checks them like any Arrow
    input (DuckDB would round 1.5 into an integer column, conform refuses it)."""
    if table_type is not None and (sniffed.upper() == "VARCHAR" or _temporal(sniffed)):
        return table_type
    return sniffed


def _json_reject(src: _Source, base: str, typed: str, columns: dict[str, str]) -> InputValueError | None:
    try:
        text = _struct({name: "VARCHAR" for name in columns})
        raw = src.con.sql(f"SELECT * FROM read_json({base}, columns = {text})").to_arrow_table()
        lenient = src.con.sql(f"SELECT * FROM read_json({typed}, ignore_errors = true)").to_arrow_table()
    except duckdb.Error:
        return None
    found = _first_lost(raw, lenient) if raw.num_rows == lenient.num_rows else None
    if found is None:
        return None
    index, column = found
    value = raw.column(column)[index].as_py()
    reason = _reason(value, columns[column], src.options)
    if src.fmt == "ndjson":
        return InputValueError(src.label, line=_ndjson_line(src, index), column=column, value=value, reason=reason)
    return InputValueError(src.label, line=index + 1, column=column, value=value, reason=reason, unit="record")


def _first_lost(raw: pa.Table, lenient: pa.Table) -> tuple[int, str] | None:
    """The first (row, column) holding text in `raw` but null in `lenient`: a value the typed read rejected."""
    import pyarrow.compute as pc
    found = None
    for name in raw.column_names:
        lost = pc.and_(pc.is_valid(raw.column(name)), pc.is_null(lenient.column(name)))
        index = pc.index(lost, True).as_py()
        if index >= 0 and (found is None or index < found[0]):
            found = (index, name)
    return found


def _ndjson_line(src: _Source, index: int) -> int:
    """The line number of record `index` (0-based) of an NDJSON file: blank lines hold no record."""
    with _open_input(src.path, src.compression) as f:
        seen = -1
        for number, line in enumerate(f, start=1):
            if line.strip():
                seen += 1
                if seen == index:
                    return number
    return index + 1


def _open_input(path: str, compression: str) -> io.BufferedIOBase:
    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "zstd":
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def _struct(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"{literal(name)}: {literal(type_)}" for name, type_ in columns.items()) + "}"


# --- writing -------------------------------------------------------------------------------------------------


def write_file(
    table: pa.Table,
    path: PathName | IO[bytes],
    format: str | None = None,  # noqa: A002
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write `table` to `path` (or a binary file object) as parquet, csv, json or ndjson; return the bytes written.

    The format comes from `format` or the extension. A path ending in .gz or .zst (.zstd) is compressed with gzip or
    zstd (CSV and JSON only; other compression suffixes, and Parquet with one, are refused before anything is
    written). Output is deterministic: the same rows give the same bytes. OutputExistsError if `path` exists and not
    `force`; the file appears complete or not at all. `progress` is called with the number of rows written after
    each slice.
    """
    if hasattr(path, "write"):
        fmt = format or "csv"
        _check_write_format(fmt)
        counter = _CountingWriter(cast(IO[bytes], path))
        _write(table, counter, fmt, progress)
        return counter.count
    target = os.fspath(path)
    fmt, compression = _output_encoding(target, format)

    def fill(temp: str) -> None:
        with open(temp, "wb") as f:
            with _compressed(f, compression) as out:
                _write(table, out, fmt, progress)

    return publish(target, fill, force=force)


def publish(target: str, fill: Callable[[str], None], *, force: bool = False) -> int:
    """Write `target` through a temporary file next to it (`fill(temp)` writes it), fsynced, then published at once
    (replacing an existing file only with `force`); return its size. A failed fill leaves nothing behind.
    OutputExistsError if `target` exists and not `force` (checked before `fill` runs, and again when publishing)."""
    if os.path.lexists(target) and not force:
        raise OutputExistsError(target)
    if os.path.isdir(target):
        raise InvalidInputError(target, f"{target!r} is a directory")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise InvalidInputError(target, f"cannot write {target!r}: directory {directory!r} does not exist")
    temp = os.path.join(directory, f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
    try:
        fill(temp)
        with open(temp, "rb+") as f:
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


def _output_encoding(target: str, fmt: str | None) -> tuple[str, str | None]:
    """The format and the compression (gzip, zstd or None) to write `target` with; refuses what cannot be honoured."""
    _, compression = _split_compression(target)
    named = format_of(target, default="")  # what the name says, whatever `fmt` asks for
    fmt = fmt or format_of(target)
    _check_write_format(fmt)
    if compression is not None and "parquet" in (fmt, named):
        reason = f"cannot write {target!r}: Parquet compresses its data itself (zstd); name it without the {compression} suffix"
        raise InvalidInputError(target, reason)
    return fmt, compression


@contextlib.contextmanager
def _compressed(raw: BinaryIO, compression: str | None) -> Iterator[_Writable]:
    """`raw`, or a writer compressing into it; reproducible: gzip without a time or file name in its header."""
    if compression is None:
        yield raw
    elif compression == "gzip":
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as out:
            yield out
    else:
        with zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).stream_writer(raw, closefd=False) as out:
            yield out


def _check_write_format(fmt: str) -> None:
    if fmt not in WRITE_FORMATS:
        raise InvalidInputError(fmt, f"cannot write {fmt!r} files (use one of {', '.join(WRITE_FORMATS)})")


def _slices(table: pa.Table) -> Iterator[pa.Table]:
    """Fixed-size slices, independent of how the table happens to be chunked in memory."""
    if table.num_rows == 0:
        return
    for offset in range(0, table.num_rows, ROWS_PER_GROUP):
        yield table.slice(offset, ROWS_PER_GROUP)


def _write(table: pa.Table, out: _Writable, fmt: str, progress: Callable[[int], None] | None) -> None:
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


def json_value(value: Any) -> Any:
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
            return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
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
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def write(self, data: bytes) -> int:
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


__all__ = ["READ_FORMATS", "WRITE_FORMATS", "format_of", "json_value", "output_format", "read_file", "read_files", "write_file"]
