"""The click application behind the `logstore` command: the group, error handling and the command list.

Adding a command: write it in its own module (reuse `output.output_options`/`render` for listings and
`options.write_options`/`selector_options` for the usual options), then add one import and one
`cli.add_command(...)` line at the bottom of this file.
"""

from __future__ import annotations

import gc
import os
import sys

import click

import logstore

from .context import State
from .output import error
from .shutdown import exiting


class LogstoreGroup(click.Group):
    """A group that turns library errors into one `error: ...` line and exit status 1 (tracebacks with --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except logstore.LogstoreError as e:
            if _debug(ctx):
                raise
            error(_message(e))
            ctx.exit(1)
        except KeyboardInterrupt:
            error("interrupted")
            ctx.exit(130)
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(1)
        except Exception as e:  # noqa: BLE001 - a bug or an environment problem: one line unless --debug
            if _debug(ctx):
                raise
            error(f"{type(e).__name__}: {e} (run with --debug for the traceback)")
            ctx.exit(1)


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("LOGSTORE_DEBUG", "") not in ("", "0")


def _message(e: logstore.LogstoreError) -> str:
    text = str(e)
    if isinstance(e, logstore.StoreNotFoundError):
        text = text.replace("(create one with logstore.init)", "(create one with `logstore init`)")
    if isinstance(e, logstore.OutputExistsError):
        text = f"{e.path!r} already exists (use --force to replace it)"
    hint = getattr(e, "cli_hint", None)  # a command's way out in CLI terms, appended (tag: which untag to run)
    if hint:
        text = f"{text} {hint}"
    return " ".join(text.split("\n"))


def _silence_stdout() -> None:
    """After the reader of a pipe went away (`logstore log | head`), keep Python from complaining at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@click.group(cls=LogstoreGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(logstore.__version__, prog_name="logstore")
@click.option(
    "--store",
    "store_path",
    envvar="LOGSTORE_DIR",
    metavar="PATH",
    help="The store to use [env: LOGSTORE_DIR; default: the nearest .logstore/ here or in a parent directory].",
)
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
@click.pass_context
def cli(ctx: click.Context, store_path: str | None, debug: bool) -> None:
    """logstore: a time-travel dataset store. Versions operations, not copies.

    \b
    Quick start:
      logstore init
      logstore create events events.csv --key id -m "first import"
      logstore update events --set "kind='view'" --where "id = 2"
      logstore log events
      logstore checkout events --at 2022-01-01 -o events-2021.parquet
    """
    ctx.obj = State(store_path, debug)


def main() -> None:
    # numpy's OpenBLAS starts a thread per core when numpy is imported (~40 ms of CPU at each start); the CLI does
    # no linear algebra. Set before anything imports numpy; an explicit setting in the environment wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # the youngest generation collected every 10,000 new objects instead of 700: while a command imports its ~400
    # modules, 26 collections instead of 95 (`diff`: 3-10 ms less); cyclic garbage waits a little longer
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    with exiting():  # then leave at once, without Python's teardown (shutdown.py)
        try:
            cli(prog_name="logstore")
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(1)


# --- commands: one import and one add_command line each ------------------------------------------------------

from .diff_command import changes, diff  # noqa: E402
from .history_commands import log, tag, tags, untag  # noqa: E402
from .read_commands import checkout, compact, info, show, snapshot  # noqa: E402
from .store_commands import init, tables  # noqa: E402
from .write_commands import append, create, delete, overwrite, restore, update, upsert  # noqa: E402

cli.add_command(init)
cli.add_command(tables)
cli.add_command(create)
cli.add_command(append)
cli.add_command(upsert)
cli.add_command(overwrite)
cli.add_command(update)
cli.add_command(delete)
cli.add_command(restore)
cli.add_command(log)
cli.add_command(show)
cli.add_command(checkout)
cli.add_command(info)
cli.add_command(tag)
cli.add_command(tags)
cli.add_command(untag)
cli.add_command(snapshot)
cli.add_command(compact)
cli.add_command(diff)
cli.add_command(changes)
from .verify_command import repair, vacuum, verify  # noqa: E402

cli.add_command(verify)
cli.add_command(vacuum)
cli.add_command(repair)
from .merge_command import merge  # noqa: E402

cli.add_command(merge)
from .sql_command import sql  # noqa: E402

cli.add_command(sql)
from .remote_commands import clone, pull, push, remote  # noqa: E402

cli.add_command(remote)
cli.add_command(push)
cli.add_command(pull)
cli.add_command(clone)
from .uri_command import uri  # noqa: E402

cli.add_command(uri)
from .file_commands import add, cat  # noqa: E402

cli.add_command(add)
cli.add_command(cat)
from .retention_commands import expire, purge  # noqa: E402

cli.add_command(expire)
cli.add_command(purge)
from .alter_command import alter  # noqa: E402

cli.add_command(alter)
