"""`logstore sql`: a read-only DuckDB query over the store's tables, with time travel (see logstore/sql.py)."""

from __future__ import annotations

import sys

import click

from .output import output_options, render_arrow


@click.command()
@click.argument("query", required=False)
@click.option("--query-file", "query_file", type=click.File("r", encoding="utf-8"), metavar="FILE.sql", help="Read the query from this file ('-' for stdin).")
@click.option("--allow-files", is_flag=True, help="Let the query read files outside the store (read_csv, read_parquet, glob, FROM 'file.csv', ...).")
@output_options
@click.pass_obj
def sql(state, query, query_file, allow_files, fmt):
    """Run a read-only SQL QUERY (DuckDB dialect) over the store's tables.

    A bare table name is its latest version; pin one with `t AS OF VERSION 3`, `t VERSION AS OF 3`,
    `t AS OF TIMESTAMP '2022-01-01'`, `t TIMESTAMP AS OF '...'`, `t FOR SYSTEM_TIME AS OF '...'`,
    `t AT (VERSION => 3)` or `t AT (TIMESTAMP => TIMESTAMP '...')`; a tag goes wherever a version does.
    Without QUERY or --query-file, the query is read from stdin. The query sees the store's tables only; reading
    any other file needs --allow-files.

    \b
    Example:
      logstore sql "SELECT kind, count(*) FROM events AS OF VERSION 3 GROUP BY kind"
      logstore sql "SELECT * FROM events AS OF VERSION 'v1.0' a JOIN events b USING (id)" --format csv
      logstore sql --query-file report.sql -f json
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
    relation = state.store.sql(query, allow_files=allow_files)
    render_arrow(relation.to_arrow_table(), fmt)
