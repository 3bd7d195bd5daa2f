"""`logstore verify`, `vacuum` and `repair`: integrity checks, removal of leftovers, and a way past a damaged newest
commit (logstore/verify.py, vacuum.py, repair.py)."""

from __future__ import annotations

import datetime as dt
import re

import click

import logstore

from .output import count, human_bytes, output_options, render, render_one, status

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _tables(state, table: str | None) -> list:
    return [state.table(table)] if table else [state.table(name) for name in state.store.tables()]


PROBLEM_FIELDS = ["table", "kind", "path", "version", "message"]


@click.command()
@click.argument("table", required=False)
@click.option("--version", "version", type=click.IntRange(min=0), default=None, metavar="N", help="Verify this version [default: the latest].")
@click.option("--all-versions", "full", is_flag=True, help="Check the content fingerprint of every version and snapshot.")
@output_options
@click.pass_obj
def verify(state, table, version, full, fmt):
    """Check files, checksums and content fingerprints; exit 1 on any problem.

    Without TABLE, every table of the store. Checks that every file the version needs exists with its recorded
    size and SHA-256 and that its content matches its fingerprint; --all-versions checks every version.
    --format json prints one object: `ok`, `tables` (what was checked in each table) and `problems`;
    --format csv prints the problems, one per row.

    \b
    Example:
      logstore verify
      logstore verify events --all-versions
      logstore verify --format json | jq '.problems'
    """
    problems, reports = [], []
    for t in _tables(state, table):
        report = t.verify(version, full=full)
        reports.append(report)
        problems += [{"table": t.name, "kind": p.kind, "path": p.path, "version": p.version, "message": p.message} for p in report.problems]
    if fmt == "json":
        render_one({"ok": not problems, "tables": [_checked(r) for r in reports], "problems": problems}, fmt)
    elif fmt == "csv":
        render(problems, fmt, fields=PROBLEM_FIELDS)
    else:
        for report in reports:
            status(_verify_line(report))
            for note in report.notes:
                status(f"  note: {note}")
            if report.unreferenced:
                status(f"  {count(len(report.unreferenced), 'unreferenced file')} (leftovers; `logstore vacuum` removes them)")
        if problems:
            render(problems, fmt, fields=PROBLEM_FIELDS)
    if problems:
        raise click.exceptions.Exit(1)


def _checked(report) -> dict:
    """What verify checked in one table: the JSON contract of `verify --format json`."""
    return {
        "table": report.table,
        "ok": report.ok,
        "version": report.version,
        "all_versions": report.full,
        "records_checked": report.records_checked,
        "files_checked": report.files_checked,
        "bytes_checked": report.bytes_checked,
        "snapshots_checked": report.snapshots_checked,
        "fingerprints_checked": report.versions_checked,
        "problems": len(report.problems),
        "unreferenced": list(report.unreferenced),
        "notes": list(report.notes),
    }


def _verify_line(report) -> str:
    state = "OK" if report.ok else count(len(report.problems), "problem")
    return (
        f"{report.table}: {state}; version {report.version}, {count(report.records_checked, 'record')}, "
        f"{count(report.files_checked, 'file')} ({human_bytes(report.bytes_checked)}), "
        f"{count(report.snapshots_checked, 'snapshot')}, {count(report.versions_checked, 'fingerprint')} checked"
    )


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

    Without TABLE, every table of the store. A dry run unless --apply is given: it lists what would go.

    \b
    Example:
      logstore vacuum                        # dry run: what would be removed
      logstore vacuum events --apply
      logstore vacuum --older-than 7d --apply
    """
    age = _duration(older_than)
    records, total, young = [], 0, 0
    for t in _tables(state, table):
        report = t.vacuum(dry_run=not apply_, older_than=age)
        total += report.bytes
        young += len(report.too_young)
        records += [{"table": t.name, "path": r.path, "bytes": r.bytes, "reason": r.reason} for r in report.removals]
    if fmt != "table":
        render(records, fmt, fields=["table", "path", "bytes", "reason"])
        return
    kept = f"; {count(young, 'file')} newer than {older_than} kept" if young else ""
    if not records:
        status(f"nothing to remove{kept}")
        return
    render(records, fmt, fields=["table", "path", "bytes", "reason"])
    verb = "removed" if apply_ else "would remove (dry run; --apply removes them)"
    status(f"{verb}: {count(len(records), 'file')}, {human_bytes(total)}{kept}")


@click.command()
@click.argument("table")
@output_options
@click.pass_obj
def repair(state, table, fmt):
    """Let TABLE take commits again after its newest commit record was damaged or lost.

    Moves the damaged records, and everything of the versions above the newest intact one (change files,
    snapshots, checkpoints, tags, compactions), to the table's _quarantine/ folder (nothing is deleted), records
    what it did in _repairs/, and sets the head to that version. Run it with no writer active.

    \b
    Example:
      logstore verify events                 # names the damaged or lost newest commit
      logstore repair events
    """
    report = state.table(table).repair()
    moves = [{"source": m.source, "target": m.target, "reason": m.reason} for m in report.moves]
    if fmt != "table":
        render(moves, fmt, fields=["source", "target", "reason"])
        return
    if not report.repaired:
        status(f"{table}: nothing to repair (version {report.head_after})")
        return
    if moves:
        render(moves, fmt, fields=["source", "target", "reason"])
    status(f"{table}: head {report.head_before} -> {report.head_after}; moved {count(len(moves), 'file')} to {logstore.repair.QUARANTINE_DIR}/")


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text or "")
    if not match:
        raise click.BadParameter(f"{text!r} is not an age such as 90s, 30m, 2h, 7d", param_hint="--older-than")
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])
