"""`logstore merge`: a MERGE of a file into a table (Table.merge), one commit, with its counts printed."""

from __future__ import annotations

import click

from .options import INPUT_FILE, check_timestamp, commit_kwargs, input_options, load_inputs, write_options
from .output import output_options, render_one, status
from .write_commands import _assignments, _keys, report


@click.command()
@click.argument("table")
@click.argument("file", type=INPUT_FILE)
@click.option("--on", "on", multiple=True, required=True, metavar="COLS", help="The column(s) matching FILE's rows with TABLE's (repeat, or comma-separate).")
@click.option("--update-all", is_flag=True, help="Matched rows take every column from FILE's row.")
@click.option("--update", "updates", multiple=True, metavar="COL=EXPR", callback=_assignments, help="Matched rows: set COL to a SQL expression over source.col / target.col (repeatable).")
@click.option("--insert-all", is_flag=True, help="Rows of FILE matching no row are inserted.")
@click.option("--delete-matched-when", "delete_when", metavar="COND", help="Matched rows where the SQL condition holds are deleted (checked before the update).")
@click.option("--delete-not-matched-by-source", "delete_unmatched", is_flag=True, help="Rows of TABLE matching no row of FILE are deleted.")
@click.option("--dry-run", is_flag=True, help="Print the counts the merge would make; commit nothing.")
@input_options
@write_options
@output_options
@click.pass_obj
def merge(state, table, file, on, update_all, updates, insert_all, delete_when, delete_unmatched, dry_run, file_format, date_format, timestamp_format, message, author, timestamp, meta, fmt):
    """Merge FILE into TABLE in one commit: update the rows that match, insert the new ones, delete those asked.

    Rows match on the --on columns (equal values; NULL matches nothing). The clauses apply in this order, the first
    that holds wins: --delete-matched-when, then --update-all / --update (matched rows), --insert-all (rows of FILE
    matching none), --delete-not-matched-by-source (rows of TABLE matching none). Expressions and conditions are SQL
    over source.col and target.col. Two rows of FILE matching the same row is refused, as is a duplicate key;
    nothing is committed then. Updates that leave a row as it was are not counted. FILE is read like `append`'s
    (Parquet, CSV, TSV, JSON, NDJSON; '-' reads CSV from stdin).

    \b
    Example:
      logstore merge customers changes.csv --on id --update-all --insert-all
      logstore merge customers cdc.parquet --on id --delete-matched-when "source.op = 'D'" --update-all --insert-all
      logstore merge stock today.csv --on sku --update 'qty=source.qty' --delete-not-matched-by-source --dry-run
    """
    if update_all and updates:
        raise click.UsageError("give --update-all or --update, not both")
    if not (update_all or updates or insert_all or delete_when or delete_unmatched):
        raise click.UsageError("give at least one of --update-all, --update, --insert-all, --delete-matched-when, --delete-not-matched-by-source")
    t = state.table(table)
    check_timestamp(t, timestamp)
    data = load_inputs([file], file_format, date_format=date_format, timestamp_format=timestamp_format)
    builder = t.merge(data, on=_keys(on), **commit_kwargs(message, author, timestamp, meta))
    if delete_when:
        builder.when_matched_delete(delete_when)
    if update_all:
        builder.when_matched_update_all()
    elif updates:
        builder.when_matched_update(set=updates)
    if insert_all:
        builder.when_not_matched_insert_all()
    if delete_unmatched:
        builder.when_not_matched_by_source_delete()
    if dry_run:
        counts = builder.dry_run()
        record = {"table": table, "dry_run": True, "inserted": counts.inserted, "updated": counts.updated, "deleted": counts.deleted}
        if fmt == "table":
            status(f"{table}: merge would insert {counts.inserted}, update {counts.updated}, delete {counts.deleted} (dry run, nothing committed)")
        else:
            render_one(record, fmt)
        return
    report(table, builder.execute(), fmt)
