"""The one place logstore makes DuckDB connections.

Every connection is in memory, draws no progress bar, and never installs or loads a DuckDB extension by itself
(autoinstall_known_extensions and autoload_known_extensions are off): a predicate or query that names a function of
an extension that is not loaded fails with DuckDB's "... exists in the X extension" error instead of downloading and
running code. What logstore needs (parquet, json, icu) is built into DuckDB's Python package.

A connection that runs SQL other people write (the store's own connections behind reads, writes and store.sql, and
store.connect()) is confined: external access is off, only the given directories and files can be read or written
(DuckDB adds its own temporary directory), and the configuration is locked, so no statement can SET any of it back.

Closing: a connection closes when it is garbage, or at the latest when Python tears its modules down at exit; DuckDB
then removes its temporary (spill) directory. A process leaving without that teardown (the CLI, os._exit after
its output is written) first calls close_all(), which closes every connection made here that is still open (their
cursors with them), or only those that spilled to disk.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass

import duckdb

NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

_made: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()  # every connection new() made, while alive
_made_lock = threading.Lock()


@dataclass(frozen=True)
class Confined:
    """File access limited to these directories (and everything below them) and these files."""

    directories: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


def new(
    *, files: Confined | None = None, cache_parquet_metadata: bool = False, settings: dict[str, object] | None = None
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection that never installs or loads an extension on its own.

    files: None lets DuckDB open any file the process can (logstore reading an input file the user named);
    Confined(...) allows only those directories and files, with the configuration locked.
    cache_parquet_metadata: keep Parquet footers in memory (the store's data files never change under a name).
    settings: other DuckDB settings (e.g. threads), made before the configuration is locked.
    """
    con = duckdb.connect(config=NO_EXTENSIONS)
    with _made_lock:
        _made.add(con)
    # DuckDB draws a progress bar for queries over 2 seconds on stdout, even into a file: it would end up inside the
    # CSV or JSON the CLI prints there (`logstore changes ... -f csv > out.csv`)
    con.execute("SET enable_progress_bar = false")
    if cache_parquet_metadata:
        _cache_parquet_metadata(con)
    for name, value in (settings or {}).items():
        con.execute(f"SET {name} = ?", [value])
    if files is not None:
        _confine(con, files)
    return con


def close_all(*, only_spilled: bool = False) -> None:
    """Close every connection made by new() that is still open (and so the cursors made from them), as the process's
    teardown would: DuckDB removes its temporary directory when the last connection to a database closes. For a
    process about to leave without that teardown; any connection of this process, whoever uses it, is closed.

    only_spilled: close only those whose database may have temporary files (its temporary directory exists: DuckDB
    creates it when it first spills); closing a database that never spilled only frees its memory (~10 ms for a
    store's connection after a 1M-row read), which the process's end does too."""
    with _made_lock:
        open_ = list(_made)
        _made.clear()
    for con in open_:
        if not only_spilled or _may_have_spilled(con):
            con.close()  # a no-op for one closed already


def _may_have_spilled(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        rows = con.sql("SELECT current_setting('temp_directory')").fetchall()
    except duckdb.ConnectionException:  # closed already
        return False
    except duckdb.Error:  # cannot tell (e.g. an unfinished result of execute() on it)
        return True
    directory = rows[0][0] if rows else None
    return bool(directory) and os.path.exists(str(directory))


def _cache_parquet_metadata(con: duckdb.DuckDBPyConnection) -> None:
    # a read of a version opens every change file after the snapshot, and re-parsing ~300 footers per query adds up
    try:
        con.execute("SET GLOBAL parquet_metadata_cache = true")
    except duckdb.Error:  # only an optimization: seen to fail once in a freshly spawned child; reads still work
        pass


def _confine(con: duckdb.DuckDBPyConnection, files: Confined) -> None:
    # DuckDB refuses allowed_directories/allowed_paths in duckdb.connect(config=...) ("before the database is
    # started") and refuses to change them once external access is off: hence SET, in this order
    if files.directories:
        con.execute("SET allowed_directories = ?", [[os.path.abspath(d) for d in files.directories]])
    if files.paths:
        con.execute("SET allowed_paths = ?", [[os.path.abspath(p) for p in files.paths]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
