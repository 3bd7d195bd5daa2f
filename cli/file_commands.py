"""File tables: add (a folder as the next version), cat (one file of a version); `checkout` of a file table
(read_commands.py hands it to checkout_folder)."""

from __future__ import annotations

import shutil

import click

import logstore

from .options import _timestamp, selector, selector_options
from .output import count, output_options, status, stdout_binary
from .write_commands import report


@click.command()
@click.argument("table")
@click.argument("path", type=click.Path(file_okay=False, path_type=str))
@click.option("-m", "--message", help="The commit message.")
@click.option("--author", help="Who made the commit [default: $LOGSTORE_AUTHOR, else git config user.name, else the login name].")
@click.option("--timestamp", metavar="TS", callback=_timestamp, help="Backdate the commit (ISO-8601); must be after the previous commit and not in the future.")
@click.option("--no-delete", is_flag=True, help="Keep files that are no longer in PATH (only add and update).")
@click.option("--check", is_flag=True, help="Read and hash every file, not only those whose size or mtime changed.")
@output_options
@click.pass_obj
def add(state, table, path, message, author, timestamp, no_delete, check, fmt):
    """Commit the folder PATH as the next version of the file table TABLE (created on first use).

    One row per file: path (relative to PATH, '/'-separated), size, sha256, executable, mtime. New files are
    inserted, changed ones updated, missing ones deleted (unless --no-delete). Files whose size and mtime match the
    latest version are not read again, as git's index does (--check reads all). Contents are stored once in the
    store's blob area, compressed with zstd where that saves 10%. Nothing changed: no new version. Symbolic links,
    unreadable files and names that are not UTF-8 are refused before anything is written. Empty directories are not
    recorded.

    \b
    Example:
      logstore add images ./images -m "first batch"
      logstore add images ./images --no-delete
      logstore checkout images --version 0 -o images-v0
    """
    store = state.store
    before = store.table(table).version if table in store.tables() else None
    commit = store.add_files(table, path, message=message, author=author, timestamp=timestamp, delete_missing=not no_delete, check=check)
    if before is not None and commit.version == before:
        status(f"{table}: nothing changed in {path}; nothing committed (still version {before})", err=fmt != "table")
        return
    report(table, commit, fmt)


@click.command()
@click.argument("table")
@click.argument("path")
@selector_options
@click.pass_obj
def cat(state, table, path, version, at, tag):
    """Write the file PATH of one version of the file table TABLE (the latest by default) to stdout.

    The bytes are checked against the row's SHA-256 as they stream; a mismatch ends the command with an error.

    \b
    Example:
      logstore cat images labels.csv --at 2022-01-01 | head
    """
    with state.table(table).open(path, **selector(version, at, tag)) as f:
        shutil.copyfileobj(f, stdout_binary(), 1024 * 1024)


def checkout_folder(state, table: logstore.Table, chosen: dict, output: str | None, force: bool) -> None:
    """`logstore checkout` of a file table: the version as a folder (-o DIR, default ./TABLE)."""
    target = output or table.name
    if target == "-":
        raise click.UsageError(f"{table.name} is a file table: give a directory with -o (use `logstore cat` for one file)")
    version = table.checkout(target, overwrite=force, **chosen)
    files = len(table.read(version=version, columns=["path"]))
    status(f"{table.name}: wrote version {version} ({count(files, 'file')}) to {target}")

