"""`logstore diff` and `logstore changes`: what changed between versions (logstore/changes.py does the work).

A version argument is a version number (`3`), a moment (`@2022-01-01`, `@2022-01-01T12:00:00+02:00`) or a tag name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .options import output_file, output_file_options
from .output import (
    TABLE_ROWS,
    count,
    output_options,
    render,
    render_one,
    render_relation,
    status,
    table_rows,
    write_rows,
)

if TYPE_CHECKING:
    import pyarrow as pa

VERSION_HELP = "A version number, @TIMESTAMP (ISO-8601, UTC unless it has an offset) or a tag name."
LIMIT = click.option(
    "-n", "--limit", type=click.IntRange(min=0), metavar="N", help=f"Show at most N rows [default: all; the first {TABLE_ROWS} in the table format]."
)


@click.command()
@click.argument("table")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--summary", is_flag=True, help="Only the counts per change type, the changed columns and schema changes.")
@LIMIT
@output_options
@output_file_options
@click.pass_obj
def diff(state, table, a, b, summary, limit, fmt, output, file_format, force):
    """The net row difference from version A to version B (B before A gives the reverse).

    Rows are matched by the table's key (by internal row id without one). Each row is an insert, update or delete;
    an update shows the new value of each column next to its old value in `_old_<column>`, and lists the
    changed columns in `_changed_columns`. A and B are each a version number, @TIMESTAMP or a tag.
    CSV, JSON and -o FILE are streamed (DuckDB's writers, bounded memory); in CSV, `_changed_columns` and other
    lists print as DuckDB writes them: `[a, b]`.

    \b
    Examples:
      logstore diff events 3 7
      logstore diff events v1.0 @2022-06-01 --summary
      logstore diff events 0 12 --limit 20 --format csv
      logstore diff events 0 12 -o diff.parquet
    """
    written = output_file(output, file_format) if output else None
    t = state.table(table)
    if summary:
        s = t.diff_summary(a, b)
        record = {
            "from_version": s.from_version,
            "to_version": s.to_version,
            "inserted": s.inserted,
            "updated": s.updated,
            "deleted": s.deleted,
            "changed_columns": dict(s.changed_columns),
            "columns_added": list(s.columns_added),
            "columns_removed": list(s.columns_removed),
        }
        render_one(record, fmt)
        return
    if output or fmt != "table":
        relation = t.diff_relation(a, b)
        _write(state, relation, fmt, limit, output, written, force, "(no differences)")
        return
    shown = table_rows(limit)
    rows = t.diff(a, b, limit=shown + 1)
    rows, more = _cut(rows, shown)
    facts = _facts(rows)
    notes = [f"columns added: {', '.join(facts['columns_added'])}"] if facts.get("columns_added") else []
    notes += [f"columns removed: {', '.join(facts['columns_removed'])}"] if facts.get("columns_removed") else []
    for note in notes:
        status(note)
    records, fields = _readable(rows)
    render(records, fmt, fields=fields, empty="(no differences)")
    if more:
        status(f"(first {count(shown, 'row')} shown; raise --limit to see more)")


@click.command()
@click.argument("table")
@click.argument("start", metavar="START")
@click.argument("end", metavar="[END]", required=False)
@LIMIT
@output_options
@output_file_options
@click.pass_obj
def changes(state, table, start, end, limit, fmt, output, file_format, force):
    """Every row change made by the commits START..END (inclusive; END defaults to the latest version).

    Each change is an insert, a delete (with the row's last values), or an update as two rows: update_preimage
    and update_postimage; with the version and commit time that made it. START and END are each a version
    number, @TIMESTAMP or a tag; a START timestamp means the first commit at or after it.
    CSV, JSON and -o FILE are streamed (DuckDB's writers, bounded memory).

    \b
    Examples:
      logstore changes events 5            # what versions 5 to the latest changed
      logstore changes events 5 9 --format json
      logstore changes events @2022-01-01 @2022-02-01
      logstore changes events 0 -o changes.parquet
    """
    written = output_file(output, file_format) if output else None
    relation = state.table(table).changes_relation(start, end)
    _write(state, relation, fmt, limit, output, written, force, "(no changes)")


def _write(state, relation, fmt: str, limit: int | None, output: str | None, written: str | None, force: bool, empty: str) -> None:
    """The first `limit` rows (all without one) to --output, else printed as --format says (the human table: at most
    TABLE_ROWS without a limit)."""
    if output and written:
        size = write_rows(relation if limit is None else relation.limit(limit), output, written, force=force, store=state.store)
        if output != "-":
            status(f"wrote {count(size, 'byte')} ({written}) to {output}")
        return
    render_relation(relation, fmt, store=state.store, limit=limit, empty=empty)


def _cut(rows: pa.Table, limit: int) -> tuple[pa.Table, bool]:
    if rows.num_rows <= limit:
        return rows, False
    return rows.slice(0, limit), True


def _facts(rows: pa.Table) -> dict:
    import json

    raw = (rows.schema.metadata or {}).get(b"logstore.diff")
    return json.loads(raw) if raw else {}


def _readable(rows: pa.Table) -> tuple[list[dict], list[str]]:
    """For people: the rows as records without the `_old_` columns no shown row changed, the changed columns as one
    string; and the names of the columns kept. (In Python, not pyarrow.compute: a Python string in a compute call
    makes pyarrow import pandas, 0.3-0.5 s, tests/test_cli_imports.py.)"""
    from logstore.changes import CHANGED_COLUMNS, OLD_PREFIX

    keep = [n for n in rows.column_names if not (n.startswith(OLD_PREFIX) and rows.column(n).null_count == rows.num_rows)]
    records = rows.select(keep).to_pylist()
    for r in records:
        if r.get(CHANGED_COLUMNS) is not None:
            r[CHANGED_COLUMNS] = ", ".join(r[CHANGED_COLUMNS])
    return records, keep
