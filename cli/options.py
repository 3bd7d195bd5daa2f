"""Options several commands share: version selectors, commit details, input files."""

from __future__ import annotations

import os

import click

import logstore
from logstore import selectors

from .output import progress

INPUT_FORMATS = ("parquet", "csv", "tsv", "json", "ndjson")
OUTPUT_FILE_FORMATS = ("parquet", "csv", "json", "ndjson")


def selector_options(fn):
    """--version N | --at TS | --tag NAME: which version to read (at most one)."""
    for option in reversed(
        (
            click.option("--version", "version", type=click.IntRange(min=0), metavar="N", help="A version number."),
            click.option("--at", "at", metavar="TS", help="The latest version committed at or before TS (ISO-8601; UTC unless it has an offset; a date means midnight UTC)."),
            click.option("--tag", "tag", metavar="NAME", help="The version a tag names."),
        )
    ):
        fn = option(fn)
    return fn


def selector(version, at, tag, *, required: bool = False) -> dict:
    """The library keyword arguments for the selector options (logstore/selectors.py resolves them, as for the
    API and SQL); a usage error (exit 2) for more than one, or for none when `required`."""
    try:
        given = selectors.given(version, as_of=at, tag=tag)
    except logstore.SelectorError:
        raise click.UsageError("give at most one of --version, --at and --tag") from None
    if required and not given:
        raise click.UsageError("give one of --version, --at or --tag")
    return given


def output_file_options(fn):
    """-o/--output FILE, --file-format, --force: write the rows to a data file instead of printing them."""
    for option in reversed(
        (
            click.option("-o", "--output", metavar="FILE", help="Write the rows to FILE (Parquet, CSV, JSON or NDJSON by its extension; .gz/.zst compress text) instead of printing them; '-' is stdout."),
            click.option("--file-format", type=click.Choice(OUTPUT_FILE_FORMATS), help="The --output file's format [default: from its extension; csv for '-']."),
            click.option("--force", is_flag=True, help="Replace an existing --output file."),
        )
    ):
        fn = option(fn)
    return fn


def output_file(output: str, file_format: str | None) -> str:
    """The format to write --output in (refusing what cannot be written, e.g. .parquet.gz, before any query runs)."""
    if output == "-":
        return file_format or "csv"
    return logstore.files.output_format(output, file_format)


def key_values(ctx, param, values) -> dict:
    """Click callback: repeated KEY=VALUE options (--meta, --option) as a dict; BadParameter naming a malformed one."""
    parsed = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", ctx=ctx, param=param)
        parsed[key.strip()] = value
    return parsed


def _timestamp(ctx, param, value):
    """--timestamp is checked as soon as it is parsed, before any input is read: ISO-8601 and not in the future
    (TimestampError, exit 1); `check_timestamp` checks it against the table's latest commit."""
    if value is not None:
        logstore.timestamps.next_commit_time(None, value)
    return value


def write_options(fn):
    """-m/--message, --author, --timestamp, --meta: what every write records about its commit."""
    for option in reversed(
        (
            click.option("-m", "--message", help="The commit message."),
            click.option("--author", help="Who made the commit [default: $LOGSTORE_AUTHOR, else git config user.name, else the login name]."),
            click.option("--timestamp", metavar="TS", callback=_timestamp, help="Backdate the commit (ISO-8601); must be after the previous commit and not in the future."),
            click.option("--meta", multiple=True, metavar="KEY=VALUE", callback=key_values, help="Metadata to record with the commit (repeatable)."),
        )
    ):
        fn = option(fn)
    return fn


def commit_kwargs(message, author, timestamp, meta) -> dict:
    """The library keyword arguments of the write options (author None: the library's default author rule)."""
    return {"message": message, "author": author, "timestamp": timestamp, "metadata": dict(meta or {})}


def check_timestamp(table: logstore.Table, timestamp) -> None:
    """Refuse a --timestamp that is not after TABLE's latest commit before reading input or computing changes (the
    library checks it again when it commits, against the head it commits on)."""
    if timestamp is not None:
        logstore.timestamps.next_commit_time(table.commit_info().timestamp, timestamp)


def input_options(fn):
    """--file-format, --date-format, --timestamp-format: how to read the input files."""
    for option in reversed(
        (
            click.option(
                "--file-format",
                type=click.Choice(INPUT_FORMATS),
                help="Read the input files as this format instead of going by their extension ('-' is CSV by default).",
            ),
            click.option(
                "--date-format",
                metavar="FMT",
                help="How dates are written in CSV/TSV/JSON input, strptime-style, e.g. '%m/%d/%Y' [default: ISO 8601, YYYY-MM-DD; other dates are refused].",
            ),
            click.option(
                "--timestamp-format",
                metavar="FMT",
                help="How timestamps are written in CSV/TSV/JSON input, e.g. '%m/%d/%Y %H:%M:%S' [default: ISO 8601, e.g. 2024-10-01T10:00:00, 2024-10-01 10:00:00.5+02:00].",
            ),
        )
    ):
        fn = option(fn)
    return fn


INPUT_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)


def load_inputs(files, file_format, *, schema=None, date_format=None, timestamp_format=None):
    """Read the input files (or '-' for stdin) into one pyarrow Table, with a progress bar for big imports."""
    sizes = [os.path.getsize(f) if f != "-" else 0 for f in files]
    formats = {"schema": schema, "date_format": date_format, "timestamp_format": timestamp_format}
    with progress(len(files), "reading", size_bytes=sum(sizes)) as bar:
        return logstore.read_files(files, file_format, **formats, progress=lambda _source: bar.update(1))
