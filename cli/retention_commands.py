"""`logstore expire` and `logstore purge`: retention and erasure (logstore/expiry.py, logstore/purge.py)."""

from __future__ import annotations

import click

from .output import output_options, render_one, status


@click.command()
@click.argument("table")
@click.option("--before", metavar="TS", help="Expire the versions committed before TS (ISO-8601).")
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N", help="Expire all but the N newest versions.")
@click.option("--include-tags", is_flag=True, help="Expire tagged versions too [default: tagged versions stay readable].")
@click.option("--dry-run", is_flag=True, help="Only report what would expire.")
@click.option("-m", "--message", help="The commit message of the EXPIRE version.")
@click.option("--author", help="Who made the commit [default: $LOGSTORE_AUTHOR, else git config user.name, else the login name].")
@output_options
@click.pass_obj
def expire(state, table, before, keep_last, include_tags, dry_run, message, author, fmt):
    """Make the old versions of TABLE unreadable so that vacuum can reclaim their files.

    Versions before the cut-off (and not tagged, unless --include-tags) then raise an error naming the cut-off
    when read; `logstore log` still lists them, marked expired. The latest version is never expired. Commits an
    EXPIRE version; `logstore vacuum` then removes the files only expired versions need. A `retention` table
    property (e.g. 90d) makes vacuum apply a rolling cut-off by itself.

    \b
    Example:
      logstore expire events --keep-last 100 --dry-run
      logstore expire events --before 2024-01-01
    """
    if before is None and keep_last is None:
        raise click.UsageError("give --before TS or --keep-last N")
    report = state.table(table).expire(before=before, keep_last=keep_last, keep_tags=not include_tags, dry_run=dry_run, message=message, author=author)
    if fmt == "table":
        status(report.summary())
        return
    render_one({
        "table": report.table, "dry_run": report.dry_run, "cutoff": report.cutoff, "cutoff_timestamp": report.cutoff_timestamp,
        "expired": report.expired, "kept": report.kept, "version": report.version,
    }, fmt)


@click.command()
@click.argument("table")
@click.option("--where", "where", required=True, metavar="PRED", help="The rows to purge: every row matching PRED in any version.")
@click.option("-m", "--message", help="The commit message of the PURGE version (do not quote the purged values).")
@click.option("--author", help="Who made the commit [default: $LOGSTORE_AUTHOR, else git config user.name, else the login name].")
@click.option("--timestamp", metavar="TS", help="Backdate the commit (ISO-8601); must be after the previous commit and not in the future.")
@click.option("--dry-run", is_flag=True, help="Only report what would be purged.")
@output_options
@click.pass_obj
def purge(state, table, where, message, author, timestamp, dry_run, fmt):
    """Remove every row matching PRED in any version from every version of TABLE (right to be forgotten).

    A row that matched once is removed from its whole lineage (by row id), before and after it matched; every other
    row of every version stays as it was. Only the files holding the rows are rewritten; the files they replace are
    deleted at once, and commit records quoting the values are redacted. Recorded as a PURGE version with the
    author, the time, the number of rows and a SHA-256 of the predicate, never the values. A predicate matching
    nothing commits nothing.

    \b
    Example:
      logstore purge users --where "email = 'jane@example.com'" -m "erasure request 4711" --dry-run
      logstore purge users --where "email = 'jane@example.com'" -m "erasure request 4711"
    """
    t = state.table(table)
    result = t.purge(where=where, message=message, author=author, timestamp=timestamp, dry_run=dry_run)
    if result is None:
        status(f"{table}: no row matches; nothing purged (still version {t.version})")
        return
    if dry_run:
        if fmt == "table":
            status(result.summary())
            return
        render_one({
            "table": result.table, "dry_run": True, "rows": result.rows, "stored_rows": result.change_rows,
            "versions": result.versions, "files": result.files, "bytes_rewritten": result.bytes_rewritten,
        }, fmt)
        return
    record = {"table": table, "version": result.version, "operation": result.operation, "rows": result.parameters.get("rows"),
              "predicate_sha256": result.parameters.get("predicate_sha256"), "num_rows": result.num_rows}
    if fmt == "table":
        status(f"{table}: version {result.version} PURGE: {result.parameters.get('rows')} rows removed from every version ({result.num_rows} rows now)")
        return
    render_one(record, fmt)
