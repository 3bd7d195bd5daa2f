"""Reading versions: show (a preview), checkout (a version to a file), info (a summary)."""

from __future__ import annotations

import os

import click

import logstore

from .options import selector, selector_options
from .output import (
    count,
    echo,
    output_options,
    progress,
    render_one,
    render_relation,
    status,
    stdout_binary,
    write_rows,
)
from .records import info_flat, info_human, info_record

CHECKOUT_FORMATS = ("parquet", "csv", "json", "ndjson")
ROW_BYTES_ESTIMATE = 100  # how big a checkout is, for deciding on a progress bar before writing it


@click.command()
@click.argument("table")
@selector_options
@click.option("-n", "--limit", type=click.IntRange(min=0), default=20, show_default=True, metavar="N", help="Show at most N rows.")
@click.option("--columns", metavar="A,B", help="Only these columns, comma-separated.")
@click.option("--where", metavar="PRED", help="Only rows matching this SQL predicate.")
@output_options
@click.pass_obj
def show(state, table, version, at, tag, limit, columns, where, fmt):
    """Preview rows of one version of TABLE (default: the latest).

    Rows come in the table's stable row order. CSV and JSON are streamed, so a big --limit costs no memory.

    \b
    Example:
      logstore show events --limit 5
      logstore show events --at 2021-06-30 --columns id,kind --where "kind = 'click'"
      logstore show events --tag v1.0 --format json
    """
    chosen = selector(version, at, tag)
    picked = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    relation = state.table(table).to_duckdb(**chosen, columns=picked, where=where)
    render_relation(relation, fmt, store=state.store, limit=limit, more=None)


@click.command()
@click.argument("table")
@selector_options
@click.option("-o", "--output", metavar="PATH", help="Where to write ('-' for stdout) [default: ./TABLE.<format>].")
@click.option("--file-format", type=click.Choice(CHECKOUT_FORMATS), help="The file's format [default: from the --output extension; parquet without one; csv on stdout ('-o -')]. A .gz or .zst suffix compresses CSV and JSON.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.pass_obj
def checkout(state, table, version, at, tag, output, file_format, force):
    """Write one version of TABLE (the latest by default) to a file; a file table to a directory.

    A file table (`logstore add`) is written as the folder it was (-o DIR, default ./TABLE), byte for byte with
    executable bits and mtimes; a non-empty DIR is refused unless --force, which makes DIR exactly that version.

    Two checkouts of the same version give byte-identical files. An existing file is kept unless --force; the
    file is written next to it under a temporary name and appears complete or not at all. Rows are streamed by
    DuckDB's writers (any size, bounded memory); CSV and JSON follow the `--format csv|json` conventions (times
    ISO 8601 with microseconds, UTC ones with a Z).
    The format comes from --file-format, else the output name's extension; without either it is Parquet for a
    file (./TABLE.parquet) and CSV on stdout ('-o -'). An output name ending in .gz or .zst is compressed with gzip
    or zstd (CSV, NDJSON, JSON); Parquet compresses itself, so .parquet.gz is refused, as are other compressions
    (.bz2, .xz, ...), before anything is written.

    \b
    Example:
      logstore checkout events --at 2022-01-01                 # -> ./events.parquet
      logstore checkout events --tag v1.0 -o v1.csv
      logstore checkout events -o events.ndjson.zst
      logstore checkout events -o - | head                     # CSV on stdout
      logstore checkout events --version 3 --file-format ndjson -o - | head
    """
    from logstore import filetable

    chosen = selector(version, at, tag)
    if filetable.is_file_table(state.table(table)):  # a folder of files: written as a directory
        from . import file_commands

        return file_commands.checkout_folder(state, state.table(table), chosen, output, force)
    if output and output != "-" and (file_format or os.path.splitext(output)[1]):
        file_format = logstore.files.output_format(output, file_format)  # refuses what it cannot write, before reading
    elif file_format is None:
        file_format = "csv" if output == "-" else "parquet"
    target = output or f"{table}.{file_format}"
    t = state.table(table)
    commit = t.commit_info(**chosen)
    label = f"writing {table} version {commit.version}"
    with progress(commit.num_rows, label, size_bytes=commit.num_rows * ROW_BYTES_ESTIMATE) as bar:
        if len(t.schema(commit.version)) == 0:  # created without columns: DuckDB has no relation of no columns
            size = logstore.write_file(t.read(version=commit.version), stdout_binary() if target == "-" else target, file_format, force=force)
        else:
            size = write_rows(t.to_duckdb(version=commit.version), target, file_format, force=force, store=state.store)
        bar.update(commit.num_rows)
    where = "stdout" if target == "-" else target
    rows = count(commit.num_rows, "row")
    status(f"{table}: wrote version {commit.version} ({rows}, {count(size, 'byte')}, {file_format}) to {where}", err=target == "-")


@click.command()
@click.argument("table")
@output_options
@click.pass_obj
def info(state, table, fmt):
    """A summary of TABLE: schema, key, version, rows, size, snapshots, tags.

    Also the first and last commit time.

    \b
    Example:
      logstore info events
      logstore info events --format json
    """
    record = info_record(state.table(table).info())
    if fmt == "json":
        render_one(record, fmt)
    elif fmt == "csv":
        render_one(info_flat(record), fmt)
    else:
        render_one(info_human(record), fmt)
        echo("schema")
        width = max((len(c["name"]) for c in record["columns"]), default=0)
        for column in record["columns"]:
            echo(f"  {column['name'].ljust(width)}  {column['type']}")


@click.command()
@click.argument("table")
@click.pass_obj
def snapshot(state, table):
    """Snapshot the latest version of TABLE now.

    A snapshot is a full copy, so reads of that version replay no log.
    Snapshots are derived data and are also written automatically; this forces one.

    \b
    Example:
      logstore snapshot events
    """
    version = state.table(table).snapshot()
    status(f"{table}: snapshot of version {version}")


@click.command()
@click.argument("table")
@click.pass_obj
def compact(state, table):
    """Merge the small change files of TABLE into few larger ones, keeping every version readable.

    Each row keeps the version that changed it, so time travel to any version gives exactly the same rows.
    Adds no version; readers never see a half-compacted state.

    \b
    Example:
      logstore compact events
    """
    records = state.table(table).compact()
    if not records:
        status(f"{table}: nothing to compact")
    for r in records:
        status(f"{table}: compacted versions {r.first}-{r.last} into {count(len(r.files), 'file')}, replacing {count(len(r.replaces), 'file')}")
