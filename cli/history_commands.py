"""History and names for versions: log, tag, tags, untag."""

from __future__ import annotations

import click

import logstore

from .output import output_options, render, status
from .records import COMMIT_FIELDS, LOG_COLUMNS, commit_record


@click.command()
@click.argument("table")
@click.option("-n", "--limit", type=click.IntRange(min=1), metavar="N", help="Show only the N newest commits.")
@output_options
@click.pass_obj
def log(state, table, limit, fmt):
    """The commits of TABLE, newest first.

    Columns: version, time, author, operation, +inserted ~updated -deleted, rows, message, tags.

    \b
    Example:
      logstore log events --limit 10
      logstore log events --format json | jq '.[0].version'
    """
    t = state.table(table)
    by_version: dict[int, list[str]] = {}
    for name, version in t.tags().items():
        by_version.setdefault(version, []).append(name)
    records = [commit_record(c, by_version.get(c.version, ())) for c in t.history(limit=limit)]
    render(records, fmt, fields=COMMIT_FIELDS, columns=LOG_COLUMNS)


@click.command()
@click.argument("table")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=0), metavar="N", help="The version to tag [default: the latest].")
@click.option("--at", metavar="TS", help="Tag the latest version committed at or before TS.")
@click.pass_obj
def tag(state, table, name, version, at):
    """Name a version of TABLE (the latest by default). Tags are immutable: untag first to move one.

    \b
    Example:
      logstore tag events v1.0
      logstore tag events end-of-2021 --at 2022-01-01
    """
    if version is not None and at is not None:
        raise click.UsageError("give at most one of --version and --at")
    try:
        tagged = state.table(table).tag(name, version, as_of=at)
    except logstore.TagExistsError as e:
        e.cli_hint = f"with `logstore untag {table} {name}`"  # "...; delete it first with `logstore untag T N`"
        raise
    status(f"{table}: tagged version {tagged} as {name}")


@click.command()
@click.argument("table")
@output_options
@click.pass_obj
def tags(state, table, fmt):
    """The tags of TABLE and the versions they name.

    \b
    Example:
      logstore tags events --format csv
    """
    t = state.table(table)
    records = [
        {"tag": name, "version": version, "timestamp": t.commit_info(version).timestamp}
        for name, version in sorted(t.tags().items())
    ]
    render(
        records,
        fmt,
        fields=["tag", "version", "timestamp"],
        columns=[("tag", lambda r: r["tag"]), ("version", lambda r: r["version"]), ("committed (UTC)", lambda r: r["timestamp"])],
        empty=f"(no tags on {table})",
    )


@click.command()
@click.argument("table")
@click.argument("name")
@click.pass_obj
def untag(state, table, name):
    """Delete the tag NAME of TABLE (the version itself stays).

    \b
    Example:
      logstore untag events v1.0
    """
    state.table(table).delete_tag(name)
    status(f"{table}: deleted tag {name}")
