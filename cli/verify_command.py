"""`logstore verify` and `logstore vacuum`: integrity checks and removal of leftovers (logstore/verify.py, vacuum.py)."""

from __future__ import annotations

import datetime as dt
import re

import click

from .output import human_bytes, output_options, render, status

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _tables(state, table: str | None) -> list:
    return [state.table(table)] if table else [state.table(name) for name in state.store.tables()]


@click.command()
@click.argument("table", required=False)
@click.option("--version", "version", type=int, default=None, help="Verify this version (default: the latest).")
@click.option("--all-versions", "full", is_flag=True, help="Check the content fingerprint of every version and snapshot.")
@output_options
@click.pass_obj
def verify(state, table, version, full, fmt):
    """Check files, checksums and content fingerprints; exit 1 on any problem.

    Without TABLE, every table of the store. Checks that every file the version needs exists with its recorded
    size and SHA-256 and that its content matches its fingerprint; --all-versions checks every version.
    """
    problems, reports = [], []
    for t in _tables(state, table):
        report = t.verify(version, full=full)
        reports.append(report)
        problems += [{"table": t.name, "kind": p.kind, "path": p.path, "version": p.version, "message": p.message} for p in report.problems]
    if fmt == "table":
        for report in reports:
            status(report.summary())
            for note in report.notes:
                status(f"  note: {note}")
            if report.unreferenced:
                status(f"  {len(report.unreferenced)} unreferenced files (leftovers; `logstore vacuum` removes them)")
        if problems:
            render(problems, fmt, fields=["table", "kind", "path", "version", "message"])
    else:
        render(problems, fmt, fields=["table", "kind", "path", "version", "message"])
    if problems:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("table", required=False)
@click.option("--apply", "apply_", is_flag=True, help="Remove the files (default: a dry run that only lists them).")
@click.option(
    "--older-than",
    default="1h",
    show_default=True,
    metavar="AGE",
    help="Only files older than this (e.g. 30m, 2h, 7d; 0 for no minimum). Files an in-flight writer may still "
    "publish are kept for 10 minutes whatever this says.",
)
@output_options
@click.pass_obj
def vacuum(state, table, apply_, older_than, fmt):
    """Remove files no version or tag needs: leftovers of crashed writers, stale staging files, redundant snapshots,
    and change files a compaction replaced.

    Without TABLE, every table of the store. A dry run unless --apply is given.
    """
    age = _duration(older_than)
    records, total = [], 0
    for t in _tables(state, table):
        report = t.vacuum(dry_run=not apply_, older_than=age)
        total += report.bytes
        records += [{"table": t.name, "path": r.path, "bytes": r.bytes, "reason": r.reason} for r in report.removals]
    render(records, fmt, fields=["table", "path", "bytes", "reason"], empty="(nothing to remove)")
    if fmt == "table":
        verb = "removed" if apply_ else "would remove (dry run; --apply removes)"
        status(f"{verb}: {len(records)} files, {human_bytes(total)}")


@click.command()
@click.argument("table")
@output_options
@click.pass_obj
def repair(state, table, fmt):
    """Let TABLE take commits again after its newest commit record was damaged or lost.

    Moves the damaged records, and everything of the versions above the newest intact one (change files,
    snapshots, checkpoints, tags, compactions), to the table's _quarantine/ folder (nothing is deleted), records
    what it did in _repairs/, and sets the head to that version. Run it with no writer active.

    Example: logstore repair events
    """
    report = state.table(table).repair()
    render([{"source": m.source, "target": m.target, "reason": m.reason} for m in report.moves], fmt, fields=["source", "target", "reason"], empty="(nothing moved)")
    if fmt == "table":
        status(report.summary())


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text or "")
    if not match:
        raise click.BadParameter(f"{text!r} is not an age such as 90s, 30m, 2h, 7d", param_hint="--older-than")
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])
