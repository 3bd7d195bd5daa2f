"""`logstore sql`: a read-only DuckDB query over the store's tables, with time travel (see logstore/sql.py)."""

from __future__ import annotations

import sys

import click

import logstore

from .options import output_file, output_file_options
from .output import CommandError, count, output_options, render_relation, status, write_rows


@click.command()
@click.argument("query", required=False)
@click.option("--query-file", "query_file", type=click.File("r", encoding="utf-8"), metavar="FILE.sql", help="Read the query from this file ('-' for stdin).")
@click.option("--allow-files", is_flag=True, help="Let the query read files outside the store (read_csv, read_parquet, glob, FROM 'file.csv', ...).")
@output_options
@output_file_options
@click.pass_obj
def sql(state, query, query_file, allow_files, fmt, output, file_format, force):
    """Run a read-only SQL QUERY (DuckDB dialect) over the store's tables.

    A bare table name is its latest version; pin one with `t AS OF VERSION 3`, `t VERSION AS OF 3`,
    `t AS OF TIMESTAMP '2022-01-01'`, `t TIMESTAMP AS OF '...'`, `t FOR SYSTEM_TIME AS OF '...'`,
    `t AT (VERSION => 3)` or `t AT (TIMESTAMP => TIMESTAMP '...')`; a tag goes wherever a version does.
    Without QUERY or --query-file, the query is read from stdin. The query sees the store's tables only; reading
    any other file needs --allow-files.

    Results are streamed: `--format csv|json` print every row through DuckDB's writers, `-o FILE` writes a
    Parquet, CSV, JSON or NDJSON file (by its extension, or --file-format) the same way, in bounded memory. The
    human table shows the first 1000 rows. In CSV, lists and structs print as DuckDB writes them (`[1, 2]`).

    \b
    Example:
      logstore sql "SELECT kind, count(*) FROM events AS OF VERSION 3 GROUP BY kind"
      logstore sql "SELECT * FROM events AS OF VERSION 'v1.0' a JOIN events b USING (id)" --format csv
      logstore sql --query-file report.sql -f json
      logstore sql "SELECT * FROM events AS OF VERSION 3" -o events-v3.parquet
      echo "SELECT count(*) FROM events" | logstore sql
      logstore sql --allow-files "SELECT e.*, c.label FROM events e JOIN 'labels.csv' c USING (id)"
    """
    if query is not None and query_file is not None:
        raise click.UsageError("give the query as an argument or with --query-file, not both")
    if query_file is not None:
        query = query_file.read()
    elif query is None or query == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("give a query: logstore sql \"SELECT ...\", --query-file FILE.sql, or pipe it on stdin")
        query = sys.stdin.read()
    if not query.strip():
        raise click.UsageError("the query is empty")
    written = output_file(output, file_format) if output else None
    relation = state.store.sql(query, allow_files=allow_files)
    try:
        if output and written:
            size = write_rows(relation, output, written, force=force, store=state.store)
            if output != "-":
                status(f"wrote {count(size, 'byte')} ({written}) to {output}")
            return
        render_relation(relation, fmt, store=state.store, more="use --format csv|json or -o FILE for every row")
    except CommandError as e:
        raise logstore.SQLError(query, e.message) from None
