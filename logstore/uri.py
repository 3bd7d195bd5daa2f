"""Dataset URIs: one string naming a store, a table, an exact version of it and that version's content fingerprint,
for experiment trackers to record ("which data did this model see?") and for anyone to read back later.

    logstore+<store location>#table=<table>&version=<version>&fingerprint=<16 hex digits>

- `<store location>` is where the store was when the URI was made: `file://` and the absolute path of a local store
  (`logstore+file:///data/my-store`), or the object-store URL it was opened with (`logstore+s3://bucket/prefix`,
  gs://, az://, memory://). It is percent-encoded (RFC 3986): every byte outside the letters, digits and
  `-._~/:@!$&'()*+,;=` is written `%XX` (a local path as its file-system bytes, a URL as UTF-8), so `#`, `?`, `%`,
  spaces and non-ASCII characters never appear raw and the first `#` always ends the location; decoding gives the
  location back exactly.
- The fragment holds exactly the three fields, in this order: the table name (names are plain: letters, digits,
  `_.-`), the version number (decimal digits) and the fingerprint (fingerprint.py: 16 lower-case hex digits). Never a
  tag or a moment: a URI names one immutable version.

Resolving (`resolve`, `read`): the store is opened at `store=` if given (a location or an open Store), else at the
location the environment variable LOGSTORE_URI_STORES maps the URI's location to (a JSON object
`{"<old location>": "<new location>", ...}`, locations compared as absolute paths or as URLs without a trailing
`/`), else at the URI's own location. Whatever store is opened, the version's commit record must carry the URI's
fingerprint (CorruptionError if not: another store, another table of that name, or a rewritten history), and `read`
also checks the fingerprint of the very rows it returns. So a copied directory or a pushed remote is a valid place
to resolve a URI from: they hold the same records.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, unquote_to_bytes

import pyarrow as pa

from . import expiry, fingerprint, layout, names, planner, selectors
from .errors import CorruptionError, DatasetURIError, InvalidInputError, InvalidNameError
from .materialize import ROW_ID
from .storage import OBJECT_SCHEMES, LocalStorage

if TYPE_CHECKING:
    from .planner import TableFiles
    from .scan import ScanPlan
    from .selectors import Moment, Tag, Version
    from .store import Location, Store
    from .table import Table

SCHEME = "logstore+"
STORES_ENV = "LOGSTORE_URI_STORES"
FIELDS = ("table", "version", "fingerprint")
_SAFE = "/:@!$&'()*+,;=~"  # with letters, digits and -._ (always safe): RFC 3986's unreserved and sub-delims, '/', ':', '@'
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class DatasetURI:
    """A parsed dataset URI: the store's location (an absolute local path or an object-store URL), the table, the
    version and its fingerprint. `str()` gives the URI back."""

    location: str
    table: str
    version: int
    fingerprint: str
    local: bool  # the location is a local path (written as a file:// URL)

    def __str__(self) -> str:
        if self.local:
            where = "file://" + quote(os.fsencode(self.location), safe=_SAFE)
        else:
            where = quote(self.location, safe=_SAFE)
        return f"{SCHEME}{where}#table={self.table}&version={self.version}&fingerprint={self.fingerprint}"


def parse(text: object) -> DatasetURI:
    """The parts of a dataset URI; DatasetURIError naming the URI and what is wrong with it."""
    if not isinstance(text, str):
        raise DatasetURIError(text, f"a dataset URI is a string, not {type(text).__name__}")
    if not text.startswith(SCHEME):
        raise DatasetURIError(text, f"a dataset URI starts with {SCHEME!r}")
    where, sep, fragment = text[len(SCHEME):].partition("#")
    if not sep:
        raise DatasetURIError(text, "no '#table=...&version=...&fingerprint=...' after the store location")
    location, local = _location(text, where)
    values = _fields(text, fragment)
    try:
        table = names.check("table", values["table"])
    except InvalidNameError:
        raise DatasetURIError(text, f"invalid table name {values['table']!r}") from None
    version = values["version"]
    if not (version.isascii() and version.isdigit()):
        raise DatasetURIError(text, f"version must be a decimal number, not {version!r}")
    digest = values["fingerprint"]
    if len(digest) != 16 or not set(digest) <= _HEX:
        raise DatasetURIError(text, f"fingerprint must be 16 lower-case hex digits, not {digest!r}")
    return DatasetURI(location, table, int(version), digest, local)


def _location(text: str, where: str) -> tuple[str, bool]:
    """The decoded store location of a URI and whether it is a local path."""
    scheme = where.split("://", 1)[0].lower() if "://" in where else ""
    if scheme == "file":
        path = os.fsdecode(unquote_to_bytes(where[len("file://"):]))
        if not path.startswith("/"):
            raise DatasetURIError(text, "a file:// store location must be an absolute path (file:///...)")
        return path, True
    if scheme not in OBJECT_SCHEMES:
        raise DatasetURIError(text, f"unsupported store location {where!r}: a file:// path or an s3://, gs://, az:// or memory:// URL")
    return unquote(where, errors="strict"), False


def _fields(text: str, fragment: str) -> dict[str, str]:
    parts = [p.partition("=") for p in fragment.split("&")]
    keys = [k for k, _, _ in parts]
    if keys != list(FIELDS) or any(not sep for _, sep, _ in parts):
        raise DatasetURIError(text, f"the fragment must be exactly 'table=...&version=...&fingerprint=...', not {fragment!r}")
    return {k: unquote(v) for k, _, v in parts}


def of_table(table: Table, *, version: Version | None = None, as_of: Moment | None = None, tag: Tag | None = None) -> str:
    """The dataset URI of one version of `table` (the latest by default), resolved to its number."""
    files = table._files
    number = selectors.resolve(files, version, as_of=as_of, tag=tag)
    expiry.check(files, number)  # a URI names rows someone can read: not those of an expired version
    storage = files.storage
    local = isinstance(storage, LocalStorage)
    location = str(storage.root) if isinstance(storage, LocalStorage) else str(storage.location)
    return str(DatasetURI(location, table.name, number, version_fingerprint(files, number), local))


def version_fingerprint(files: TableFiles, version: int) -> str:
    """The content fingerprint of `version` as its record gives it (for a record written before fingerprints, by
    materializing the version once)."""
    known = files.log.read(version).fingerprint
    if known is not None:
        return known
    return fingerprint.encode(fingerprint.of_plan(files.connection(), planner.checked_plan(files, version)))


def resolve(uri: str, *, store: Store | Location | None = None, storage_options: dict[str, Any] | None = None) -> tuple[Store, Table, int]:
    """(store, table, version) that `uri` names, opened at `store` if given (a Store or a location), else where
    LOGSTORE_URI_STORES maps its location, else at its location; CorruptionError if that version's record does not
    carry the URI's fingerprint."""
    parsed = parse(uri)
    opened = _open(parsed, store, storage_options)
    table = opened.table(parsed.table)
    version = selectors.resolve(table._files, parsed.version)
    found = version_fingerprint(table._files, version)
    if found != parsed.fingerprint:
        path = layout.join(table._files.prefix, layout.log_record(version))
        raise CorruptionError(
            path, version,
            f"the URI names fingerprint {parsed.fingerprint}, this store's version {version} of table {parsed.table!r} has "
            f"{found}: it is not the data the URI was made from (another store or table, or a rewritten history)",
        )
    return opened, table, version


def read(uri: str, *, store: Store | Location | None = None, storage_options: dict[str, Any] | None = None) -> pa.Table:
    """Exactly the rows of the version `uri` names, in the table's row order, after checking that they have the
    URI's fingerprint (CorruptionError if not); see resolve for where the store is opened."""
    _, table, version = resolve(uri, store=store, storage_options=storage_options)
    files = table._files
    expected = parse(uri).fingerprint

    def run(plan: ScanPlan) -> pa.Table:
        if not plan.columns:  # created without columns: no rows to hash
            return pa.table({})
        con = files.connection().cursor()
        rows = con.sql(plan.select_sql(row_id=True)).to_arrow_table()
        _check_rows(con, files, version, plan, rows, expected)
        return rows.drop_columns([ROW_ID])

    result: pa.Table = planner.read(files, version, run, build=planner.scan_plan)
    return result


_stable: bool | None = None


def _check_rows(con: Any, files: TableFiles, version: int, plan: ScanPlan, rows: pa.Table, expected: str) -> None:
    """CorruptionError unless `rows` (with _row_id) have fingerprint `expected` (skipped, as verify does, by a
    DuckDB whose hash() differs from the one fingerprints are made with: the record was checked already)."""
    global _stable
    if _stable is None:
        _stable = fingerprint.hash_is_stable(con)
    if not _stable:
        return
    name = "logstore_uri_rows"
    con.register(name, rows)
    try:
        actual = fingerprint.encode(fingerprint._value(con, fingerprint.sum_sql(name, plan.columns)))
    finally:
        con.unregister(name)
    if actual != expected:
        path = layout.join(files.prefix, layout.log_record(version))
        raise CorruptionError(path, version, f"the rows read have fingerprint {actual}, the URI names {expected}")


def _open(parsed: DatasetURI, store: Store | Location | None, storage_options: dict[str, Any] | None) -> Store:
    from .store import Store
    from .store import open as open_store

    if isinstance(store, Store):
        return store
    if store is not None:
        return open_store(store, storage_options=storage_options)
    moved = _mapped(parsed)
    return open_store(moved if moved is not None else parsed.location, storage_options=storage_options)


def _mapped(parsed: DatasetURI) -> str | None:
    """Where LOGSTORE_URI_STORES says the store at the URI's location is now (None if it names no new place)."""
    text = os.environ.get(STORES_ENV, "").strip()
    if not text:
        return None
    try:
        mapping = json.loads(text)
    except ValueError as e:
        raise InvalidInputError(text, f"{STORES_ENV} must be a JSON object {{\"old location\": \"new location\"}}: {e}") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise InvalidInputError(text, f"{STORES_ENV} must be a JSON object mapping store locations to store locations")
    wanted = _normal(parsed.location)
    for old, new in mapping.items():
        if _normal(old) == wanted:
            return new
    return None


def _normal(location: str) -> str:
    """A location as compared in LOGSTORE_URI_STORES: a local path absolute and normalized, a URL without its
    trailing '/'."""
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    if scheme in ("", "file"):
        path = location[len("file://"):] if scheme == "file" else location
        return os.path.normpath(os.path.abspath(path))
    return location.rstrip("/")
