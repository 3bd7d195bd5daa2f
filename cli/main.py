"""The click application behind the `logstore` command."""

from __future__ import annotations

import click

import logstore


@click.group()
@click.version_option(logstore.__version__, prog_name="logstore")
def cli() -> None:
    """logstore: a time-travel dataset store."""


def main() -> None:
    cli()
