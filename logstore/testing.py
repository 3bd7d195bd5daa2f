"""The internals tests and benchmarks may look at, in one place (not public API; no stability promise).

A test that needs to see inside a table (its log, its files, the plan of a version, the writer's head) goes through
these functions instead of reaching into private attributes, so that a refactor of the internals changes this
module rather than every test.

    files(table)                 the table's TableFiles: name, storage, prefix (its directory), log, tags and the
                                 store's connection (planner.py)
    log(table), storage(table), prefix(table)    the parts of files(table) tests use most
    plan(table, version, exclude=frozenset())     the materialization Plan of a version (planner.plan)
    head(table)                  what a write operation sees: the head's record, plan and cursor (operations.Head)
    store(table)                 the store the table was opened from
    connection(store)            the store's DuckDB connection of the calling thread
    head_cache(store)            the writers' decoded heads of the calling thread (headcache.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from . import planner

if TYPE_CHECKING:
    from .headcache import HeadCache
    from .log import Log
    from .materialize import Plan
    from .object_storage import ObjectStorage
    from .operations import Head
    from .planner import TableFiles
    from .storage import LocalStorage
    from .store import Store
    from .table import Table


def files(table: Table) -> TableFiles:
    return table._files


def log(table: Table) -> Log:
    return table._files.log


def storage(table: Table) -> LocalStorage | ObjectStorage:
    return table._files.storage


def prefix(table: Table) -> str:
    return table._files.prefix


def plan(table: Table, version: int, *, exclude: frozenset[int] = frozenset()) -> Plan:
    return planner.plan(table._files, version, exclude=exclude)


def head(table: Table) -> Head:
    return table._head()


def store(table: Table) -> Store:
    return table._store


def connection(store: Store) -> duckdb.DuckDBPyConnection:
    return store._connection()


def head_cache(store: Store) -> HeadCache:
    return store._head_cache()
