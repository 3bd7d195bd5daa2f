"""The errors logstore raises. Every one derives from LogstoreError and carries the offending values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def first_line(error: object) -> str:
    """The first line of an error's message (DuckDB's and obstore's run on for pages), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class LogstoreError(Exception):
    """Base of every error logstore raises on purpose."""


class StoreNotFoundError(LogstoreError):
    def __init__(self, path: Any):
        self.path = str(path)
        super().__init__(f"no logstore store at {self.path!r} (create one with logstore.init)")


class StoreExistsError(LogstoreError):
    def __init__(self, path: Any):
        self.path = str(path)
        super().__init__(f"a store already exists at {self.path!r}")


class NotAStoreError(LogstoreError):
    def __init__(self, path: Any, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path!r} is not a logstore store: {reason}")


class InvalidNameError(LogstoreError):
    def __init__(self, kind: str, name: Any):
        self.kind = kind
        self.name = name
        super().__init__(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (no path separators, no '..')"
        )


class TableNotFoundError(LogstoreError):
    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "none"
        super().__init__(f"no table {name!r} in this store (known tables: {listed})")


class TableExistsError(LogstoreError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"table {name!r} already exists")


class VersionNotFoundError(LogstoreError):
    def __init__(self, version: Any, latest: int):
        self.version = version
        self.latest = latest
        super().__init__(f"version {version!r} does not exist (latest version is {latest})")


class TagNotFoundError(LogstoreError):
    def __init__(self, tag: str, known: Iterable[str]):
        self.tag = tag
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "none"
        super().__init__(f"no tag {tag!r} (known tags: {listed})")


class TagExistsError(LogstoreError):
    def __init__(self, tag: str, version: int):
        self.tag = tag
        self.version = version
        super().__init__(f"tag {tag!r} already exists (it points at version {version}); delete it first")


class TimestampError(LogstoreError):
    """A timestamp that cannot be parsed, or that lies outside the range it must be in."""

    def __init__(self, timestamp: Any, message: str):
        self.timestamp = timestamp
        super().__init__(message)


class SelectorError(LogstoreError):
    def __init__(self, given: dict[str, Any]):
        self.given = given
        names = ", ".join(f"{k}={v!r}" for k, v in given.items())
        super().__init__(f"give at most one of version, as_of and tag (got {names})")


class ChangeRangeError(LogstoreError):
    """A change feed whose start comes after its end."""

    def __init__(self, start: Any, end: Any, start_version: int, end_version: int):
        self.start = start
        self.end = end
        self.start_version = start_version
        self.end_version = end_version
        super().__init__(
            f"change range is reversed: start {start!r} (version {start_version}) is after end {end!r} "
            f"(version {end_version}); give start <= end (diff(a, b) compares versions in either order)"
        )


class SchemaMismatchError(LogstoreError):
    def __init__(self, differences: list[str]):
        self.differences = list(differences)
        super().__init__("data does not match the table schema: " + "; ".join(self.differences))


class KeyRequiredError(LogstoreError):
    def __init__(self, table: str, operation: str):
        self.table = table
        self.operation = operation
        super().__init__(f"{operation} needs a key, and table {table!r} has none (create it with key=...)")


class KeyViolationError(LogstoreError):
    """Null or duplicate key values."""

    def __init__(self, key: list[str], problem: str, values: list[Any]):
        self.key = list(key)
        self.problem = problem
        self.values = list(values)
        shown = ", ".join(repr(v) for v in self.values[:5])
        more = f" and {len(self.values) - 5} more" if len(self.values) > 5 else ""
        super().__init__(f"{problem} in key {self.key}: {shown}{more}")


class InvalidExpressionError(LogstoreError):
    def __init__(self, expression: str, reason: str):
        self.expression = expression
        self.reason = reason
        super().__init__(f"invalid expression {expression!r}: {reason}")


class InvalidInputError(LogstoreError):
    def __init__(self, value: Any, reason: str):
        self.value = value
        self.reason = reason
        super().__init__(reason)


class CommitConflictError(LogstoreError):
    def __init__(self, table: str, base_version: int, head_version: int, attempts: int):
        self.table = table
        self.base_version = base_version
        self.head_version = head_version
        self.attempts = attempts
        super().__init__(
            f"could not commit to {table!r} after {attempts} attempts: other writers kept committing "
            f"(tried on version {base_version}, head is now {head_version})"
        )


class CorruptionError(LogstoreError):
    def __init__(self, path: str, version: int | None, reason: str):
        self.path = path
        self.version = version
        self.reason = reason
        where = f" (version {version})" if version is not None else ""
        super().__init__(f"corrupt file {path!r}{where}: {reason}")


class DamagedHeadError(CorruptionError):
    """The newest commit record is damaged: older versions read, writes refuse until repair() quarantines it."""

    def __init__(self, path: str, version: int, reason: str):
        super().__init__(path, version, reason)
        self.args = (
            f"{self.args[0]}; this is the newest version, so writes are refused: run table.repair() "
            "(CLI: logstore repair TABLE) to move the damaged record to the quarantine and continue from the version before it",
        )


class HeadMissingError(CorruptionError):
    """The head hint names a version whose commit record is gone: the newest commit(s) were lost."""

    def __init__(self, path: str, visible: int, hinted: int):
        self.visible = visible
        self.hinted = hinted
        super().__init__(
            path,
            visible + 1,
            f"commit record is missing: the head hint says version {hinted} was committed, but the log ends at version "
            f"{visible}; versions up to {visible} still read by number, latest reads and writes are refused: restore the "
            "record from a backup, or run table.repair() (CLI: logstore repair TABLE) to accept the loss and continue",
        )


class HeadUnreadableError(CorruptionError):
    """The latest version cannot be read (a change file it needs is missing or damaged), so writes cannot be computed."""

    def __init__(self, path: str, version: int, reason: str):
        super().__init__(path, version, reason)
        self.args = (
            f"{self.args[0]}; this is the latest version, so writes cannot be computed: restore an intact earlier "
            "version with table.restore(version=...) (CLI: logstore restore TABLE --version V), which commits its rows "
            "anew without reading the latest version",
        )


class RepairError(LogstoreError):
    """repair() cannot fix the table by moving records to the quarantine (the damage is not at the top of the log)."""

    def __init__(self, table: str, reason: str):
        self.table = table
        self.reason = reason
        super().__init__(f"cannot repair table {table!r}: {reason}")


class OutputExistsError(LogstoreError):
    def __init__(self, path: Any):
        self.path = str(path)
        super().__init__(f"{self.path!r} already exists; refusing to overwrite it (pass force=True to replace it)")


class SQLError(LogstoreError):
    """A query store.sql cannot run; `position` is the character offset in `query` it points at, if known."""

    def __init__(self, query: str, message: str, position: int | None = None):
        self.query = query
        self.position = position
        self.reason = message
        where = f" (at position {position})" if position is not None else ""
        super().__init__(f"{message}{where}")


class SQLSyntaxError(SQLError):
    """The query does not parse; the message is DuckDB's."""


class ReadOnlyError(SQLError):
    """A write statement: store.sql only reads, writes go through the Table API so that they are versioned."""

    def __init__(self, query: str, statement: str, tables: Iterable[str] = ()):
        self.statement = statement
        self.tables = sorted(tables)
        touched = f" touching {', '.join(repr(t) for t in self.tables)}" if self.tables else ""
        super().__init__(
            query,
            f"{statement} statements{touched} are refused: SQL over a store is read-only; write through the Table API "
            "(append, upsert, update, delete, overwrite, restore) so every change is a version",
        )


class FileAccessError(SQLError):
    """A query reached for a file outside the store: SQL over a store sees the store's tables only, by default."""

    def __init__(self, query: str, detail: str):
        self.detail = detail
        start = detail.find('"')
        end = detail.find('"', start + 1)
        self.path = detail[start + 1 : end] if 0 <= start < end else None  # DuckDB quotes the file it refused
        super().__init__(
            query,
            f"file access refused ({detail}): SQL over a store reads only the store's tables; pass allow_files=True "
            "(CLI: logstore sql --allow-files) to let the query read other files",
        )


class VersionFilesGoneError(CorruptionError):
    """A lazy read (to_duckdb, scan_polars) ran after files its plan reads were removed (vacuum) or went missing."""

    def __init__(self, table: str, version: int, path: str, reason: str):
        super().__init__(path, version, reason)
        self.table = table
        self.args = (
            f"version {version} of table {table!r} cannot be read through this lazy relation any more: its file "
            f"{path!r} is gone (removed by vacuum, or missing); read the version again (to_duckdb, scan_polars) to "
            "plan it over the files it needs now",
        )


class InputValueError(InvalidInputError):
    """A value in an input file that does not fit its column (e.g. a date that is not ISO 8601 while no format was
    named, or 'abc' for a BIGINT column). `line` is the line of a CSV or NDJSON file (DuckDB's count for CSV: a quoted
    value spanning lines counts as one), or the record number of a JSON array (`unit` says which)."""

    def __init__(self, source: Any, *, line: int, column: str, value: Any, reason: str, unit: str = "line"):
        self.source = str(source)
        self.line = line
        self.column = column
        self.unit = unit
        super().__init__(value, f"{self.source}: {unit} {line}, column {column!r}: {reason}")


class TableNameCollisionError(TableExistsError):
    """A new table whose name differs from an existing table's only by case: SQL names (store.connect's views) and
    some file systems ignore case, so the two would collide."""

    def __init__(self, name: str, existing: str):
        super().__init__(name)
        self.existing = existing
        self.args = (
            f"table {name!r} differs only by case from the existing table {existing!r}; table names are "
            "case-insensitive in SQL and on some file systems, so pick another name",
        )


class StorageError(LogstoreError):
    """The store cannot be reached or refuses a request (unreachable endpoint, missing bucket, bad credentials)."""

    def __init__(self, location: str, operation: str, reason: str):
        self.location = location
        self.operation = operation
        self.reason = reason
        super().__init__(f"store {location!r}: {operation} failed: {reason}")


class DivergedError(LogstoreError):
    """Push or pull found the two sides with different histories of one table: different commits (or tags) under the
    same version number (or tag name). Nothing was changed on either side (or, for a commit that landed on the
    destination while sending, nothing after it)."""

    def __init__(self, table: str, version: int | None, reason: str, *, tag: str | None = None):
        self.table = table
        self.version = version
        self.tag = tag
        self.reason = reason
        where = f"tag {tag!r}" if tag is not None else f"version {version}"
        super().__init__(
            f"table {table!r} has diverged at {where}: {reason}; push and pull only fast-forward, so nothing was sent "
            "(bring one side in line, e.g. clone again, or push the table under another name)"
        )


class RemoteNotFoundError(LogstoreError):
    """No remote of that name is configured in the store (or none at all, or several and none named)."""

    def __init__(self, name: str | None, known: Iterable[str]):
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "none"
        if name is None:
            how = "none is configured (add one with store.add_remote / `logstore remote add NAME URL`)" if not self.known else "name one"
            super().__init__(f"no remote given and no 'origin' among the remotes ({listed}): {how}")
        else:
            super().__init__(f"no remote {name!r} in this store (known remotes: {listed})")


class RemoteExistsError(LogstoreError):
    def __init__(self, name: str, url: str):
        self.name = name
        self.url = url
        super().__init__(f"remote {name!r} already exists (URL {url!r}); remove it first")


class DatasetURIError(InvalidInputError):
    """A dataset URI (logstore/uri.py) that cannot be parsed: not `logstore+<location>#table=...&version=...&fingerprint=...`."""

    def __init__(self, uri: Any, reason: str):
        self.uri = uri
        super().__init__(uri, f"invalid dataset URI {uri!r}: {reason}")


class ExtraNotInstalledError(LogstoreError, ImportError):
    """An integration needs an optional dependency that is not installed; names the extra that brings it."""

    def __init__(self, extra: str, module: str):
        self.extra = extra
        self.module = module
        super().__init__(f"this needs {module}, which is not installed: pip install 'logstore-timetravel[{extra}]'")


class RunInputNotFoundError(LogstoreError):
    """An experiment-tracker run holds no logstore input of that name (or several, and none was named)."""

    def __init__(self, run: str, name: str | None, known: Iterable[str]):
        self.run = run
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "none"
        if not self.known:
            what = "no logstore input"
        elif name is not None and name not in self.known:
            what = f"no logstore input named {name!r}"
        else:
            what = f"several logstore inputs named {name!r}" if name is not None else "several logstore inputs and no name was given"
        super().__init__(f"run {run!r} has {what} (its logstore inputs: {listed})")


class MergeMatchError(LogstoreError):
    """A merge in which two or more source rows match the same target row (Delta Lake's rule): nothing written."""

    def __init__(self, table: str, key: list[str], values: list[Any]):
        self.table = table
        self.key = list(key)
        self.values = list(values)
        shown = ", ".join(repr(v) for v in self.values[:5])
        more = f" and {len(self.values) - 5} more" if len(self.values) > 5 else ""
        super().__init__(
            f"merge into {table!r}: several source rows match the same target row ({self.key} = {shown}{more}); "
            "make the source's rows distinct per target row, nothing was written"
        )


class FolderInputError(InvalidInputError):
    """A folder (or a file in it) that `add_files` cannot take: missing, a symbolic link, unreadable, a name that is
    not UTF-8, not a regular file, or changed while it was being read (filetable.py). Nothing was committed."""

    def __init__(self, path: Any, reason: str):
        self.path = str(path)
        super().__init__(path, reason)


class NotAFileTableError(LogstoreError):
    def __init__(self, table: str):
        self.table = table
        super().__init__(f"table {table!r} is not a file table (create one with `logstore add`)")


class FileNotInVersionError(LogstoreError):
    def __init__(self, table: str, path: str, version: int):
        self.table = table
        self.path = path
        self.version = version
        super().__init__(f"no file {path!r} in version {version} of file table {table!r}")


class VersionExpiredError(LogstoreError):
    """A version older than the table's retention cut-off (expire): it is listed in history but no longer readable."""

    def __init__(self, version: int, cutoff: int, cutoff_timestamp: str | None = None):
        self.version = version
        self.cutoff = cutoff
        self.cutoff_timestamp = cutoff_timestamp
        at = f" (committed {cutoff_timestamp})" if cutoff_timestamp else ""
        super().__init__(f"version {version} has expired: versions before {cutoff}{at} are no longer readable (table retention)")


class SchemaChangeError(InvalidInputError):
    """An ALTER that logstore refuses (unknown or key column, a narrowing cast, clashing names, ...); nothing written.
    `value` is the offending column name, type or specification."""


class FileTableWriteError(LogstoreError):
    """A write of rows or columns from the caller's data into a file table, whose rows change only by add_files
    (they must name blobs the store holds), restore and purge: nothing written."""

    def __init__(self, table: str, operation: str):
        self.table = table
        self.operation = operation
        super().__init__(f"table {table!r} is a file table: {operation} is refused; its files change with add_files (`logstore add`)")
