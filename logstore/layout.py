"""Every on-disk name of a store and of its tables, and the columns of change rows: docs/format.md, "Layout".

Names are built and parsed here and nowhere else. Paths are '/'-separated; the functions building a table's file
names return paths relative to the table directory (as records store them), and `join` puts a table directory
(`table_dir`) in front. Version numbers in names are zero-padded to DIGITS digits, so lexical order is numeric order.
"""

from __future__ import annotations

import uuid

DIGITS = 20

# the store (docs/format.md "Layout")
MARKER = "logstore.json"
STAGING_DIR = "_staging"
TABLES_DIR = "tables"
REMOTES = "remotes.json"  # the store's remotes (remote.py)

# a table's directory
LOG_DIR = "_log"  # commit records
HEAD_HINT = "_head.json"
TAG_DIR = "_tags"
SNAPSHOT_DIR = "_snapshots"  # snapshot records
DATA_DIR = "data"  # change files
SNAPSHOT_DATA_DIR = "snapshots"  # snapshot files
CHECKPOINT_DIR = "_checkpoints"
CHECKPOINT_SUFFIX = ".ckpt.zst"
COMPACTION_DIR = "_compactions"  # compaction records
COMPACTED_DATA_DIR = "compacted"  # compacted files
QUARANTINE_DIR = "_quarantine"
REPAIR_DIR = "_repairs"

RECORD_SUFFIX = ".json"
PARQUET_SUFFIX = ".parquet"

# the columns of change files before the table's own (docs/format.md "Change files"), and the `_op` codes
ROW_ID = "_row_id"
OP = "_op"
VERSION = "_version"
INSERT, UPDATE, DELETE = "I", "U", "D"


def join(*parts: str) -> str:
    """A path from a directory and the names below it, e.g. join(table_dir("t"), log_record(3))."""
    return "/".join(parts)


def table_dir(table: str) -> str:
    return join(TABLES_DIR, table)


def number(version: int) -> str:
    """A version as it appears in file names."""
    return f"{version:0{DIGITS}d}"


# --- names of a table's files, relative to its directory ------------------------------------------------------


def log_name(version: int) -> str:
    """The file name of a commit record in `_log/`."""
    return number(version) + RECORD_SUFFIX


def log_record(version: int) -> str:
    return join(LOG_DIR, log_name(version))


def tag_record(tag: str) -> str:
    return join(TAG_DIR, tag + RECORD_SUFFIX)


def snapshot_record(version: int) -> str:
    return join(SNAPSHOT_DIR, number(version) + RECORD_SUFFIX)


def new_change_file(version: int) -> str:
    """A fresh, unique name for a change file written by the commit of `version`."""
    return join(DATA_DIR, f"{number(version)}-{uuid.uuid4().hex}{PARQUET_SUFFIX}")


def new_snapshot_file(version: int) -> str:
    return join(SNAPSHOT_DATA_DIR, f"{number(version)}-{uuid.uuid4().hex}{PARQUET_SUFFIX}")


def checkpoint_name(last: int) -> str:
    """The file name of the log checkpoint of the segment ending at version `last`."""
    return number(last) + CHECKPOINT_SUFFIX


def checkpoint_file(last: int) -> str:
    return join(CHECKPOINT_DIR, checkpoint_name(last))


def compaction_name(first: int, last: int) -> str:
    """The file name of the compaction record of block first..last."""
    return f"{number(first)}-{number(last)}{RECORD_SUFFIX}"


def compaction_record(first: int, last: int) -> str:
    return join(COMPACTION_DIR, compaction_name(first, last))


def new_compacted_file(first: int, last: int) -> str:
    return join(COMPACTED_DATA_DIR, f"{number(first)}-{number(last)}-{uuid.uuid4().hex}{PARQUET_SUFFIX}")


def repair_stamp(timestamp: str) -> str:
    """The `<stamp>` of a repair, `YYYYMMDDTHHMMSSffffffZ`, from its time in the on-disk form (timestamps.encode)."""
    return timestamp.replace(":", "").replace("-", "").replace(".", "")


def quarantined(stamp: str, relative: str) -> str:
    """Where repair `stamp` moves the file at `relative`."""
    return join(QUARANTINE_DIR, stamp, relative)


def repair_record(stamp: str) -> str:
    return join(REPAIR_DIR, stamp + RECORD_SUFFIX)


# --- parsing names back ---------------------------------------------------------------------------------------


def _digits(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def record_version(name: str) -> int | None:
    """The version of a commit or snapshot record's file name (`<digits>.json`), None if it is no such name."""
    return _digits(name[: -len(RECORD_SUFFIX)]) if name.endswith(RECORD_SUFFIX) else None


def record_versions(names) -> list[int]:
    """The versions of the record file names among `names` (a listing of `_log/` or `_snapshots/`), sorted."""
    return sorted(v for v in map(record_version, names) if v is not None)


def tag_of(name: str) -> str | None:
    """The tag a file name in `_tags/` stands for (not checked as a tag name), None if it is no record name."""
    return name[: -len(RECORD_SUFFIX)] if name.endswith(RECORD_SUFFIX) else None


def file_version(name: str) -> int | None:
    """The version in a change or snapshot file's name or path (`<version>-<uuid>.parquet`), None if it has none."""
    return _digits(name.rsplit("/", 1)[-1].split("-", 1)[0])


def checkpoint_last(name: str) -> int | None:
    """The version a name in `_checkpoints/` starts with (the last of its segment), None if it starts with none.

    Lenient (`7.tmp` gives 7): to check that a name is a checkpoint's, compare it with checkpoint_name()."""
    return _digits(name.split(".", 1)[0])


def compaction_block(name: str) -> tuple[int, int] | None:
    """The block (first, last) of a compaction record's file name, None if the name is not exactly one."""
    parts = name[: -len(RECORD_SUFFIX)].split("-") if name.endswith(RECORD_SUFFIX) else []
    if len(parts) != 2:
        return None
    first, last = _digits(parts[0]), _digits(parts[1])
    if first is None or last is None or compaction_name(first, last) != name:
        return None
    return first, last


def compacted_block(name: str) -> tuple[int, int] | None:
    """The block of a compacted file's name or path (`<first>-<last>-<uuid>.parquet`), None if it names none."""
    return compaction_block(name.rsplit("/", 1)[-1].rsplit("-", 1)[0] + RECORD_SUFFIX)
