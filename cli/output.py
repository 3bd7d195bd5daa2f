"""Everything the CLI writes for people and scripts: listings, single records, status lines, colours, progress.

How a command uses it (new commands such as `sql`, `diff`, `verify` should do the same)::

    from .output import output_options, render, render_one, status

    @click.command()
    @click.argument("table")
    @output_options                      # adds -f/--format [table|json|csv]; the value arrives as `fmt`
    @click.pass_obj
    def tags(state, table, fmt):
        records = [{"tag": n, "version": v} for n, v in ...]      # plain dicts, stable field names
        render(records, fmt, fields=["tag", "version"])           # a listing

    render_one({"name": ..., "version": 3}, fmt)                  # one object (info, a commit)
    render_arrow(pyarrow_table, fmt)                              # rows of a small pyarrow.Table
    render_relation(duckdb_relation, fmt)                         # rows of a query: streamed (csv, json)
    status("tagged events version 3 as v1")                       # a human line (stdout, or stderr with err=True)
    status(f"removed {count(3, 'file')}")                          # counts for people: "1 file", "3 files"

Formats: `table` (aligned columns for people; `key  value` lines for one object), `json` (ONE document: an array
of objects for a listing, an object for one record; times ISO-8601 UTC with a `Z`), `csv` (a header row, then one
row per record). Field names are the dict keys, so keep them stable: they are the scripting contract.
Rows of a table version, a query, the change feed or a diff (`render_relation`) are never Python objects in csv and
json: DuckDB's writers stream them to stdout (logstore/export.py, which casts times, NaN, blobs, ... in SQL to the
same contract; nested values print as DuckDB writes them in CSV: `[1, 2]`, `{'a': 1}`), and the human table shows
at most TABLE_ROWS rows unless the command's --limit says otherwise.
`columns=[(header, function)]` changes only the human table view (e.g. "+2 ~1 -0" for three counters).

Colour: only when the stream is a terminal and NO_COLOR is unset. Progress bars: `progress(...)` draws on stderr
only when it is a terminal and the work is big (PROGRESS_MIN_BYTES); otherwise it is silent.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from logstore.errors import first_line

if TYPE_CHECKING:  # imported where rows are written or shown: a command that prints none does not pay for them
    import duckdb
    import pyarrow as pa

    from logstore import Store

FORMATS = ("table", "json", "csv")
PROGRESS_MIN_BYTES = 4 * 1024 * 1024  # "more than a few MB"
TABLE_ROWS = 1000  # the most rows a human table of query results shows when no --limit says otherwise
UTC = dt.UTC


def output_options(fn):
    """The shared output option of every listing command: -f/--format table|json|csv, passed as `fmt`."""
    return click.option(
        "-f",
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format: a table for people, or one JSON document / CSV for scripts.",
    )(fn)


# --- values ------------------------------------------------------------------------------------------------


def iso(moment: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, microseconds included: 2022-01-01T00:00:00.000000Z."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def human_time(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{moment.microsecond // 1000:03d}" if moment.microsecond else "")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n noun`, the noun in the plural unless n is 1: count(1, "file") -> "1 file", count(0, "file") -> "0 files".

    Every count the CLI prints for people goes through this (no "1 files", no "file(s)")."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _prepare_json(value):
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _prepare_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_prepare_json(v) for v in value]
    return _json_value(value)


def _json_value(value):
    from logstore.files import json_value

    return json_value(value)


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{k}={_csv_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(_csv_cell(v) for v in value)
    plain = _json_value(value)
    return plain if isinstance(plain, str) else str(plain)


def _table_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return human_time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_table_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_table_cell(v) for v in value)
    plain = _json_value(value)
    text = plain if isinstance(plain, str) else str(plain)
    return text.replace("\n", "\\n")


# --- colour --------------------------------------------------------------------------------------------------


def colour_enabled(err: bool = False) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    stream = sys.stderr if err else sys.stdout
    return _isatty(stream)


def style(text: str, *, err: bool = False, **styles) -> str:
    return click.style(text, **styles) if colour_enabled(err) else text


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def echo(text: str = "", *, err: bool = False) -> None:
    click.echo(text, err=err, color=colour_enabled(err))


def status(text: str, *, err: bool = False) -> None:
    """A one-line human message about what a command did."""
    echo(text, err=err)


def error(message: str) -> None:
    """The one-line `error: ...` on stderr."""
    echo(style("error:", err=True, fg="red", bold=True) + " " + message, err=True)


# --- rendering ---------------------------------------------------------------------------------------------


def render(
    records: Sequence[dict],
    fmt: str,
    *,
    fields: Sequence[str] | None = None,
    columns: Sequence[tuple[str, Callable[[dict], Any]]] | None = None,
    empty: str | None = None,
) -> None:
    """Write a listing: a human table, one JSON array, or CSV with a header row.

    `fields` picks and orders the record keys (default: the first record's keys). `columns` overrides the human
    table only: (header, function of the record). `empty` is a human note for an empty listing (table format only).
    """
    records = list(records)
    if fields is None:
        fields = list(records[0].keys()) if records else []
    if fmt == "json":
        echo(json.dumps([{f: _prepare_json(r.get(f)) for f in fields} for r in records], indent=2, ensure_ascii=False))
    elif fmt == "csv":
        echo(_csv_text([fields] + [[_csv_cell(r.get(f)) for f in fields] for r in records]), err=False)
    else:
        if not records and empty is not None:
            echo(empty)
            return
        spec = list(columns) if columns is not None else [(f, (lambda r, f=f: r.get(f))) for f in fields]
        headers = [h for h, _ in spec]
        rows = [[_table_cell(get(r)) for _, get in spec] for r in records]
        numeric = [all(_is_number(get(r)) for r in records) and records != [] for _, get in spec]
        echo(_table_text(headers, rows, numeric))


def render_one(record: dict, fmt: str, *, labels: dict[str, str] | None = None) -> None:
    """Write one record: `label  value` lines for people, one JSON object, or a CSV header and one row."""
    if fmt == "json":
        echo(json.dumps(_prepare_json(record), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        echo(_csv_text([list(record.keys()), [_csv_cell(v) for v in record.values()]]))
    else:
        labels = labels or {}
        names = [labels.get(k, k) for k in record]
        width = max((len(n) for n in names), default=0)
        lines = [f"{style(n.ljust(width), bold=True)}  {_table_cell(v)}" for n, v in zip(names, record.values())]
        echo("\n".join(lines))


def render_arrow(table, fmt: str, *, empty: str | None = "(no rows)") -> None:
    """Write the rows of a pyarrow.Table as a listing (field names are the column names)."""
    records = table.to_pylist()
    render(records, fmt, fields=table.column_names, empty=empty)


def render_relation(
    relation: duckdb.DuckDBPyRelation,
    fmt: str,
    *,
    store: Store | None = None,
    limit: int | None = None,
    empty: str | None = "(no rows)",
    more: str | None = "raise --limit to see more",
    readable: Callable[[pa.Table], pa.Table] | None = None,
) -> None:
    """Write the rows of a DuckDB relation (at most `limit`): csv and json streamed to stdout by DuckDB (never Python
    rows); the human table shows at most `limit` rows (TABLE_ROWS without one), then `more` as a note if rows were
    left out. `readable` reshapes the rows the table shows (e.g. diff's). `store`: the store the relation reads
    (see write_rows)."""
    if fmt in ("csv", "json"):
        write_rows(relation if limit is None else relation.limit(limit), "-", fmt, store=store)
        return
    shown = table_rows(limit)
    rows = relation.limit(shown + 1).to_arrow_table()
    cut = rows.num_rows > shown
    rows = rows.slice(0, shown)
    render_arrow(readable(rows) if readable is not None else rows, fmt, empty=empty)
    if cut and more:
        status(f"(first {count(shown, 'row')} shown; {more})")


def table_rows(limit: int | None) -> int:
    """How many rows a human table shows: `limit`, else TABLE_ROWS."""
    return TABLE_ROWS if limit is None else limit


def write_rows(relation: duckdb.DuckDBPyRelation, target: str, fmt: str | None, *, force: bool = False, store: Store | None = None) -> int:
    """Write the rows of a relation to the file `target` ('-': stdout) with DuckDB's writers (logstore/export.py);
    the bytes written. `store`: the store whose connection runs the relation (DuckDB writes into a pipe in its
    staging directory). A query failing part-way is one `error:` line; a file is then not written at all, while
    what went to stdout stays written."""
    import duckdb

    if target == "-":
        flush()
    try:
        return write_relation(relation, stdout_binary() if target == "-" else target, fmt, force=force, store=store)
    except duckdb.Error as e:
        raise CommandError(first_line(e)) from None


def write_relation(relation: duckdb.DuckDBPyRelation, target, fmt: str | None, *, force: bool = False, store: Store | None = None) -> int:
    """logstore.export.write_relation, imported on first use (with DuckDB, pyarrow and the files module)."""
    from logstore.export import write_relation as write

    return write(relation, target, fmt, force=force, store=store)


class CommandError(click.ClickException):
    """A failure a command reports as the CLI's one `error: ...` line with exit status 1 (not click's `Error:`)."""

    def show(self, file=None) -> None:
        error(self.format_message())


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")


def _table_text(headers: list[str], rows: list[list[str]], numeric: list[bool]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells, head=False):
        parts = []
        for i, cell in enumerate(cells):
            text = cell.rjust(widths[i]) if numeric[i] and not head else cell.ljust(widths[i])
            parts.append(style(text, bold=True) if head else text)
        return "  ".join(parts).rstrip()

    out = [line(headers, head=True), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


# --- progress ----------------------------------------------------------------------------------------------


class _Silent:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


def progress_wanted(size_bytes: int) -> bool:
    return size_bytes >= PROGRESS_MIN_BYTES and _isatty(sys.stderr)


def progress(length: int, label: str, *, size_bytes: int):
    """A click progress bar on stderr for long work on a terminal, else a silent stand-in with the same update()."""
    if length <= 0 or not progress_wanted(size_bytes):
        return _Silent()
    return click.progressbar(length=length, label=label, file=sys.stderr, color=colour_enabled(err=True))


def stdout_binary():
    return getattr(sys.stdout, "buffer", sys.stdout)


def flush() -> None:
    sys.stdout.flush()
