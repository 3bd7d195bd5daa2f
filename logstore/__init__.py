"""logstore: a time-travel dataset store that versions operations, not copies.

The public names load on first use (PEP 562 `__getattr__`): `import logstore` costs the errors module only, and
a program (the CLI) pays for the modules of what it uses. `from logstore import X`, `logstore.X` and
`logstore.<submodule>` work as for eagerly imported names; type checkers read the TYPE_CHECKING imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ChangeRangeError,
    CommitConflictError,
    CorruptionError,
    DamagedHeadError,
    DatasetURIError,
    DivergedError,
    ExtraNotInstalledError,
    FileAccessError,
    FileNotInVersionError,
    FileTableWriteError,
    FolderInputError,
    HeadMissingError,
    HeadUnreadableError,
    InputValueError,
    InvalidExpressionError,
    InvalidInputError,
    InvalidNameError,
    KeyRequiredError,
    KeyViolationError,
    LogstoreError,
    MergeMatchError,
    NotAFileTableError,
    NotAStoreError,
    OutputExistsError,
    ReadOnlyError,
    RemoteExistsError,
    RemoteNotFoundError,
    RepairError,
    RunInputNotFoundError,
    SchemaChangeError,
    SchemaMismatchError,
    SelectorError,
    SQLError,
    SQLSyntaxError,
    StorageError,
    StoreExistsError,
    StoreNotFoundError,
    TableExistsError,
    TableNameCollisionError,
    TableNotFoundError,
    TagExistsError,
    TagNotFoundError,
    TimestampError,
    VersionExpiredError,
    VersionFilesGoneError,
    VersionNotFoundError,
)

if TYPE_CHECKING:
    from .changes import DiffSummary
    from .expiry import ExpireReport
    from .files import read_file, read_files, write_file
    from .fragments import Fragment
    from .info import TableInfo
    from .log import Commit
    from .merge import MergeBuilder, MergeCounts
    from .purge import PurgeReport
    from .readers import read_arrow, read_pandas, read_polars, scan_polars
    from .remote import Remote
    from .repair import RepairReport
    from .store import Store, clone, init, open
    from .stream import TableVersion
    from .sync import SyncProgress, SyncReport, TableSync
    from .table import Table
    from .uri import read as read_uri
    from .uri import resolve as resolve_uri
    from .vacuum import VacuumReport
    from .verify import VerifyReport

__version__ = "0.1.0"

# public name -> (module, its name there), imported by __getattr__ on first use
_LAZY = {
    "Commit": ("log", "Commit"),
    "DiffSummary": ("changes", "DiffSummary"),
    "ExpireReport": ("expiry", "ExpireReport"),
    "Fragment": ("fragments", "Fragment"),
    "MergeBuilder": ("merge", "MergeBuilder"),
    "MergeCounts": ("merge", "MergeCounts"),
    "PurgeReport": ("purge", "PurgeReport"),
    "Remote": ("remote", "Remote"),
    "RepairReport": ("repair", "RepairReport"),
    "Store": ("store", "Store"),
    "SyncProgress": ("sync", "SyncProgress"),
    "SyncReport": ("sync", "SyncReport"),
    "Table": ("table", "Table"),
    "TableInfo": ("info", "TableInfo"),
    "TableSync": ("sync", "TableSync"),
    "TableVersion": ("stream", "TableVersion"),
    "VacuumReport": ("vacuum", "VacuumReport"),
    "VerifyReport": ("verify", "VerifyReport"),
    "clone": ("store", "clone"),
    "init": ("store", "init"),
    "open": ("store", "open"),
    "read_arrow": ("readers", "read_arrow"),
    "read_file": ("files", "read_file"),
    "read_files": ("files", "read_files"),
    "read_pandas": ("readers", "read_pandas"),
    "read_polars": ("readers", "read_polars"),
    "read_uri": ("uri", "read"),
    "resolve_uri": ("uri", "resolve"),
    "scan_polars": ("readers", "scan_polars"),
    "write_file": ("files", "write_file"),
}

__all__ = [
    "ChangeRangeError",
    "Commit",
    "CommitConflictError",
    "CorruptionError",
    "DamagedHeadError",
    "DatasetURIError",
    "DiffSummary",
    "DivergedError",
    "ExpireReport",
    "ExtraNotInstalledError",
    "FileAccessError",
    "FileNotInVersionError",
    "FileTableWriteError",
    "FolderInputError",
    "Fragment",
    "HeadMissingError",
    "HeadUnreadableError",
    "InputValueError",
    "InvalidExpressionError",
    "InvalidInputError",
    "InvalidNameError",
    "KeyRequiredError",
    "KeyViolationError",
    "LogstoreError",
    "MergeBuilder",
    "MergeCounts",
    "MergeMatchError",


    "NotAFileTableError",
    "NotAStoreError",
    "OutputExistsError",
    "PurgeReport",
    "ReadOnlyError",
    "Remote",
    "RemoteExistsError",
    "RemoteNotFoundError",
    "RepairError",
    "RepairReport",
    "RunInputNotFoundError",
    "SQLError",
    "SQLSyntaxError",
    "SchemaChangeError",
    "SchemaMismatchError",
    "SelectorError",
    "StorageError",
    "Store",
    "StoreExistsError",
    "StoreNotFoundError",
    "SyncProgress",
    "SyncReport",
    "Table",
    "TableExistsError",
    "TableInfo",
    "TableNameCollisionError",
    "TableNotFoundError",
    "TableSync",
    "TableVersion",
    "TagExistsError",
    "TagNotFoundError",
    "TimestampError",
    "VacuumReport",
    "VerifyReport",
    "VersionExpiredError",
    "VersionFilesGoneError",
    "VersionNotFoundError",
    "__version__",
    "clone",
    "init",
    "open",
    "read_arrow",
    "read_file",
    "read_files",
    "read_pandas",
    "read_polars",
    "read_uri",
    "resolve_uri",
    "scan_polars",
    "write_file",
]


def __getattr__(name: str) -> Any:
    """A public name (or a submodule, `logstore.files`) imported on first use, then kept as a module global."""
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
