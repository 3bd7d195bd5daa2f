"""File tables: a folder of files versioned as a table with one row per file, its bytes in the blob area (blobs.py).

`add_files` scans a folder, compares it with the latest version (a file whose size and mtime match its row is not
read again, as git's index does; check=True reads every file), reads each new or changed file once (hashing it and
staging its blob), publishes the blobs, then commits the difference in one commit: the folder's rows as an overwrite
(or an upsert with delete_missing=False), so unchanged rows are not rewritten. A killed add leaves at most
unreferenced blobs and staging files, which vacuum removes; no version. Nothing changed: no version.

`checkout` writes a version as a folder, byte for byte, with executable bits and mtimes; `open_file` gives one
file's content. Both verify every byte against the row's SHA-256 (CorruptionError).

The layout and rules are in docs/format.md, "File tables and blobs (format 4)".
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa

from . import names, operations, selectors, snapshot
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
from .materialize import Plan
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
THREADS = 8  # files read, blobs published and files checked out at a time


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


# --- scanning a folder ------------------------------------------------------------------------------------------


def scan(root: str | os.PathLike[str]) -> dict[str, Entry]:
    """Every regular file under `root` by its relative path. FolderInputError for a missing root, a symbolic link,
    something that is neither file nor directory, an unreadable file or directory, or a name that is not UTF-8."""
    top = os.fspath(root)
    try:
        if not stat.S_ISDIR(os.stat(top).st_mode):
            raise FolderInputError(top, f"{top!r} is not a directory")
    except OSError as e:
        raise FolderInputError(top, f"cannot add {top!r}: {e.strerror or e}") from None
    found: dict[str, Entry] = {}
    _scan_dir(top, "", found)
    return dict(sorted(found.items()))


def _scan_dir(directory: str, prefix: str, found: dict[str, Entry]) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError as e:
        raise FolderInputError(directory, f"cannot list {directory!r}: {e.strerror or e}") from None
    for entry in entries:
        relative = prefix + _utf8(entry.name, entry.path)
        if entry.is_symlink():
            raise FolderInputError(entry.path, f"{entry.path!r} is a symbolic link: file tables store regular files only (copy the target in, or remove the link)")
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _scan_dir(entry.path, relative + "/", found)
        elif stat.S_ISREG(st.st_mode):  # an unreadable file is refused when it is read (new or changed files only)
            found[relative] = Entry(relative, entry.path, st.st_size, st.st_mtime_ns, bool(st.st_mode & stat.S_IXUSR))
        else:
            raise FolderInputError(entry.path, f"{entry.path!r} is not a regular file or directory")


def _utf8(name: str, local: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise FolderInputError(os.fsencode(local), f"file name {os.fsencode(local)!r} is not valid UTF-8") from None
    return name


# --- adding a folder ------------------------------------------------------------------------------------------


def is_file_table(table: Table) -> bool:
    return table._log.read(0).properties.get(FILE_TABLE) is True


def file_table(store: Store, name: str) -> Table:
    """The file table `name`: TableNotFoundError, or NotAFileTableError for an ordinary table."""
    table = store.table(name)
    if not is_file_table(table):
        raise NotAFileTableError(name)
    return table


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
    commit, unchanged, if nothing changed."""
    info = CommitInfo(message=message, author=author, timestamp=timestamp)
    names.check("table", name)
    entries = scan(path)
    try:
        table: Table | None = file_table(store, name)
    except TableNotFoundError:
        table = None
    head = _rows_by_path(table.read()) if table is not None else {}
    blobs = Blobs(store._storage, **({"chunk_size": chunk_size} if chunk_size is not None else {}))
    staged: dict[str, Staged] = {}
    try:
        rows = _rows(entries, head, blobs, staged, check)
        if table is not None and not _changed(rows, head, delete_missing):
            return table.commit_info()
        _publish_blobs(blobs, staged, {r["sha256"] for r in head.values()})
        batch = _batch(rows)
        if table is None:
            return _create(store, name, batch, info)
        build = (lambda h: operations.overwrite(h, batch, merge=False)) if delete_missing else (lambda h: operations.upsert(h, batch, merge=False))
        return commit(table, OPERATION, build, info)
    finally:
        for s in staged.values():
            store._storage.delete_staged(s.staged)


def _rows_by_path(rows: pa.Table) -> dict[str, dict[str, Any]]:
    """The head's rows by path, mtime as integer microseconds."""
    columns = {name: rows.column(name).to_pylist() for name in ("path", "size", "sha256", "executable")}
    columns["mtime"] = rows.column("mtime").cast(pa.int64()).to_pylist()
    names = list(columns)
    return {values[0]: dict(zip(names, values)) for values in zip(*columns.values())}


def _rows(entries: dict[str, Entry], head: dict[str, dict[str, Any]], blobs: Blobs, staged: dict[str, Staged], check: bool) -> dict[str, dict[str, Any]]:
    """The folder's rows (mtime in integer microseconds): a file whose size and mtime match its row keeps the row's
    hash; others are read (staged, THREADS at a time: hashing, compressing and fsyncing release the GIL)."""
    to_read = [e for path, e in entries.items() if check or not _same_stat(head.get(path), e)]
    _stage_all(blobs, to_read, staged)
    return {
        path: {"path": path, "size": e.size, "sha256": staged[path].sha256 if path in staged else head[path]["sha256"], "executable": e.executable, "mtime": e.mtime_us}
        for path, e in entries.items()
    }


def _batch(rows: dict[str, dict[str, Any]]) -> pa.Table:
    values = list(rows.values())
    arrays = {name: [r[name] for r in values] for name in ARROW_SCHEMA.names}
    mtimes = pa.array(arrays["mtime"], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return pa.table({**{n: pa.array(arrays[n], ARROW_SCHEMA.field(n).type) for n in ARROW_SCHEMA.names if n != "mtime"}, "mtime": mtimes}, schema=ARROW_SCHEMA)


def _same_stat(old: dict[str, Any] | None, e: Entry) -> bool:
    return old is not None and old["size"] == e.size and old["mtime"] == e.mtime_us


def _stage_all(blobs: Blobs, entries: list[Entry], staged: dict[str, Staged]) -> None:
    """Stage every entry's content into `staged` (by path); the first error is raised once all have finished, the
    staged files of the others in `staged` for the caller to delete."""

    def stage(e: Entry) -> None:
        s = blobs.stage(e.local)
        staged[e.path] = s
        _unchanged_since_scan(e, s)

    if len(entries) <= 1:
        for e in entries:
            stage(e)
        return
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(stage, e) for e in entries]
    for f in futures:
        f.result()


def _us(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _unchanged_since_scan(e: Entry, s: Staged) -> None:
    try:
        st = os.stat(e.local, follow_symlinks=False)
    except OSError as err:
        raise FolderInputError(e.local, f"cannot read {e.local!r}: {err.strerror or err}") from None
    if s.size != e.size or st.st_size != e.size or st.st_mtime_ns != e.mtime_ns:
        raise FolderInputError(e.local, f"{e.local!r} changed while it was being added; add again")


def _changed(rows: dict[str, dict[str, Any]], head: dict[str, dict[str, Any]], delete_missing: bool) -> bool:
    """Whether the folder differs from the head in content: a path added or removed, other bytes, another executable
    bit (an mtime alone is no change; it is recorded along with real changes)."""
    if delete_missing and set(head) - set(rows):
        return True
    for path, row in rows.items():
        old = head.get(path)
        if old is None or old["sha256"] != row["sha256"] or old["executable"] != row["executable"]:
            return True
    return False


def _publish_blobs(blobs: Blobs, staged: dict[str, Staged], referenced: set[str]) -> None:
    """Publish the staged blobs (THREADS at a time); rewrite an existing blob the table's head does not reference if
    it is old enough that vacuum could take it before this add commits (see BLOB_GRACE)."""
    started = time.time()
    first: dict[str, str] = {}  # sha256 -> the path whose staged file publishes it
    for path, s in staged.items():
        first.setdefault(s.sha256, path)

    def publish(path: str) -> None:
        s = staged[path]
        found = blobs.find(s.sha256)
        if found is None:
            blobs.publish(s)
        elif s.sha256 not in referenced and found.modified < time.time() - BLOB_GRACE / 2:
            blobs.refresh(s, found)
        else:
            return
        del staged[path]  # consumed

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(publish, list(first.values())):
            pass
    if time.time() - started > BLOB_GRACE / 2:
        raise LogstoreError(f"publishing the blobs took over {BLOB_GRACE / 2:g}s; nothing was committed (add again: the blobs stay)")


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
    record = _publish_once(table._files, OPERATION, head, operations.append(head, batch, merge=False), info)
    if record is None:
        raise TableExistsError(name)
    table._after_commit(record)
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
    file is written under a temporary name, verified and renamed into place."""
    v, rows = version_rows(table, version, as_of, tag)
    for row in rows:
        _check_path(row["path"], v)
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise OutputExistsError(root)
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise OutputExistsError(root)
    root.mkdir(parents=True, exist_ok=True)
    wanted = {row["path"]: row for row in rows}
    _clear_extras(root, wanted)
    blobs = Blobs(table._storage, **({"chunk_size": chunk_size} if chunk_size is not None else {}))
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(lambda row: _write_file(blobs, root, row, v), wanted.values()):
            pass
    return v


def _check_path(path: str, version: int) -> None:
    """A row's path must stay inside the folder: relative, no empty, '.' or '..' parts (a hostile store's rows)."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or "\x00" in path or any(p in ("", ".", "..") for p in parts):
        raise CorruptionError(path, version, "file table row has a path that is not a plain relative path")


def _clear_extras(root: Path, wanted: dict[str, dict[str, Any]]) -> None:
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


def _write_file(blobs: Blobs, root: Path, row: dict[str, Any], version: int) -> None:
    target = root / row["path"]
    mtime_ns = _us(row["mtime"]) * 1000
    try:
        st = os.stat(target, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode) and st.st_size == row["size"] and st.st_mtime_ns == mtime_ns and bool(st.st_mode & stat.S_IXUSR) == row["executable"]:
            return
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        with open(temp, "wb") as out:
            blobs.write_to(row["sha256"], row["size"], out)
        mode = os.stat(temp).st_mode & 0o777
        os.chmod(temp, mode | ((mode & 0o444) >> 2) if row["executable"] else mode & ~0o111)
        os.utime(temp, ns=(mtime_ns, mtime_ns))
        os.replace(temp, target)
    except CorruptionError as e:
        raise CorruptionError(e.path, version, f"{e.reason} (file {row['path']!r})") from None
    finally:
        if temp.exists():
            temp.unlink()


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

