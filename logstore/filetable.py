"""File tables: a folder of files versioned as a table with one row per file, its bytes in the blob area (blobs.py).

`add_files` scans a folder, compares it with the latest version (a file whose size and mtime match its row is not
read again, as git's index does; check=True reads every file), reads each new or changed file once (hashing it and
staging its blob) and publishes the blobs, then commits the difference in one commit: an upsert of the rows of
new and changed files and a delete of the paths no longer there (none with delete_missing=False); unchanged rows
are neither read by the commit nor rewritten. The blobs' directories are fsynced once each (several at a time)
before the commit record is published. A killed add leaves at most unreferenced blobs and staging files, which
vacuum removes; no version. Nothing changed: no version.

What an add costs beyond listing the folder and reading the changed files (benchmarks/files.py): the head's rows are
read once, with their row ids, and kept for the next add of the table in this process while the head stays the
version they are the rows of (`_known_heads`, matched by table id, version and content fingerprint); the commit's
change rows and the two sums of the content fingerprint are computed from them and the few changed rows (one small
query), exactly what the general upsert and delete would give (they run instead when another writer committed in
between); the files are read, staged and published on the process's worker threads (threads.py), kept across adds.

`checkout` writes a version as a folder, byte for byte, with executable bits and mtimes; `open_file` gives one
file's content. Both verify every byte against the row's SHA-256 (CorruptionError).

The layout and rules are in docs/format.md, "File tables and blobs (format 4)".
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa

from . import fingerprint, names, operations, selectors, snapshot, threads
from .blobs import RAW, ZSTD, Blobs, Staged, blob_path, parse_name
from .commit import FILE_TABLE, CommitInfo, _publish_once, commit
from .errors import (
    CorruptionError,
    FileNotInVersionError,
    FolderInputError,
    LogstoreError,
    NotAFileTableError,
    OutputExistsError,
    TableExistsError,
    TableNotFoundError,
)
from .log import Commit, CommitRecord, new_table_id
from .materialize import DELETE, INSERT, OP, ROW_ID, UPDATE, Plan
from .operations import Head
from .schema import Column

if TYPE_CHECKING:
    from .selectors import Moment, Tag, Version
    from .store import Store
    from .table import Table
    from .vacuum import VacuumReport
    from .verify import VerifyReport

KEY = "path"
COLUMNS = (
    Column("path", "VARCHAR"),
    Column("size", "BIGINT"),
    Column("sha256", "VARCHAR"),
    Column("executable", "BOOLEAN"),
    Column("mtime", "TIMESTAMP WITH TIME ZONE"),
)
ARROW_SCHEMA = pa.schema(
    [("path", pa.string()), ("size", pa.int64()), ("sha256", pa.string()), ("executable", pa.bool_()), ("mtime", pa.timestamp("us", tz="UTC"))]
)
OPERATION = "ADD FILES"
# vacuum keeps an unreferenced blob younger than this whatever older_than says; an add re-writes an existing blob it
# relies on that no committed version of its table references once it is older than half of it, and gives up
# (committing nothing) if publishing its blobs and committing take longer than the other half
BLOB_GRACE = 6 * 3600.0
TEMP_PREFIX = ".logstore-checkout-"
THREADS = threads.SIZE  # files read and blobs published at a time: the process's worker threads
CHECKOUT_THREADS = 4  # files checked out at a time (benchmarks/README.md, issue 15, fourth part)


@dataclass(frozen=True)
class Entry:
    """A file found in the folder."""

    path: str  # relative, '/'-separated
    local: str
    size: int
    mtime_ns: int
    executable: bool

    @property
    def mtime_us(self) -> int:
        return self.mtime_ns // 1000


@dataclass(frozen=True)
class Listing:
    """The regular files under a folder, as parallel lists: no object per file (a folder may hold millions, and
    an add of a few changed files should cost little more than listing it)."""

    root: str
    paths: list[str]  # relative, '/'-separated, in the order found
    sizes: list[int]
    mtimes_ns: list[int]
    executable: list[bool]

    def entry(self, i: int) -> Entry:
        return Entry(self.paths[i], os.path.join(self.root, self.paths[i]), self.sizes[i], self.mtimes_ns[i], self.executable[i])


# --- scanning a folder ------------------------------------------------------------------------------------------


def scan(root: str | os.PathLike[str]) -> Listing:
    """Every regular file under `root`. FolderInputError for a missing root, a symbolic link, something that is
    neither file nor directory, an unreadable directory, or a name that is not UTF-8."""
    top = os.fspath(root)
    try:
        if not stat.S_ISDIR(os.stat(top).st_mode):
            raise FolderInputError(top, f"{top!r} is not a directory")
    except OSError as e:
        raise FolderInputError(top, f"cannot add {top!r}: {e.strerror or e}") from None
    listing = Listing(top, [], [], [], [])
    fd = _open_dir(top, None)
    try:
        _scan_dir(top, "", listing, fd)
    finally:
        os.close(fd)
    return listing


def _open_dir(path: str, parent: int | None, name: str = "") -> int:
    """A descriptor of the directory `path`: `name` opened relative to the descriptor `parent`, if given, without
    following a link put there since it was listed."""
    try:
        if parent is None:
            return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as e:
        raise FolderInputError(path, f"cannot list {path!r}: {e.strerror or e}") from None


def _scan_dir(directory: str, prefix: str, listing: Listing, fd: int) -> None:
    """One os.scandir per directory and one lstat per entry (DirEntry.stat, relative to the directory's descriptor:
    no lookup of the whole path per file), as a plain walk of the folder does."""
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError as e:
        raise FolderInputError(directory, f"cannot list {directory!r}: {e.strerror or e}") from None
    _check_names(entries, directory)
    add_path, add_size, add_mtime, add_executable = listing.paths.append, listing.sizes.append, listing.mtimes_ns.append, listing.executable.append
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as e:
            path = os.path.join(directory, entry.name)
            raise FolderInputError(path, f"cannot read {path!r}: {e.strerror or e}") from None
        mode = st.st_mode
        if mode & _FORMAT == _REGULAR:  # an unreadable file is refused when it is read (new or changed files only)
            add_path(prefix + entry.name)
            add_size(st.st_size)
            add_mtime(st.st_mtime_ns)
            add_executable(mode & stat.S_IXUSR != 0)
        elif stat.S_ISDIR(mode):
            path = os.path.join(directory, entry.name)
            sub = _open_dir(path, fd, entry.name)
            try:
                _scan_dir(path, prefix + entry.name + "/", listing, sub)
            finally:
                os.close(sub)
        elif stat.S_ISLNK(mode):
            path = os.path.join(directory, entry.name)
            raise FolderInputError(path, f"{path!r} is a symbolic link: file tables store regular files only (copy the target in, or remove the link)")
        else:
            path = os.path.join(directory, entry.name)
            raise FolderInputError(path, f"{path!r} is not a regular file or directory")


_FORMAT, _REGULAR = stat.S_IFMT(0o177777), stat.S_IFREG  # S_ISREG(mode) without a call per file


def _check_names(entries: list[os.DirEntry[str]], directory: str) -> None:
    """FolderInputError naming the first name that is not valid UTF-8 (checked per directory at once)."""
    try:
        "".join([e.name for e in entries]).encode("utf-8")
    except UnicodeEncodeError:
        for e in entries:
            try:
                e.name.encode("utf-8")
            except UnicodeEncodeError:
                path = os.fsencode(os.path.join(directory, e.name))
                raise FolderInputError(path, f"file name {path!r} is not valid UTF-8") from None


# --- adding a folder ------------------------------------------------------------------------------------------


def is_file_table(table: Table) -> bool:
    return table._log.read(0).properties.get(FILE_TABLE) is True


def file_table(store: Store, name: str) -> Table:
    """The file table `name`: TableNotFoundError, or NotAFileTableError for an ordinary table."""
    table = store.table(name)
    if not is_file_table(table):
        raise NotAFileTableError(name)
    return table


@dataclass(frozen=True)
class HeadRows:
    """The rows of one version of a file table as parallel lists (mtime in integer microseconds) with their row ids,
    an index by path, and the identity of the commit record they are the rows of (None: not to be cached)."""

    paths: list[str]
    sizes: list[int]
    sha256: list[str]
    executable: list[bool]
    mtimes_us: list[int]
    row_ids: list[int]
    index: dict[str, int]
    identity: tuple[Any, ...] | None = None

    @staticmethod
    def empty() -> HeadRows:
        return HeadRows([], [], [], [], [], [], {})

    @staticmethod
    def read(head: Head) -> HeadRows:
        """The head's rows, read once from its state (with row ids: the commit builds its change rows from them)."""
        rows = operations.run_arrow(head.con, f"SELECT {ROW_ID}, {', '.join(ARROW_SCHEMA.names)} FROM {head.state_sql()}")
        return HeadRows.of(rows, _identity(head.record))

    @staticmethod
    def of(rows: pa.Table, identity: tuple[Any, ...] | None) -> HeadRows:
        """From rows with _row_id and the columns (a version's rows, or version 0's change rows)."""
        paths = rows.column("path").to_pylist()
        mtimes = rows.column("mtime").cast(pa.int64()).to_pylist()
        columns = [rows.column(n).to_pylist() for n in ("size", "sha256", "executable", ROW_ID)]
        index = {p: i for i, p in enumerate(paths)}
        return HeadRows(paths, columns[0], columns[1], columns[2], mtimes, columns[3], index, identity)

    @cached_property
    def hashes(self) -> set[str]:
        return set(self.sha256)

    def images(self, indices: list[int]) -> pa.Table:
        """The rows at `indices` as stored (_row_id then the columns)."""
        return pa.table(
            {
                ROW_ID: pa.array([self.row_ids[j] for j in indices], pa.int64()),
                "path": pa.array([self.paths[j] for j in indices], pa.string()),
                "size": pa.array([self.sizes[j] for j in indices], pa.int64()),
                "sha256": pa.array([self.sha256[j] for j in indices], pa.string()),
                "executable": pa.array([self.executable[j] for j in indices], pa.bool_()),
                "mtime": pa.array([self.mtimes_us[j] for j in indices], pa.int64()).cast(ARROW_SCHEMA.field("mtime").type),
            }
        )

    def after(self, changes: KnownChanges, identity: tuple[Any, ...] | None) -> HeadRows:
        """These rows with `changes` applied: the rows of the version they were committed as."""
        paths, sizes, sha256, executable = list(self.paths), list(self.sizes), list(self.sha256), list(self.executable)
        mtimes, row_ids, index = list(self.mtimes_us), list(self.row_ids), dict(self.index)
        b = changes.batch
        for i, (path, size, sha, x, mtime) in enumerate(zip(b["path"], b["size"], b["sha256"], b["executable"], b["mtime"])):
            j = self.index.get(path)
            if j is None:
                index[path] = len(paths)
                paths.append(path)
                sizes.append(size)
                sha256.append(sha)
                executable.append(x)
                mtimes.append(mtime)
                row_ids.append(changes.row_ids[i])
            else:
                sizes[j], sha256[j], executable[j], mtimes[j] = size, sha, x, mtime
        if changes.deleted:
            gone = set(changes.deleted)
            keep = [i for i in range(len(paths)) if i not in gone]
            paths, sizes, sha256, executable = [paths[i] for i in keep], [sizes[i] for i in keep], [sha256[i] for i in keep], [executable[i] for i in keep]
            mtimes, row_ids = [mtimes[i] for i in keep], [row_ids[i] for i in keep]
            index = {p: i for i, p in enumerate(paths)}
        return HeadRows(paths, sizes, sha256, executable, mtimes, row_ids, index, identity)


def _identity(record: CommitRecord) -> tuple[Any, ...] | None:
    """What names a version's rows for the cache of head rows: the table, the version, its content fingerprint (over
    every row and row id: a purge or a re-created store gives another), the next row id and the columns. None for a
    record without a fingerprint (never cached)."""
    if record.fingerprint is None:
        return None
    return (record.table_id, record.version, record.fingerprint, record.next_row_id, record.columns)


# the latest rows of recently added file tables, by (store location, table name): the next add of the same table in
# this process compares the folder with them instead of reading them again, if the head is still that version
_known_heads: dict[tuple[str, str], HeadRows] = {}
_known_lock = threading.Lock()
CACHED_HEADS = 4  # tables
CACHED_ROWS = 250_000  # rows of one table at most


def _head_rows(table: Table, head: Head) -> HeadRows:
    key = (table._storage.location, table.name)
    known = _known_heads.get(key)
    identity = _identity(head.record)
    if known is not None and identity is not None and known.identity == identity:
        return known
    return HeadRows.read(head)


def _remember(table: Table, rows: HeadRows | None) -> None:
    key = (table._storage.location, table.name)
    with _known_lock:
        _known_heads.pop(key, None)
        if rows is not None and rows.identity is not None and len(rows.paths) <= CACHED_ROWS:
            _known_heads[key] = rows
            while len(_known_heads) > CACHED_HEADS:
                del _known_heads[next(iter(_known_heads))]


@dataclass(frozen=True)
class KnownChanges:
    """The change rows of an add computed from head rows known in memory (no query of the head state): the batch's
    rows (sorted by path) with their row ids, and the indices of the deleted rows in the head rows."""

    batch: dict[str, list[Any]]
    row_ids: list[int]
    deleted: list[int]
    changes: operations.ChangeSet


def _known_changes(head: Head, known: HeadRows, batch: pa.Table, deleted: list[str]) -> KnownChanges:
    """What operations.upsert(batch) plus operations.delete_keys(deleted) give against the head whose rows are
    `known`: existing paths keep their row id (update), new ones get fresh ids in the batch's order (insert), each
    deleted path a delete row without values; and the fingerprint's two sums (old images of the updated and deleted
    rows, new images) in one query over those few rows, instead of joins with the head state."""
    columns = {n: batch.column(n).to_pylist() for n in ("path", "size", "sha256", "executable")}
    columns["mtime"] = batch.column("mtime").cast(pa.int64()).to_pylist()  # integer microseconds, as HeadRows
    next_id = head.record.next_row_id
    row_ids: list[int] = []
    ops: list[str] = []
    old: list[int] = []
    for path in columns["path"]:
        j = known.index.get(path)
        if j is None:
            row_ids.append(next_id)
            ops.append(INSERT)
            next_id += 1
        else:
            row_ids.append(known.row_ids[j])
            ops.append(UPDATE)
            old.append(j)
    gone = [known.index[p] for p in deleted]
    schema = operations.change_schema(head.columns)
    new = batch.add_column(0, ROW_ID, pa.array(row_ids, pa.int64())).add_column(1, OP, pa.array(ops, pa.string()))
    removals = known.images(gone).select([ROW_ID]).append_column(OP, pa.array([DELETE] * len(gone), pa.string()))
    for name in ARROW_SCHEMA.names:
        removals = removals.append_column(name, pa.nulls(len(gone), ARROW_SCHEMA.field(name).type))
    rows = pa.concat_tables([new.cast(schema), removals.cast(schema)]).sort_by(ROW_ID)
    old_hash, new_hash = _hash_sums(head, known.images(old + gone), new)
    changes = operations.ChangeSet(rows, head.columns, next_id, old_hash=old_hash, new_hash=new_hash)
    return KnownChanges(columns, row_ids, gone, changes)


def _hash_sums(head: Head, old: pa.Table, new: pa.Table) -> tuple[int, int]:
    """The content fingerprint's row-hash sums (fingerprint.py) of the old and the new images, in one grouped query."""
    side = "__logstore_side"
    both = pa.concat_tables([old.select([ROW_ID, *ARROW_SCHEMA.names]), new.select([ROW_ID, *ARROW_SCHEMA.names])])
    both = both.append_column(side, pa.array([0] * old.num_rows + [1] * new.num_rows, pa.int8()))
    name = f"logstore_files_images_{uuid.uuid4().hex}"
    head.con.register(name, both)
    try:
        sql = f"SELECT {side}, {fingerprint.sum_expression(head.columns)} FROM {name} GROUP BY {side}"
        sums = dict(head.con.execute(sql).fetchall())
    finally:
        head.con.unregister(name)
    return int(sums.get(0, 0)), int(sums.get(1, 0))


def add_files(
    store: Store,
    name: str,
    path: str | os.PathLike[str],
    *,
    message: str | None = None,
    author: str | None = None,
    timestamp: Moment | None = None,
    delete_missing: bool = True,
    check: bool = False,
    chunk_size: int | None = None,
) -> Commit:
    """Commit the folder at `path` as the next version of file table `name` (created on first use); the latest
    commit, unchanged, if nothing changed.

    Only the differences are committed: an upsert of the rows of new and changed files (read, hashed and published
    as blobs, THREADS at a time) and a delete of the paths the folder no longer holds. Each blob's bytes are fsynced
    as it is published; the directories holding the blobs are fsynced once each, after all of them and before the
    commit record is published (storage.sync_directories), so no record is durable before a blob it names.

    The head's rows are read once (or taken from this process's last add of the table, if the head is still the
    version it committed); the commit builds its change rows from them when it commits on that head, and runs the
    general upsert and delete against a newer head (another writer's commit in between)."""
    info = CommitInfo(message=message, author=author, timestamp=timestamp)
    names.check("table", name)
    listing = scan(path)
    try:
        table: Table | None = file_table(store, name)
    except TableNotFoundError:
        table = None
    first_head = table._head() if table is not None else None
    head = _head_rows(table, first_head) if table is not None and first_head is not None else HeadRows.empty()
    to_read, flipped, found = _candidates(listing, head, check)
    blobs = Blobs(store._storage, **({"chunk_size": chunk_size} if chunk_size is not None else {}))
    started = time.time()
    hashes, touched = _store_contents(blobs, [listing.entry(i) for i in to_read], head.hashes)
    rows, content_changed = _changed_rows(listing, head, to_read + flipped, hashes)
    deleted = sorted(set(head.paths) - set(listing.paths)) if delete_missing and found < len(head.paths) else []
    if table is not None and not content_changed and not deleted:
        return table.commit_info()
    _sync_directories(store._storage, touched)  # before any record names these blobs
    if time.time() - started > BLOB_GRACE / 2:
        raise LogstoreError(f"publishing the blobs took over {BLOB_GRACE / 2:g}s; nothing was committed (add again: the blobs stay)")
    if table is None or first_head is None:
        return _create(store, name, _batch(rows), info)
    return _commit_diff(table, first_head, head, _batch(rows), deleted, info)


def _commit_diff(table: Table, first_head: Head, known: HeadRows, batch: pa.Table, deleted: list[str], info: CommitInfo) -> Commit:
    """Commit the upsert of `batch` and the delete of `deleted`: on the head `known` holds the rows of (the first
    attempt, usually) from those rows, on any other head (a retry after another writer's commit) by the general
    operations; then remember the new head's rows for the next add."""
    heads = [first_head]
    built: list[tuple[int, KnownChanges | None]] = []

    def next_head() -> Head:
        return heads.pop() if heads else table._head()

    def build(head: Head) -> operations.ChangeSet:
        if known.identity is not None and _identity(head.record) == known.identity or head is first_head:
            made = _known_changes(head, known, batch, deleted)
            built.append((head.record.version, made))
            return made.changes
        built.append((head.record.version, None))
        return _diff(batch, deleted)(head)

    try:
        done = commit(table, OPERATION, build, info, head=next_head)
    except BaseException:
        _remember(table, None)
        raise
    base, made = built[-1]
    if made is not None and done.version == base + 1:
        _remember(table, known.after(made, _identity(table._log.read(done.version))))
    else:
        _remember(table, None)
    return done


def _candidates(listing: Listing, head: HeadRows, check: bool) -> tuple[list[int], list[int], int]:
    """Indices of the listing's files to read (new, or size or mtime unlike the head row's; all with check) and of
    those whose executable bit alone differs (their row keeps its hash), and how many of its paths the head holds."""
    index, sizes, mtimes, executable = head.index, head.sizes, head.mtimes_us, head.executable
    to_read: list[int] = []
    flipped: list[int] = []
    found = 0
    for i, (path, size, mtime_ns, x) in enumerate(zip(listing.paths, listing.sizes, listing.mtimes_ns, listing.executable)):
        j = index.get(path)
        if j is None:
            to_read.append(i)
            continue
        found += 1
        if check or sizes[j] != size or mtimes[j] != mtime_ns // 1000:
            to_read.append(i)
        elif executable[j] != x:
            flipped.append(i)
    return to_read, flipped, found


def _changed_rows(listing: Listing, head: HeadRows, indices: list[int], hashes: dict[str, str]) -> tuple[list[dict[str, Any]], bool]:
    """The rows of these files that differ from the head's (sorted by path; an mtime alone is a difference
    recorded along with real changes), and whether any content differs: a new path, other bytes, another
    executable bit."""
    rows: list[dict[str, Any]] = []
    content_changed = False
    for i in indices:
        path = listing.paths[i]
        j = head.index.get(path)
        sha = hashes[path] if path in hashes else head.sha256[j]  # type: ignore[index]  # flipped: j is set
        row = {"path": path, "size": listing.sizes[i], "sha256": sha, "executable": listing.executable[i], "mtime": listing.mtimes_ns[i] // 1000}
        if j is None or sha != head.sha256[j] or row["executable"] != head.executable[j]:
            content_changed = True
        elif row["size"] == head.sizes[j] and row["mtime"] == head.mtimes_us[j]:
            continue  # read again (check=True) and the same
        rows.append(row)
    rows.sort(key=lambda r: r["path"])
    return rows, content_changed


def _batch(rows: list[dict[str, Any]]) -> pa.Table:
    arrays = {name: [r[name] for r in rows] for name in ARROW_SCHEMA.names}
    mtimes = pa.array(arrays["mtime"], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return pa.table({**{n: pa.array(arrays[n], ARROW_SCHEMA.field(n).type) for n in ARROW_SCHEMA.names if n != "mtime"}, "mtime": mtimes}, schema=ARROW_SCHEMA)


def _diff(batch: pa.Table, deleted: list[str]) -> Any:
    """The commit's changes against a head: an upsert of `batch` and a delete of the `deleted` paths."""

    def build(head: Head) -> operations.ChangeSet:
        parts = []
        if batch.num_rows or not deleted:
            parts.append(operations.upsert(head, batch, merge=False))
        if deleted:
            parts.append(operations.delete_keys(head, pa.table({KEY: pa.array(deleted, pa.string())})))
        if len(parts) == 1:
            return parts[0]
        rows = pa.concat_tables([p.rows for p in parts]).sort_by(ROW_ID)
        return operations.ChangeSet(rows, parts[0].columns, max(p.next_row_id for p in parts))

    return build


def _unchanged_since_scan(e: Entry, s: Staged) -> None:
    try:
        st = os.stat(e.local, follow_symlinks=False)
    except OSError as err:
        raise FolderInputError(e.local, f"cannot read {e.local!r}: {err.strerror or err}") from None
    if s.size != e.size or st.st_size != e.size or st.st_mtime_ns != e.mtime_ns:
        raise FolderInputError(e.local, f"{e.local!r} changed while it was being added; add again")


def _store_contents(blobs: Blobs, entries: list[Entry], referenced: set[str]) -> tuple[dict[str, str], set[str]]:
    """Read each entry once (hash it, write its blob to a staging file) and publish the blobs not stored yet,
    THREADS at a time (hashing, compressing and fsyncing release the GIL), their directory entries not yet
    fsynced. Returns {path: sha256} and the blob paths the new rows may name (published here, or found: another
    add may have published one without syncing its directory yet), for storage.sync_directories. An existing blob
    the head does not reference is written again if it is old enough that vacuum could take it before this add
    commits (see BLOB_GRACE). The first error is raised once all have finished; nothing is left in staging."""
    hashes: dict[str, str] = {}
    touched: set[str] = set()

    def store(e: Entry) -> None:
        s = blobs.stage(e.local, size=e.size)
        try:
            _unchanged_since_scan(e, s)
            found = blobs.find(s.sha256)
            if found is None:
                touched.add(blobs.publish(s, sync_directory=False))
            elif s.sha256 not in referenced and found.modified < time.time() - BLOB_GRACE / 2:
                touched.add(blobs.refresh(s, found, sync_directory=False))
            else:
                touched.add(found.path)
        finally:
            blobs.storage.delete_staged(s.staged)
        hashes[e.path] = s.sha256

    if len(entries) <= 1:
        for e in entries:
            store(e)
    else:
        _run_all([functools.partial(store, e) for e in entries])
    return hashes, touched


def _sync_directories(storage: Any, paths: set[str]) -> None:
    """storage.sync_directories of the blobs' paths, the directories fsynced THREADS at a time (concurrent fsyncs
    share the filesystem's journal commits: ~85 directories take ~6 ms instead of ~40 ms one after the other)."""
    groups: dict[str, list[str]] = {}
    for path in sorted(paths):
        groups.setdefault(path.rsplit("/", 1)[0], []).append(path)
    if len(groups) <= 1:
        storage.sync_directories(sorted(paths))
        return
    _run_all([functools.partial(storage.sync_directories, group) for group in groups.values()])


def _run_all(tasks: list[Callable[[], None]]) -> None:
    """Run the tasks on the process's worker threads (threads.py); once all have finished, raise the first error."""
    threads.run_all(tasks)


def _create(store: Store, name: str, batch: pa.Table, info: CommitInfo) -> Commit:
    """Version 0 of a new file table, holding `batch` (store.create_table with the file-table property)."""
    from .table import Table

    names.check_new_table(name, store.tables())
    table = Table(store, name)
    base = CommitRecord(
        commit=Commit(version=-1, timestamp=None, operation="NONE"),  # type: ignore[arg-type]  # before version 0
        columns=COLUMNS,
        key=(KEY,),
        files=(),
        next_row_id=0,
        change_rows_total=0,
        properties={**snapshot.DEFAULT_PROPERTIES, FILE_TABLE: True},
        table_id=new_table_id(),
    )
    head = Head(base, Plan(-1, COLUMNS, None, -1, (), ()), store._connection().cursor(), name)
    changes = operations.append(head, batch, merge=False)
    record = _publish_once(table._files, OPERATION, head, changes, info)
    if record is None:
        raise TableExistsError(name)
    table._after_commit(record)
    _remember(table, HeadRows.of(changes.rows, _identity(record)))  # every row inserted: the rows of version 0
    return record.commit


# --- reading files back -----------------------------------------------------------------------------------------


def version_rows(table: Table, version: Version | None, as_of: Moment | None, tag: Tag | None) -> tuple[int, list[dict[str, Any]]]:
    if not is_file_table(table):
        raise NotAFileTableError(table.name)
    v = selectors.resolve(table._files, version, as_of=as_of, tag=tag)
    return v, table.read(version=v).to_pylist()


def open_file(table: Table, path: str, *, version: Version | None = None, as_of: Moment | None = None, tag: Tag | None = None, chunk_size: int | None = None) -> BinaryIO:
    v, rows = version_rows(table, version, as_of, tag)
    for row in rows:
        if row["path"] == path:
            blobs = Blobs(table._storage, **({"chunk_size": chunk_size} if chunk_size is not None else {}))
            try:
                return blobs.open(row["sha256"], row["size"])
            except CorruptionError as e:
                raise CorruptionError(e.path, v, f"{e.reason} (file {path!r})") from None
    raise FileNotInVersionError(table.name, path, v)


def checkout(
    table: Table,
    directory: str | os.PathLike[str],
    *,
    version: Version | None = None,
    as_of: Moment | None = None,
    tag: Tag | None = None,
    overwrite: bool = False,
    chunk_size: int | None = None,
) -> int:
    """Write the folder of one version into `directory`; returns the version. A non-empty directory is refused
    (OutputExistsError) unless overwrite=True, which makes it exactly that version: files and links not in it are
    removed, a file whose size, mtime and executable bit match its row is kept (as `add` would skip it), every other
    file is written under a temporary name, verified and renamed into place. In a directory that was empty
    (`fresh`) a file of at most a chunk is read, verified and only then created under its own name (O_EXCL: never
    over a file or link that appeared meanwhile); larger files are streamed under a temporary name, verified, then
    renamed, in either case. A file whose blob is missing or does not match is not left under its name."""
    if not is_file_table(table):
        raise NotAFileTableError(table.name)
    v = selectors.resolve(table._files, version, as_of=as_of, tag=tag)
    files = VersionFiles.read(table, v)
    for path in files.paths:
        _check_path(path, v)
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise OutputExistsError(root)
    fresh = not root.is_dir() or not any(root.iterdir())  # nothing there to keep or replace
    if not fresh and not overwrite:
        raise OutputExistsError(root)
    root.mkdir(parents=True, exist_ok=True)
    if not fresh:
        _clear_extras(root, set(files.paths))
    for parent in sorted({p.rsplit("/", 1)[0] for p in files.paths if "/" in p}):  # each directory made once
        os.makedirs(root / parent, exist_ok=True)
    blobs = Blobs(table._storage, **({"chunk_size": chunk_size} if chunk_size is not None else {}))
    write = functools.partial(_write_file, blobs, str(root), files, v, fresh=fresh)
    order = sorted(range(len(files.paths)), key=files.paths.__getitem__)  # a directory's files created together
    _run_each(write, order, CHECKOUT_THREADS)
    return v


@dataclass(frozen=True)
class VersionFiles:
    """The rows of one version of a file table as parallel lists (no dict or datetime per row)."""

    paths: list[str]
    sizes: list[int]
    sha256: list[str]
    executable: list[bool]
    mtimes_ns: list[int]

    @staticmethod
    def read(table: Table, version: int) -> VersionFiles:
        rows = table.read(version=version)
        mtimes_us = rows.column("mtime").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
        return VersionFiles(
            rows.column("path").to_pylist(),
            rows.column("size").to_pylist(),
            rows.column("sha256").to_pylist(),
            rows.column("executable").to_pylist(),
            [us * 1000 for us in mtimes_us],
        )


def _run_each(work: Callable[[int], None], items: Sequence[int], workers: int) -> None:
    """work(i) for every item, by `workers` tasks of the kept pool taking items from one shared iterator (a task
    per item cost ~40 us of submitting and waiting in the caller's thread, 0.4 s for 10,000 files); after the
    first error no further item starts, and it is raised once every task has stopped."""
    queue = iter(items)  # next() of a range or list iterator is atomic under the GIL
    failed: list[BaseException] = []

    def loop() -> None:
        for i in queue:
            if failed:
                return
            try:
                work(i)
            except BaseException as e:
                failed.append(e)
                return

    if workers <= 1 or len(items) <= 1:
        loop()
    else:
        _run_all([loop] * min(workers, len(items)))
    if failed:
        raise failed[0]


def _check_path(path: str, version: int) -> None:
    """A row's path must stay inside the folder: relative, no empty, '.' or '..' parts (a hostile store's rows)."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or "\x00" in path or any(p in ("", ".", "..") for p in parts):
        raise CorruptionError(path, version, "file table row has a path that is not a plain relative path")


def _clear_extras(root: Path, wanted: set[str]) -> None:
    """Remove what is under `root` but not in the version: other files, links, and directories holding none of its files."""
    needed_dirs = {"/".join(p.split("/")[:i]) for p in wanted for i in range(1, p.count("/") + 1)}
    for directory, dirs, files in os.walk(root, topdown=False):
        base = Path(directory)
        relative_dir = base.relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        for name in files:
            item = base / name
            if prefix + name not in wanted or item.is_symlink():
                item.unlink()
        for name in dirs:
            item = base / name
            if item.is_symlink():
                item.unlink()
            elif prefix + name not in needed_dirs:
                shutil.rmtree(item)
    for path in wanted:  # a directory where the version has a file
        target = root / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)


def _write_file(blobs: Blobs, root: str, files: VersionFiles, version: int, i: int, *, fresh: bool) -> None:
    """Write file `i` of the version under `root` (its directory exists). Kept as it is if it matches the row (not
    looked for in a directory that was empty). A file of at most a chunk is read whole and verified before anything
    is written: straight under its name in a fresh directory, else under a temporary name renamed into place; a
    larger one is streamed under a temporary name and renamed once verified."""
    path, size, mtime_ns, executable = files.paths[i], files.sizes[i], files.mtimes_ns[i], files.executable[i]
    target = os.path.join(root, path)
    if not fresh and _unchanged(target, size, mtime_ns, executable):
        return
    try:
        content = blobs.whole(files.sha256[i], size)
        if content is None:
            _write_streamed(blobs, target, files.sha256[i], size, mtime_ns, executable)
        elif fresh:
            _write_new(target, content, mtime_ns, executable)
        else:
            temp = _temp_name(target)
            _write_new(temp, content, mtime_ns, executable)
            _replace(temp, target)
    except CorruptionError as e:
        raise CorruptionError(e.path, version, f"{e.reason} (file {path!r})") from None
    except FileExistsError:
        if not fresh:
            raise
        raise OutputExistsError(target) from None  # appeared in the fresh directory since it was found empty


def _unchanged(target: str, size: int, mtime_ns: int, executable: bool) -> bool:
    try:
        st = os.stat(target, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size and st.st_mtime_ns == mtime_ns and bool(st.st_mode & stat.S_IXUSR) == executable


NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _write_new(path: str, content: bytes, mtime_ns: int, executable: bool) -> None:
    """Create `path` (O_EXCL: never over an existing file or link) holding the verified `content`, with its mode
    and mtime set through the open file; removed again if any step fails."""
    fd = os.open(path, NEW_FILE, 0o666)
    try:
        try:
            view = memoryview(content)
            while view:  # one write, unless it is short
                view = view[os.write(fd, view) :]
            if executable:
                _make_executable(fd)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
    except BaseException:
        _unlink_quietly(path)
        raise


def _write_streamed(blobs: Blobs, target: str, sha256: str, size: int, mtime_ns: int, executable: bool) -> None:
    """A file larger than a chunk: streamed under a temporary name (its bytes are verified only once all are
    written, so never under its own name before), mode and mtime set, renamed into place."""
    temp = _temp_name(target)
    try:
        with open(temp, "xb") as out:
            blobs.write_to(sha256, size, out)
            out.flush()
            if executable:
                _make_executable(out.fileno())
            os.utime(out.fileno(), ns=(mtime_ns, mtime_ns))
    except BaseException:
        _unlink_quietly(temp)
        raise
    _replace(temp, target)


def _make_executable(fd: int) -> None:
    """Executable where readable (as git does: the umask's choice of readers kept); the file was created without
    any x bit."""
    mode = os.fstat(fd).st_mode & 0o777
    wanted = mode | ((mode & 0o444) >> 2)
    if wanted != mode:
        os.fchmod(fd, wanted)


def _temp_name(target: str) -> str:
    return os.path.join(os.path.dirname(target), f"{TEMP_PREFIX}{uuid.uuid4().hex}")


def _replace(temp: str, target: str) -> None:
    try:
        os.replace(temp, target)
    except BaseException:
        _unlink_quietly(temp)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- vacuum, verify, sync ---------------------------------------------------------------------------------------


def file_tables(store: Store) -> list[Table]:
    return [t for t in (store.table(n) for n in store.tables()) if is_file_table(t)]


def referenced_blobs(table: Table) -> dict[str, int]:
    """{sha256: size} of every blob a readable version of the file table references: each row any commit wrote, or,
    once versions expired (expiry.py), the rows of the cut-off version and of the kept tagged ones plus each row a
    later commit wrote (an expired version's blobs go with it)."""
    from . import expiry

    cutoff, kept = expiry.cutoff_of(expiry._latest_record(table._files))
    if cutoff == 0:
        parts = [table.changes(0)]
    else:
        parts = [table.read(version=v, columns=["sha256", "size"]) for v in sorted({cutoff, *kept})]
        if cutoff < table.version:
            parts.append(table.changes(cutoff + 1))
    found: dict[str, int] = {}
    for part in parts:
        for sha, size in zip(part.column("sha256").to_pylist(), part.column("size").to_pylist()):
            if sha is not None:
                found[sha] = size
    return found


def purge(table: Table, *, where: str, info: Any, dry_run: bool) -> Any:
    """Purge a file table's rows as any table's (purge.py), then delete at once the blobs that only purged rows
    referenced and no readable version of any file table still does: an erasure does not wait for the blob grace
    that keeps vacuum off the blobs of an add in flight (an add of the same content racing the purge may then
    commit a row whose blob is gone, which its reads report as a missing blob)."""
    from .purge import purge as purge_rows

    before = set(referenced_blobs(table))
    done = purge_rows(table, where=where, info=info, dry_run=dry_run)
    if dry_run or done is None:
        return done
    still: set[str] = set()
    for other in file_tables(table._store):
        still |= set(referenced_blobs(other))
    for sha in sorted(before - still):
        for encoding in (RAW, ZSTD):
            table._storage.delete(blob_path(sha, encoding))
    return done


def vacuum_blobs(store: Store, report: VacuumReport, *, dry_run: bool, min_age: float) -> None:
    """Add to `report` (and remove unless dry_run) the blobs no version of any file table references and older than
    both min_age and BLOB_GRACE. Blobs are listed before the logs are read: a blob published later is no candidate."""
    from .vacuum import Removal

    blobs = Blobs(store._storage)
    listed = blobs.paths()
    referenced: set[str] = set()
    for table in file_tables(store):
        referenced |= set(referenced_blobs(table))
    cutoff = time.time() - max(min_age, BLOB_GRACE)
    for path in listed:
        parsed = parse_name(path.rsplit("/", 1)[-1])
        if parsed is not None and parsed[0] in referenced:
            continue
        try:
            info = store._storage.stat(path)
        except FileNotFoundError:
            continue
        if info.modified > cutoff:
            report.too_young.append(path)
            continue
        report.removals.append(Removal(path, info.size, "blob no file table references"))
        if not dry_run:
            store._storage.delete(path)


def verify_blobs(table: Table, report: VerifyReport, version: int | None, *, full: bool) -> None:
    """Add to `report` every blob the version (every version with full) needs that is missing or damaged."""
    latest = version if version is not None else table.version
    versions = range(latest + 1) if full else [latest]
    from . import expiry

    versions = [v for v in versions if not expiry.expired(table._files, v)]  # expired versions' blobs may be gone
    blobs = Blobs(table._storage)
    checked: dict[str, CorruptionError | None] = {}
    for v in versions:
        try:
            rows = table.read(version=v).to_pylist()
        except (LogstoreError, OSError) as e:
            report.add("unreadable", table._prefix, v, f"cannot read the file rows: {e}")
            continue
        for row in rows:
            sha = row["sha256"]
            if sha not in checked:
                checked[sha] = blobs.check(sha, row["size"])
                report.files_checked += 1
                report.bytes_checked += row["size"]
            problem = checked[sha]
            if problem is not None:
                kind = "missing" if problem.reason == "blob is missing" else "checksum"
                report.add(kind, problem.path, v, f"{problem.reason} (file {row['path']!r})")


def carry_blobs(source: Any, destination: Any, tables: Sequence[str]) -> int:
    """Copy to `destination` (a storage) the blobs the file tables among `tables` reference at `source` and it lacks,
    each checked before it is published there; the number copied. CorruptionError (nothing of those tables is
    published then) if one is missing or damaged at the source."""
    from .store import Store

    store = Store(source.location, source)
    mine, theirs = Blobs(source), Blobs(destination)
    wanted: dict[str, tuple[str, int]] = {}  # sha256 -> (table, size)
    for name in tables:
        table = store.table(name)
        if is_file_table(table):
            for sha, size in referenced_blobs(table).items():
                wanted.setdefault(sha, (name, size))
    if not wanted:
        return 0
    present = {parsed[0] for parsed in (parse_name(p.rsplit("/", 1)[-1]) for p in theirs.paths()) if parsed is not None}

    def copy(item: tuple[str, tuple[str, int]]) -> bool:
        sha, (name, size) = item
        try:
            return mine.copy_to(theirs, sha, size)
        except CorruptionError as e:
            raise CorruptionError(e.path, None, f"{e.reason} at {source.location} (file table {name!r})") from None

    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(copy, [item for item in wanted.items() if item[0] not in present]))

