"""`logstore remote add|list|remove`, `push`, `pull` and `clone`: stores exchanging versions (logstore/remote.py,
logstore/sync.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

import logstore

from .context import STORE_DIR
from .options import key_values
from .output import count, human_bytes, output_options, progress, render, render_one, status

if TYPE_CHECKING:
    from logstore.sync import SyncProgress, SyncReport

REPORT_FIELDS = ["table", "head_before", "head", "versions", "files", "bytes", "records", "created"]


def option_flag(help_text: str):
    return click.option("--option", "options", multiple=True, metavar="KEY=VALUE", callback=key_values, help=help_text)


CALL_OPTIONS = option_flag(
    "A storage option for the remote (obstore's keys, e.g. region=eu-west-1, or a credential); used for this "
    "command only, never stored (repeatable)."
)


def tables_flag(fn):
    return click.option("--table", "tables", multiple=True, metavar="TABLE", help="Only this table (repeatable) [default: every table].")(fn)


@click.group()
def remote():
    """Configure the remotes push and pull exchange versions with.

    A remote is another store, named: a directory or an s3://, gs://, az:// URL. Its settings are kept in the
    store (remotes.json); credentials never are: options whose name contains secret, token, password, key or
    credential are refused by `remote add`; give them through the environment (AWS_*, GOOGLE_*, AZURE_*) or
    with --option on push, pull or clone.

    \b
    Examples:
      logstore remote add origin s3://my-bucket/datasets --option region=eu-west-1
      logstore remote add backup /mnt/backup/store
      logstore remote list
      logstore remote remove backup
    """


@remote.command("add")
@click.argument("name")
@click.argument("url")
@option_flag("A storage option to keep with the remote, e.g. region=eu-west-1 or allow_http=true (repeatable; credentials are refused).")
@click.pass_obj
def remote_add(state, name, url, options):
    """Add remote NAME at URL (a store path or URL; nothing is checked or created there yet).

    \b
    Example:
      logstore remote add origin s3://my-bucket/datasets --option region=eu-west-1
    """
    state.store.add_remote(name, url, storage_options=options or None)
    status(f"added remote {name} ({url})")


@remote.command("list")
@output_options
@click.pass_obj
def remote_list(state, fmt):
    """List the remotes: name, URL and stored options.

    \b
    Example:
      logstore remote list --format json
    """
    records = [{"name": r.name, "url": r.url, "options": r.options} for r in state.store.remotes().values()]
    render(
        records,
        fmt,
        fields=["name", "url", "options"],
        columns=[("remote", lambda r: r["name"]), ("url", lambda r: r["url"]), ("options", lambda r: " ".join(f"{k}={v}" for k, v in r["options"].items()))],
        empty="(no remotes; add one with `logstore remote add NAME URL`)",
    )


@remote.command("remove")
@click.argument("name")
@click.pass_obj
def remote_remove(state, name):
    """Forget remote NAME (nothing is deleted there).

    \b
    Example:
      logstore remote remove backup
    """
    removed = state.store.remove_remote(name)
    status(f"removed remote {removed.name} ({removed.url})")


@click.command()
@click.argument("remote_name", metavar="[REMOTE]", required=False)
@tables_flag
@CALL_OPTIONS
@output_options
@click.pass_obj
def push(state, remote_name, tables, options, fmt):
    """Send REMOTE the versions it lacks (files first, then commit records, then tags); fast-forward only.

    REMOTE defaults to origin, or to the only remote. Only what the remote lacks is sent. If both sides committed
    different versions under the same number (or a tag names different versions), nothing is sent and the command
    fails naming the table and version. An interrupted push is completed by running it again.

    \b
    Example:
      logstore push
      logstore push backup --table events --format json
    """
    with _Progress("pushing") as bar:
        report = state.store.push(remote_name, tables=list(tables) or None, storage_options=options or None, progress=bar.update)
    _show(report, fmt)


@click.command()
@click.argument("remote_name", metavar="[REMOTE]", required=False)
@tables_flag
@CALL_OPTIONS
@output_options
@click.pass_obj
def pull(state, remote_name, tables, options, fmt):
    """Fetch from REMOTE the versions this store lacks; fast-forward only (the converse of push).

    \b
    Example:
      logstore pull
      logstore pull origin --table events
    """
    with _Progress("pulling") as bar:
        report = state.store.pull(remote_name, tables=list(tables) or None, storage_options=options or None, progress=bar.update)
    _show(report, fmt)


@click.command()
@click.argument("url")
@click.argument("path", type=click.Path(file_okay=False))
@tables_flag
@click.option("--lazy", is_flag=True, help="Copy the records only: data files are fetched from origin the first time a read needs them.")
@CALL_OPTIONS
@output_options
def clone(url, path, tables, lazy, options, fmt):
    """Copy the store at URL into PATH/.logstore, with URL as its remote origin.

    Every table (or only the --table ones) with all its versions and tags; with --lazy only their records, the
    data files coming from origin when a read first needs them. Stored options of origin are the --option ones
    minus credentials. If it is interrupted, run `logstore pull` in PATH to complete it. A PATH
    that is a URL (s3://...) is the new store's location itself.

    \b
    Example:
      logstore clone s3://my-bucket/datasets work
      cd work && logstore log events
    """
    target = path if "://" in path else str(Path(path) / STORE_DIR)
    with _Progress("cloning") as bar:
        _store, report = logstore.sync.clone(url, target, tables=list(tables) or None, storage_options=options or None, progress=bar.update, lazy=lazy)
    _show(report, fmt)


def _show(report: SyncReport, fmt: str) -> None:
    rows = logstore.sync.describe(report)
    if fmt == "json":
        render_one({"direction": report.direction, "source": report.source, "destination": report.destination, "tables": rows}, fmt)
        return
    if fmt == "csv":
        render(rows, fmt, fields=REPORT_FIELDS)
        return
    verb = {"push": "pushed to", "pull": "pulled from", "clone": "cloned from"}[report.direction]
    where = report.destination if report.direction == "push" else report.source
    for t in report.tables:
        if t.versions == 0 and t.records == 0:
            status(f"{t.table}: up to date (version {t.head})")
            continue
        before = "new table" if t.head_before is None else f"version {t.head_before}"
        status(f"{t.table}: {before} -> {t.head}, {count(t.versions, 'version')}, {count(t.files, 'file')}, {human_bytes(t.bytes)}")
    if not report.tables:
        status("(no tables)")
    status(f"{verb} {where}: {count(report.versions, 'version')}, {count(report.files, 'data file')}, {human_bytes(report.bytes)}")


class _Progress:
    """A progress bar (files and bytes) drawn once the transfer knows its totals, on a terminal only."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None
        self.bytes = 0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False

    def update(self, p: SyncProgress) -> None:
        if self.bar is None:
            self.bar = progress(p.bytes_total, self.label, size_bytes=p.bytes_total).__enter__()
        if hasattr(self.bar, "label"):
            self.bar.label = f"{self.label} {p.files_done}/{p.files_total} files"
        self.bar.update(p.bytes_done - self.bytes)
        self.bytes = p.bytes_done

