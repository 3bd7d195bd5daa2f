"""logstore: a time-travel dataset store that versions operations, not copies."""

from .changes import DiffSummary
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
