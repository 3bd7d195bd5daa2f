"""A store: a directory holding tables. Create it with init(), open it with open()."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, TypeAlias

import duckdb
import pyarrow as pa

from . import connection, ingest, layout, marker, names, snapshot
from .commit import CommitInfo, _publish_once
from .errors import (
    InvalidInputError,
    NotAStoreError,
    SchemaMismatchError,
    StoreExistsError,
    StoreNotFoundError,
    TableExistsError,
    TableNotFoundError,
)
from .headcache import HeadCache
from .layout import MARKER, TABLES_DIR
from .log import READABLE_FORMATS, Commit, CommitRecord, new_table_id
from .materialize import Plan
from .operations import Head
from .schema import arrow_schema, check_names, columns_from_any
from .storage import LocalStorage, open_storage
from .table import Table

if TYPE_CHECKING:
    from .inputs import DataLike
    from .remote import Remote
    from .schema import Column
    from .selectors import Moment
    from .sync import ProgressCallback, SyncReport

Location: TypeAlias = "str | PathLike[str]"
"""Where a store is: a directory path, or an s3://, gs://, az:// or memory:// URL."""

class Store:
    def __init__(self, path: Location, storage: LocalStorage, storage_options: dict[str, Any] | None = None) -> None:
        self.path = str(path)
        self._storage = storage
        self._storage_options = dict(storage_options or {})  # what a Fragment reopens the store with (fragments.py)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<logstore.Store {self.path!r}>"

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """This thread's DuckDB connection (in memory; it only reads the store's Parquet files)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = _new_connection(self._storage.local_root)
        return con

    def _head_cache(self) -> HeadCache:
        """This thread's writer state: decoded heads, in a DuckDB connection of their own that user SQL never sees."""
        cache = getattr(self._local, "head_cache", None)
        if cache is None:
            cache = self._local.head_cache = HeadCache(_new_connection(self._storage.local_root))
        return cache

    def tables(self) -> list[str]:
        return [n for n in self._storage.list_dirs(TABLES_DIR) if self._storage.exists(layout.join(layout.table_dir(n), layout.log_record(0)))]

    def table(self, name: str) -> Table:
        names.check("table", name)
        table = Table(self, name)
        if not table._files.log.exists():
            raise TableNotFoundError(name, self.tables())
        return table

    def sql(self, query: str, params: object = None, *, allow_files: bool = False) -> duckdb.DuckDBPyRelation:
        """A read-only DuckDB query over the tables, with time travel (`t AS OF VERSION 3`, ...); see logstore/sql.py.

        The query sees the store's tables only; allow_files=True lets it read other files (read_csv, glob, ...)."""
        from . import sql

        return sql.sql(self, query, params, allow_files=allow_files)

    def connect(self, *, allow_files: bool = False) -> duckdb.DuckDBPyConnection:
        """A new DuckDB connection with a view per table at its latest version (no time-travel syntax).

        It reads only the files of those views, its configuration locked; allow_files=True gives a plain one."""
        from . import sql

        return sql.connect(self, allow_files=allow_files)

    def create_table(
        self,
        name: str,
        data: DataLike | None = None,
        *,
        schema: pa.Schema | dict[str, str] | str | None = None,
        key: str | Sequence[str] | None = None,
        properties: dict[str, Any] | None = None,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Table:
        """Create a table (version 0), empty or holding `data`; `schema` fixes the columns, `key` the key columns."""
        names.check_new_table(name, self.tables())
        table = Table(self, name)
        if table._files.log.exists():
            raise TableExistsError(name)
        batch = ingest.loaded(data, self._storage) if data is not None else None  # a big stream is staged (ingest.py)
        columns = columns_from_any(schema) if schema is not None else ()
        check_names(columns)
        if batch is not None and not columns:
            columns = columns_from_any(batch.schema)
            check_names(columns)
        key_columns = _key(key, columns)
        props = {**snapshot.DEFAULT_PROPERTIES, **snapshot.check_properties(properties or {})}
        info = CommitInfo(message=message, author=author, timestamp=timestamp, metadata=metadata or {})
        base = CommitRecord(
            commit=Commit(version=-1, timestamp=None, operation="NONE"),  # type: ignore[arg-type]  # before version 0
            columns=columns,
            key=key_columns,
            files=(),
            next_row_id=0,
            change_rows_total=0,
            properties=props,
            table_id=new_table_id(),
        )
        head = Head(base, Plan(-1, columns, None, -1, (), ()), self._connection().cursor(), name)
        empty = arrow_schema(columns).empty_table()
        staged: list[str] = []
        try:
            changes = ingest.append_changes(head, batch if batch is not None else empty, merge=False, storage=self._storage, staged_files=staged)
            if _publish_once(table._files, "CREATE", head, changes, info) is None:
                raise TableExistsError(name)
        finally:
            ingest.cleanup(self._storage, batch, staged)
        return table

    def add_files(
        self,
        table: str,
        path: str | PathLike[str],
        *,
        message: str | None = None,
        author: str | None = None,
        timestamp: Moment | None = None,
        delete_missing: bool = True,
        check: bool = False,
    ) -> Commit:
        """Commit the folder at `path` as the next version of file table `table` (created on first use): new files
        inserted, changed ones updated, missing ones deleted (unless delete_missing=False). Files whose size and
        mtime match the latest version are not read again (check=True reads all). Nothing changed: no new version,
        the latest commit is returned. Contents go to the store's blob area once (logstore/filetable.py)."""
        from . import filetable

        return filetable.add_files(self, table, path, message=message, author=author, timestamp=timestamp, delete_missing=delete_missing, check=check)

    # --- remotes: push, pull (remote.py, sync.py) ----------------------------------------------------------------

    def add_remote(self, name: str, url: Location, *, storage_options: dict[str, Any] | None = None) -> Remote:
        """Configure remote `name` at `url` (a path or URL, as for open); storage options naming a credential
        (secret, token, password, key ...) are refused: credentials come from the environment or each call's
        storage_options, never from the store."""
        from .remote import Remotes

        return Remotes(self._storage).add(name, url, storage_options)

    def remotes(self) -> dict[str, Remote]:
        """The configured remotes by name."""
        from .remote import Remotes

        return Remotes(self._storage).all()

    def remove_remote(self, name: str) -> Remote:
        """Forget remote `name` (RemoteNotFoundError if there is none); returns what it was. Nothing is deleted there."""
        from .remote import Remotes

        return Remotes(self._storage).remove(name)

    def push(
        self,
        remote: str | None = None,
        *,
        tables: Sequence[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> SyncReport:
        """Send the remote the versions (files, records, tags) it lacks, fast-forward only (DivergedError, changing
        nothing, if both sides committed different versions). `remote` defaults to 'origin', or the only remote;
        `storage_options` (credentials) add to the remote's stored options."""
        from . import sync

        return sync.push(self, remote, tables, storage_options, progress)

    def pull(
        self,
        remote: str | None = None,
        *,
        tables: Sequence[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> SyncReport:
        """Fetch from the remote the versions this store lacks; the converse of push()."""
        from . import sync

        return sync.pull(self, remote, tables, storage_options, progress)


def _new_connection(root: str | PathLike[str]) -> duckdb.DuckDBPyConnection:
    """A connection of the store's own: it reads and writes (snapshots, via _staging/) files under `root` only."""
    return connection.new(files=connection.Confined(directories=(str(root),)), cache_parquet_metadata=True)


def _key(key: str | Sequence[str] | None, columns: Sequence[Column]) -> tuple[str, ...]:
    if key is None:
        return ()
    listed = (key,) if isinstance(key, str) else tuple(key)
    if not listed or not all(isinstance(k, str) for k in listed):
        raise InvalidInputError(key, f"key must be a column name or a list of column names, not {key!r}")
    known = [c.name for c in columns]
    missing = [k for k in listed if k not in known]
    if missing:
        raise SchemaMismatchError([f"key column {k!r} is not in the schema ({', '.join(known) or 'no columns'})" for k in missing])
    return listed


def init(location: Location, *, storage_options: dict[str, Any] | None = None) -> Store:
    """Create a store at `location`: a directory (created if needed), or an s3://, gs://, az:// or memory:// URL
    (storage.open_storage); StoreExistsError if one is there."""
    storage = open_storage(location, storage_options=storage_options)
    if isinstance(storage, LocalStorage):
        os.makedirs(storage.root, exist_ok=True)
    if not storage.put_if_absent(MARKER, marker.body()):
        raise StoreExistsError(location)
    return Store(location, storage, storage_options)


def open(location: Location, *, storage_options: dict[str, Any] | None = None) -> Store:  # noqa: A001 - the public name the API promises
    """Open the store at `location` (a path or URL, as for init); StoreNotFoundError if there is none."""
    storage = open_storage(location, storage_options=storage_options)
    try:
        found = marker.read(storage)
    except (FileNotFoundError, NotADirectoryError):
        raise StoreNotFoundError(location) from None
    except ValueError as e:
        raise NotAStoreError(location, f"{MARKER} is not valid JSON ({e})") from None
    if not isinstance(found, dict) or found.get("format") != marker.FORMAT_NAME:
        raise NotAStoreError(location, f"{MARKER} does not describe a logstore store")
    if found.get("format_version") not in READABLE_FORMATS:
        readable = ", ".join(str(f) for f in READABLE_FORMATS)
        raise NotAStoreError(location, f"format_version {found.get('format_version')!r} is not supported (this logstore reads {readable})")
    from . import ondemand

    return Store(location, ondemand.wrap(storage), storage_options)  # a lazy clone fetches its data files from its origin (ondemand.py)


def clone(
    url: Location,
    path: Location,
    *,
    tables: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    lazy: bool = False,
) -> Store:
    """A new store at `path` (as for init) holding the tables (all, or `tables`) of the store at `url`, with `url` as
    its remote 'origin' (and storage_options minus the credentials, which are never stored). `lazy=True` copies the
    records only: data files are fetched from origin the first time a read needs them (logstore/ondemand.py)."""
    from . import sync

    return sync.clone(url, path, tables=tables, storage_options=storage_options, progress=progress, lazy=lazy)[0]
