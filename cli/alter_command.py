"""`logstore alter`: change a table's columns (add, drop, rename, widen) in one commit, rewriting no data."""

from __future__ import annotations

import click

from .options import check_timestamp, commit_kwargs, write_options
from .output import output_options
from .write_commands import report


def _pairs(ctx, param, values) -> dict:
    parsed = {}
    for item in values:
        left, sep, right = item.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", ctx=ctx, param=param)
        parsed[left.strip()] = right.strip()
    return parsed


@click.command()
@click.argument("table")
@click.option("--add", "add", multiple=True, metavar="'COL TYPE [DEFAULT EXPR]'", help="Add a column, as SQL (repeatable); rows written before get the default (NULL without one).")
@click.option("--drop", "drop", multiple=True, metavar="COL", help="Drop a column (repeatable); not a key column.")
@click.option("--rename", "rename", multiple=True, metavar="OLD=NEW", callback=_pairs, help="Rename a column (repeatable); a key column stays in the key.")
@click.option("--widen", "widen", multiple=True, metavar="COL=TYPE", callback=_pairs, help="Widen a column's type without loss (repeatable): INTEGER=BIGINT, FLOAT=DOUBLE, DECIMAL to a larger precision.")
@write_options
@output_options
@click.pass_obj
def alter(state, table, add, drop, rename, widen, message, author, timestamp, meta, fmt):
    """Change the columns of TABLE in one new version; nothing already written is rewritten.

    Every earlier version keeps its columns: `show --version N`, `sql ... AS OF VERSION N` and `checkout` of an
    older version give its columns under the names and types it had. A dropped column that is added again is a
    new column (its old values do not come back). Names given to --drop, --rename and --widen are the columns
    before the change.

    \b
    Example:
      logstore alter events --add 'source VARCHAR' --add "region VARCHAR DEFAULT 'eu'"
      logstore alter events --rename ts=event_time --widen score=DOUBLE --drop debug
    """
    t = state.table(table)
    check_timestamp(t, timestamp)
    commit = t.alter(
        add=list(add) or None, drop=list(drop) or None, rename=rename or None, widen=widen or None,
        **commit_kwargs(message, author, timestamp, meta),
    )
    report(table, commit, fmt)
