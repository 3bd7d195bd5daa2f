"""`logstore uri`: the dataset URI of one version of a table (logstore/uri.py)."""

from __future__ import annotations

import click

from .options import selector, selector_options
from .output import echo


@click.command()
@click.argument("table")
@selector_options
@click.pass_obj
def uri(state, table, version, at, tag):
    """Print the dataset URI of one version of TABLE (default: the latest).

    The URI names the store, the table, the exact version number (never the tag or time it was picked by) and the
    version's content fingerprint: record it with an experiment, and `logstore.read_uri(uri)` reads exactly those
    rows back later (refusing them if their fingerprint differs). Grammar: see README.md, "Which data did this
    model see?".

    \b
    Example:
      logstore uri events
      logstore uri events --tag v1.0
      logstore uri events --at 2021-06-30
    """
    echo(state.table(table).uri(**selector(version, at, tag)))
