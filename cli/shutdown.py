"""Leaving the `logstore` process as soon as a command is done (issue 13: a fresh process's time against DuckDB's).

Python's own exit tears every module down (after a read, ~400 of them: pyarrow, numpy, DuckDB, ...): 30-80 ms after
the output is written, which a caller waiting for the command pays. A command that ended (returned, or exited with a
status through click, errors included) leaves with os._exit instead, after doing itself what that exit would have
done that matters:

1. atexit handlers run (logging's flush, tempfile's and weakref finalizers, multiprocessing's, a sitecustomize's);
2. every DuckDB connection logstore made that spilled to disk is closed (logstore.connection.close_all), so DuckDB
   removes its temporary directory as it does when a connection closes at teardown. One that did not is left to
   the process's end: closing it would only free its memory (~10 ms for the store's connection after a big read),
   which is also why the command's store is kept (keep) instead of being freed, and its connection closed, when the
   command returns;
3. stdout and stderr are flushed. A reader of stdout gone by then (`logstore log | head`) makes the status 1 without
   a message, as a broken pipe met during the command does; another failure (a full disk) is said on stderr, status
   1 (Python's exit printed "Exception ignored ... BrokenPipeError" / "OSError" and returned 120 for either).

Python's exit is kept when another thread is still alive (it would wait for a non-daemon one; no command leaves one
behind) and when the command raised (with --debug: Python prints the traceback and exits with status 1). Only the
CLI's entry point (main.main) leaves this way: the library and `logstore_cli.main.cli` called from Python are not
concerned.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

_leaving = threading.Event()  # set inside exiting(): the process leaves through leave()
_kept: list[object] = []


def keep(obj: object) -> None:
    """Keep `obj` (the command's store) alive until the process leaves through leave(); a no-op outside exiting()
    (`cli` called from Python: tests, CliRunner)."""
    if _leaving.is_set():
        _kept.append(obj)


@contextlib.contextmanager
def exiting() -> Iterator[None]:
    """Run the block (the command), then leave the process with its exit status (leave)."""
    _leaving.set()
    try:
        yield
    except SystemExit as e:
        code = e.code
    else:
        code = 0
    leave(code)


def leave(code: object) -> NoReturn:
    """Leave the process with the status a SystemExit(code) would give, as the module docstring says."""
    status = _status(code)
    if any(t is not threading.main_thread() and t.is_alive() for t in threading.enumerate()):
        sys.exit(status)  # Python's exit: it joins non-daemon threads; connections are not closed under them
    atexit._run_exitfuncs()  # noqa: SLF001 - what Python's exit runs first; they are run once (the list is cleared)
    if "logstore.connection" in sys.modules:  # else no connection was made (and no DuckDB imported for nothing)
        with contextlib.suppress(Exception):
            sys.modules["logstore.connection"].close_all(only_spilled=True)
    if not _flushed(sys.stdout) and status == 0:
        status = 1
    _flushed(sys.stderr)
    os._exit(status)


def _status(code: object) -> int:
    """The exit status of SystemExit(code): 0 for None, the number for an int, else 1 after printing it (as Python)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def _flushed(stream) -> bool:
    """Flush a standard stream; False if that failed: its reader went away (the stream then points at /dev/null,
    quietly) or writing failed otherwise (a full disk: said on stderr, as Python's exit would say it). A closed or
    missing stream counts as flushed (Python's exit skips it too)."""
    if stream is None:
        return True
    try:
        stream.flush()
    except BrokenPipeError:
        _discard(stream)
        return False
    except ValueError:  # closed
        return True
    except OSError as e:
        if stream is not sys.stderr:
            with contextlib.suppress(Exception):
                print(f"error: writing the output failed: {e}", file=sys.stderr)
        return False
    return True


def _discard(stream) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
