"""`logstore init` and `logstore tables`: the store itself."""

from __future__ import annotations

import click

import logstore

from .context import init_target
from .output import output_options, render, status


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.pass_obj
def init(state, path):
    """Create a store in PATH/.logstore (default: ./.logstore).

    With --store or LOGSTORE_DIR and no PATH, the store is created exactly there.

    \b
    Example:
      logstore init            # creates ./.logstore; commands below find it like git finds .git
      logstore init ~/data     # creates ~/data/.logstore
    """
    target = init_target(path, state.store_option)
    store = logstore.init(target)
    status(f"initialized an empty logstore store in {store.path}")


@click.command()
@output_options
@click.pass_obj
def tables(state, fmt):
    """List the tables: latest version, rows, last commit time.

    \b
    Example:
      logstore tables
      logstore tables --format json
    """
    store = state.store
    records = []
    for name in store.tables():
        head = store.table(name).commit_info()
        records.append({"name": name, "version": head.version, "num_rows": head.num_rows, "last_commit": head.timestamp})
    render(
        records,
        fmt,
        fields=["name", "version", "num_rows", "last_commit"],
        columns=[("table", lambda r: r["name"]), ("version", lambda r: r["version"]), ("rows", lambda r: r["num_rows"]), ("last commit (UTC)", lambda r: r["last_commit"])],
        empty="(no tables; create one with `logstore create TABLE FILE`)",
    )
