"""The writes: create, append, upsert, overwrite, update, delete, restore. Each makes one commit (an append or upsert
of files without rows makes none and says so)."""

from __future__ import annotations

import click

from .options import (
    INPUT_FILE,
    check_timestamp,
    commit_kwargs,
    input_options,
    load_inputs,
    selector,
    selector_options,
    write_options,
)
from .output import output_options, render_one, status
from .records import commit_line, commit_record


def report(table_name: str, commit, fmt: str) -> None:
    """What every write prints: one human line, or the commit as one JSON object / CSV row."""
    record = commit_record(commit)
    if fmt == "table":
        status(commit_line(table_name, record))
    else:
        render_one({"table": table_name, **record}, fmt)


def nothing_to_commit(table_name: str, files, version: int, fmt: str) -> None:
    """An append or upsert of input without rows (a header-only CSV, a Parquet file of no rows) that adds no
    column: like `git commit` with nothing staged, nothing is committed, but it is not an error (exit 0), so a
    pipeline importing a day without data goes on. Said on stdout for people, on stderr with --format json|csv
    (which print nothing, as no commit was made)."""
    names = ", ".join("stdin" if f == "-" else f for f in files)
    status(f"{table_name}: no rows in {names}; nothing committed (still version {version})", err=fmt != "table")


def _keys(values) -> list[str]:
    return [k.strip() for v in values for k in v.split(",") if k.strip()]


def _assignments(ctx, param, values) -> dict:
    parsed = {}
    for item in values:
        column, sep, expression = item.partition("=")
        if not sep or not column.strip() or not expression.strip():
            raise click.BadParameter(f"expected COL=EXPR, got {item!r}", ctx=ctx, param=param)
        parsed[column.strip()] = expression.strip()
    return parsed


@click.command()
@click.argument("table")
@click.argument("file", required=False, type=INPUT_FILE)
@click.option("--key", "keys", multiple=True, metavar="COL", help="A key column (repeat, or comma-separate, for a compound key).")
@click.option("--schema", "ddl", metavar="DDL", help="The columns, as SQL: 'id BIGINT, name VARCHAR'. Default: the file's columns.")
@input_options
@write_options
@output_options
@click.pass_obj
def create(state, table, file, keys, ddl, file_format, date_format, timestamp_format, message, author, timestamp, meta, fmt):
    """Create TABLE (version 0) from FILE, or empty with --schema.

    FILE is Parquet, CSV, TSV, JSON or NDJSON (by extension; .gz/.zst compressed too); '-' reads CSV from stdin.
    Dates and timestamps in text files must be ISO 8601 unless --date-format/--timestamp-format name theirs; a value
    that does not fit its column (e.g. 10/01/2024 for a date) is refused naming the column, line and value.
    --schema fixes the column types the file is read with. A file that names no columns (0 bytes, no CSV header
    line, no JSON record) is refused; a CSV with a header and no rows makes an empty table with those columns.

    \b
    Example:
      logstore create events events.csv --key id -m "first import" --timestamp 2021-01-01
      logstore create orders us-orders.csv --date-format '%m/%d/%Y'
      logstore create people --schema 'id BIGINT, name VARCHAR' --key id
    """
    if file is None and ddl is None:
        raise click.UsageError("give a FILE to import, or --schema for an empty table")
    formats = {"schema": ddl, "date_format": date_format, "timestamp_format": timestamp_format}
    data = load_inputs([file], file_format, **formats) if file is not None else None
    created = state.store.create_table(table, data, schema=ddl, key=_keys(keys) or None, **commit_kwargs(message, author, timestamp, meta))
    report(table, created.commit_info(0), fmt)


def _file_write(verb: str, doc: str, many: bool = True):
    @click.command(name=verb, help=doc)
    @click.argument("table")
    @click.argument("files", nargs=-1 if many else 1, required=True, type=INPUT_FILE)
    @input_options
    @click.option("--merge-schema", is_flag=True, help="Add new columns (nullable) instead of refusing them.")
    @write_options
    @output_options
    @click.pass_obj
    def command(state, table, files, file_format, date_format, timestamp_format, merge_schema, message, author, timestamp, meta, fmt):
        files = files if many else (files,)
        if list(files).count("-") > 1:
            raise click.UsageError("stdin ('-') can be read only once")
        t = state.table(table)
        check_timestamp(t, timestamp)  # before reading the input: a bad --timestamp is reported first
        data = load_inputs(files, file_format, schema=t.schema(), date_format=date_format, timestamp_format=timestamp_format)
        if verb in ("append", "upsert") and data.num_rows == 0 and set(data.column_names) <= set(t.schema().names):
            nothing_to_commit(table, files, t.version, fmt)
            return
        write = getattr(t, verb)
        commit = write(data, schema_mode="merge" if merge_schema else None, **commit_kwargs(message, author, timestamp, meta))
        report(table, commit, fmt)

    return command


append = _file_write(
    "append",
    """Append the rows of FILE... to TABLE (one commit for all files).

    Text files are read with TABLE's column types; dates and timestamps must be ISO 8601 unless
    --date-format/--timestamp-format name theirs. A value that does not fit is refused naming the column, line and
    value, and nothing is committed. Files without rows (a CSV with only its header) commit nothing: the command
    says so and exits 0. A file that names no columns (0 bytes, no header line) is refused.

    \b
    Example:
      logstore append events jan.parquet feb.csv.gz -m "monthly import"
      logstore append events us-export.csv --date-format '%m/%d/%Y'
      cat new.csv | logstore append events -
    """,
)
upsert = _file_write(
    "upsert",
    """Insert new keys, update existing ones (TABLE needs a key).

    Rows equal to the stored ones are left alone (not counted, not in the change feed). Files without rows commit
    nothing (the command says so and exits 0).

    \b
    Example:
      logstore upsert events fixes.csv -m "corrections from upstream"
    """,
)
overwrite = _file_write(
    "overwrite",
    """Replace the rows of TABLE with FILE.

    Stored as the row-level difference from the previous version: rows equal to the stored ones are no change.
    A FILE with a header and no rows empties TABLE (a commit deleting every row).

    \b
    Example:
      logstore overwrite events dump-2022-06-01.csv --timestamp 2022-06-01
    """,
    many=False,
)


@click.command()
@click.argument("table")
@click.option("--set", "assignments", multiple=True, required=True, metavar="COL=EXPR", callback=_assignments, help="A column and the SQL expression giving its new value (repeatable).")
@click.option("--where", required=True, metavar="PRED", help="A SQL predicate choosing the rows ('true' for every row).")
@write_options
@output_options
@click.pass_obj
def update(state, table, assignments, where, message, author, timestamp, meta, fmt):
    """Set columns to SQL expressions on the rows matching --where.

    Only rows whose values change are updated: a matching row that the expressions leave as it was is not counted,
    not written and not in the change feed. An update that changes no row still commits a version (with +0 ~0 -0).

    \b
    Example:
      logstore update events --set "kind=upper(kind)" --set "score=score * 2" --where "id < 100"
    """
    t = state.table(table)
    check_timestamp(t, timestamp)
    commit = t.update(set=assignments, where=where, **commit_kwargs(message, author, timestamp, meta))
    report(table, commit, fmt)


@click.command()
@click.argument("table")
@click.option("--where", required=True, metavar="PRED", help="A SQL predicate choosing the rows to delete ('true' for every row).")
@write_options
@output_options
@click.pass_obj
def delete(state, table, where, message, author, timestamp, meta, fmt):
    """Delete the rows of TABLE matching --where.

    \b
    Example:
      logstore delete events --where "kind = 'test'" -m "drop test events"
    """
    t = state.table(table)
    check_timestamp(t, timestamp)
    commit = t.delete(where=where, **commit_kwargs(message, author, timestamp, meta))
    report(table, commit, fmt)


@click.command()
@click.argument("table")
@selector_options
@write_options
@output_options
@click.pass_obj
def restore(state, table, version, at, tag, message, author, timestamp, meta, fmt):
    """Add a commit whose rows equal an earlier version of TABLE.

    \b
    Example:
      logstore restore events --version 3 -m "undo the bad import"
      logstore restore events --at 2022-01-01
      logstore restore events --tag v1.0
    """
    chosen = selector(version, at, tag, required=True)
    t = state.table(table)
    check_timestamp(t, timestamp)
    commit = t.restore(**chosen, **commit_kwargs(message, author, timestamp, meta))
    report(table, commit, fmt)
