"""logstore: a time-travel dataset store that versions operations, not copies."""

from .errors import (
    CommitConflictError,
    CorruptionError,
    InvalidExpressionError,
    InvalidInputError,
    InvalidNameError,
    KeyRequiredError,
    KeyViolationError,
    LogstoreError,
    NotAStoreError,
    OutputExistsError,
    SchemaMismatchError,
    SelectorError,
    StoreExistsError,
    StoreNotFoundError,
    TableExistsError,
    TableNotFoundError,
    TagExistsError,
    TagNotFoundError,
    TimestampError,
    VersionNotFoundError,
)
from .changes import ChangeRangeError, DiffSummary
from .files import read_file, read_files, write_file
from .info import TableInfo
from .log import Commit
from .readers import read_arrow, read_pandas, read_polars, scan_polars
from .store import Store, init, open
from .table import Table

__version__ = "0.1.0"

__all__ = [
    "ChangeRangeError",
    "Commit",
    "CommitConflictError",
    "DiffSummary",
    "CorruptionError",
    "InvalidExpressionError",
    "InvalidInputError",
    "InvalidNameError",
    "KeyRequiredError",
    "KeyViolationError",
    "LogstoreError",
    "NotAStoreError",
    "OutputExistsError",
    "SchemaMismatchError",
    "SelectorError",
    "Store",
    "StoreExistsError",
    "StoreNotFoundError",
    "Table",
    "TableInfo",
    "TableExistsError",
    "TableNotFoundError",
    "TagExistsError",
    "TagNotFoundError",
    "TimestampError",
    "VersionNotFoundError",
    "__version__",
    "init",
    "open",
    "read_arrow",
    "read_file",
    "read_files",
    "read_pandas",
    "read_polars",
    "scan_polars",
    "write_file",
]
