"""Compaction that keeps history: many small change files merged into few larger ones, every version unchanged.

Blocks. Versions are grouped into aligned blocks: the level-L block k holds versions k*F**L .. (k+1)*F**L - 1
(F = FANOUT = 10, L >= 1). Two blocks are either nested or disjoint, never partly overlapping, so concurrent
compactors, readers and vacuum can never disagree about which files stand for which versions.

A compaction of a block writes new Parquet files `compacted/<first>-<last>-<uuid>.parquet` holding exactly the
change rows of the block's versions, each row keeping its `_row_id`, `_op` and `_version` (sorted by `_version`,
then `_row_id`, so row-group statistics let a reader skip versions it does not need), and then publishes the
record `_compactions/<first>-<last>.json` with put-if-absent. Until the record exists nobody reads the new files;
once it exists it stands for the block's versions. That one put is the whole commit of a compaction: it changes no
version and adds none, and readers never see a half-compacted state.

Record (JSON, with the same self-checksum as commit records):
    {"format_version": 2, "first": f, "last": l, "level": L, "created": <timestamp>, "table_id": <the table's id>,
     "files":    [{"path", "rows", "size", "sha256", "inserts_only", "columns": [table columns held]}],
     "replaces": [paths of the input files this compaction made unnecessary]}
`files` may include big input files carried over unchanged (not rewritten); those are not in `replaces`.
`table_id` (format 2; absent in tables without an id and in records of format 1) must equal the log's: a record
with another table's id is treated as damaged (ignored by readers, protects what it might cover from vacuum).

Reading (the plan of version v over snapshot s): the versions s+1..v are covered left to right; for each version
the reader takes the largest block holding it whose record exists (and is intact) and whose files are intact (else
the next smaller such block, with a RuntimeWarning), else the files of the version's own commit record. The
materialization rule filters change rows by `s < _version <= v`, so a block reaching past either end of the range
gives the same answer as the original files.

Vacuum (vacuum.py): a file listed in some compaction record's `replaces` is needed by no reader once that record
exists (readers always prefer the covering block), apart from readers that planned before it was published: vacuum
removes it once the record is older than its minimum age, unless a reader still uses it (`standing`: the files of
the block standing for each version, else the version's own files). Files in `files` of an intact record are needed
until a larger intact record, itself older than the minimum age, stands for its versions (so a level-2 compaction
releases the level-1 compacted files it merged). Nothing a damaged record might cover is removed. Files under
`compacted/` that no record lists are leftovers of a compactor that crashed or lost a race. Never remove a
compaction record while any original of its versions is gone: vacuum removes no compaction record at all.

Automatic compaction: after a commit completes a block (version + 1 is a multiple of F**L), the committer compacts
it, level by level, if the block's files it would merge are small (mean size under AUTO_MAX_MEAN_BYTES * F**(L-1),
not counting a big file it carries over unchanged, such as a table's first 1M rows): with F = 10 a table of n
small commits keeps about 9 * log10(n) files per kind instead of n. Set LOGSTORE_AUTO_COMPACT=0 to turn it off.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import codec, evolution, integrity, layout, recent, threads, timestamps
from .commit import PUBLISH_WINDOW
from .errors import CorruptionError, LogstoreError
from .layout import COMPACTED_DATA_DIR, COMPACTION_DIR  # noqa: F401 - known by these names here too
from .layout import compaction_name as record_name  # noqa: F401 - the file name of the record of block first..last
from .log import DataFile
from .scan import integers

if TYPE_CHECKING:
    from .planner import TableFiles

FORMAT_VERSION = 2  # 2: records carry `table_id`
FANOUT = 10
MAX_LEVEL = 12
ROW_GROUP_ROWS = 65_536
CARRY_MIN_BYTES = 1 << 20  # an input at least this big, and bigger than all other inputs together, is kept as is
CARRY_ALWAYS_BYTES = 64 << 20  # an input this big is always kept as is
MAX_MERGE_BYTES = 512 << 20  # a block whose files to rewrite exceed this is not compacted
IN_MEMORY_BYTES = 64 << 20  # a merged file of inputs up to this size is encoded in memory (else through a staging file)
AUTO_MAX_MEAN_BYTES = 256 << 10  # automatic compaction only merges small files (this, times FANOUT per level above 1)


def auto_enabled() -> bool:
    return os.environ.get("LOGSTORE_AUTO_COMPACT", "1").strip().lower() not in ("0", "false", "no", "off")


def block(level: int, version: int) -> tuple[int, int]:
    size = FANOUT**level
    first = version // size * size
    return first, first + size - 1


def record_path(prefix: str, first: int, last: int) -> str:
    return layout.join(prefix, layout.compaction_record(first, last))


@dataclass(frozen=True)
class CompactedFile:
    file: DataFile
    columns: frozenset[str]  # the table columns the file holds

    def to_json(self) -> dict:
        return {**self.file.to_json(), "columns": sorted(self.columns)}

    @classmethod
    def from_json(cls, obj: dict) -> CompactedFile:
        return cls(DataFile.from_json(obj), frozenset(obj["columns"]))


@dataclass(frozen=True)
class CompactionRecord:
    first: int
    last: int
    level: int
    files: tuple[CompactedFile, ...]
    replaces: tuple[str, ...]
    created: str
    table_id: str | None = None  # the table's identity (None in tables without one, and in records of format 1)

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "first": self.first,
            "last": self.last,
            "level": self.level,
            "created": self.created,
            "files": [f.to_json() for f in self.files],
            "replaces": list(self.replaces),
            **({"table_id": self.table_id} if self.table_id is not None else {}),
        }

    @classmethod
    def from_json(cls, obj: dict) -> CompactionRecord:
        return cls(
            first=int(obj["first"]),
            last=int(obj["last"]),
            level=int(obj["level"]),
            files=tuple(CompactedFile.from_json(f) for f in obj["files"]),
            replaces=tuple(obj["replaces"]),
            created=str(obj["created"]),
            table_id=obj.get("table_id"),
        )

    def check_identity(self, table_id: str | None, path: str) -> None:
        """CorruptionError (naming the record's `path`) if the record carries another table's id (a record without
        one is accepted: format 1)."""
        if self.table_id is not None and self.table_id != table_id:
            raise CorruptionError(path, None, f"record belongs to another table (table_id {self.table_id}, the log's is {table_id})")

    def encode(self) -> bytes:
        return codec.encode(self.to_json())


# Records never change once published, so an intact one is cached for the life of the process.
_cache: dict[tuple[str, str], CompactionRecord] = {}  # by (storage location, record path)
_cache_lock = threading.Lock()
_warned: set[tuple[str, str]] = set()


def load(storage, prefix: str, first: int, last: int) -> CompactionRecord | None:
    """The compaction record of block first..last if it exists and is intact; None otherwise (warns if damaged)."""
    path = record_path(prefix, first, last)
    key = (storage.location, path)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        raw = storage.read(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        record = _parse(raw, path, (first, last), _identity_check(storage, prefix))
    except CorruptionError as e:
        if key not in _warned:
            _warned.add(key)
            warnings.warn(f"logstore: ignoring damaged compaction record {path}: {e.reason}", RuntimeWarning, stacklevel=3)
        return None
    with _cache_lock:
        _cache[key] = record
    return record


def _parse(raw: bytes, path: str, block: tuple[int, int] | None, check_identity) -> CompactionRecord:
    """The record stored at `path`, whose name gives `block`; CorruptionError if it is damaged, says another block,
    or `check_identity` (from _identity_check) finds it another table's."""
    record = codec.parse(raw, CompactionRecord.from_json, path=path, version=None, what="compaction record")
    if (record.first, record.last) != block:
        raise CorruptionError(path, None, f"record says versions {record.first}..{record.last}")
    check_identity(record, path)
    return record


def _identity_check(storage, prefix: str):
    """A function (record, path) raising CorruptionError for a record of another table than the one version 0's
    stored record names (checking nothing if that record cannot be read: the table cannot be read either, verify
    reports it)."""
    from .checkpoint import UncheckedError, stored_record

    try:
        table_id = stored_record(storage, prefix, 0).get("table_id")
    except UncheckedError:
        return lambda record, path: None
    return lambda record, path: record.check_identity(table_id, path)


def top_level(head: int) -> int:
    """The highest level a block can have in a table whose latest version is `head`."""
    top = 0
    while top < MAX_LEVEL and FANOUT ** (top + 1) <= head + 1:
        top += 1
    return top


def standing(lookup, version: int, head: int) -> CompactionRecord | None:
    """The record readers use for `version`: the largest complete block holding it whose intact record `lookup`
    (block -> record or None) finds; None if none does (then the version's own files stand for it)."""
    for level in range(top_level(head), 0, -1):
        b = block(level, version)
        if b[1] <= head:
            found = lookup(b)
            if found is not None:
                return found
    return None


@dataclass
class Scan:
    """Every compaction record of a table, read from storage now (no cache): verify and vacuum trust no cache."""

    records: dict[tuple[int, int], CompactionRecord]  # intact records by block
    damaged: dict[str, str]  # record file name -> what is wrong with it

    def damaged_blocks(self) -> list[tuple[int, int] | None]:
        """The blocks of the damaged records (None for a file whose name gives no block: it might cover anything)."""
        return [layout.compaction_block(name) for name in self.damaged]

    def standing(self, version: int, head: int) -> CompactionRecord | None:
        return standing(self.records.get, version, head)


def scan(storage, prefix: str) -> Scan:
    """Read every record under `_compactions/`: intact ones by block, and the damaged ones with the reason."""
    found = Scan({}, {})
    directory = layout.join(prefix, layout.COMPACTION_DIR)
    check_identity = None
    for name in storage.list(directory):
        path = layout.join(directory, name)
        try:
            raw = storage.read(path)
            check_identity = check_identity or _identity_check(storage, prefix)
            record = _parse(raw, path, layout.compaction_block(name), check_identity)
        except OSError as e:
            found.damaged[name] = str(e) or type(e).__name__
            continue
        except CorruptionError as e:
            found.damaged[name] = e.reason
            continue
        found.records[(record.first, record.last)] = record
    return found


@dataclass(frozen=True)
class Unit:
    """Versions first..last and the files that stand for them: a compacted block, or one version's own files."""

    first: int
    last: int
    files: tuple[CompactedFile, ...]
    compaction: CompactionRecord | None = None


def cover(log, first: int, last: int, head: int) -> list[Unit]:
    """Units standing for versions first..last, left to right: the largest compacted block holding each version
    whose record and files are intact, else the version's own files. `head` bounds which blocks can be complete.

    A block whose files fail their integrity check (integrity.check_file: missing, wrong size, wrong SHA-256) is
    passed over with a RuntimeWarning for the next smaller intact block or the versions' own files; if a version's
    own files are not intact either, the damaged block's CorruptionError is raised.
    """
    storage, prefix = log.storage, log.prefix
    # the caller's head may be stale (or unknown to a fresh Log): a block it would not allow may stand for versions
    # whose own files vacuum has removed
    known = log.known_head if log.known_head is not None else log.head_version()
    head = max(head, known or 0)
    seen: dict[tuple[int, int], CompactionRecord | None] = {}

    def lookup(b: tuple[int, int]) -> CompactionRecord | None:
        if b not in seen:
            seen[b] = load(storage, prefix, *b)
        return seen[b]

    checked: dict[tuple[int, int], CorruptionError | None] = {}

    def damage(record: CompactionRecord) -> CorruptionError | None:
        b = (record.first, record.last)
        if b not in checked:
            checked[b] = files_damage(storage, prefix, record.files, None, what=f"compacted file (versions {b[0]}..{b[1]})")
        return checked[b]

    units: list[Unit] = []
    plain: list[int] = []

    def flush():
        if plain:
            for r in log.read_range(plain[0], plain[-1]):
                held = frozenset(c.name for c in r.columns)
                units.append(Unit(r.version, r.version, tuple(CompactedFile(f, held) for f in r.files)))
            plain.clear()

    x = first
    while x <= last:
        found, passed_over = _standing_intact(lookup, damage, x, head)
        if passed_over is not None:
            _fall_back(log, x, found, passed_over)
        if found is None:
            plain.append(x)
            x += 1
        else:
            flush()
            units.append(Unit(found.first, found.last, found.files, found))
            x = found.last + 1
    flush()
    return units


def _standing_intact(lookup, damage, version: int, head: int) -> tuple[CompactionRecord | None, CorruptionError | None]:
    """(the largest complete block holding `version` whose record and files are intact, or None; the error of the
    first larger block passed over because its files are damaged, or None)."""
    passed_over = None
    for level in range(top_level(head), 0, -1):
        b = block(level, version)
        found = lookup(b) if b[1] <= head else None
        if found is not None:
            error = damage(found)
            if error is None:
                return found, passed_over
            passed_over = passed_over or error
    return None, passed_over


def files_damage(storage, prefix: str, files, version: int | None, *, what: str) -> CorruptionError | None:
    """The CorruptionError of the first of `files` (CompactedFile or DataFile) that fails integrity.check_file."""
    for f in files:
        f = getattr(f, "file", f)
        try:
            integrity.check_file(storage, layout.join(prefix, f.path), f.size, f.sha256, version, what=what)
        except CorruptionError as e:
            return e
    return None


def _fall_back(log, version: int, found: CompactionRecord | None, passed_over: CorruptionError) -> None:
    """Warn (once per damaged file) that versions are read from a smaller block or their own files instead of a
    damaged block; raise the damaged block's error if `version`'s own files, when nothing smaller stands in, are not
    intact either."""
    if found is None:
        own = log.read(version).files
        if files_damage(log.storage, log.prefix, own, version, what="change file") is not None:
            raise passed_over
    key = (log.storage.location, passed_over.path)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"logstore: {passed_over}; reading its versions from smaller blocks or their own change files instead", RuntimeWarning, stacklevel=4)


def compact_block(files: TableFiles, level: int, first: int, *, only_small: bool = False) -> CompactionRecord | None:
    """Compact the level-`level` block starting at `first`; returns its record (new or existing), or None if there
    is nothing worth doing (already covered by one unit, too big, mixed column types) or the block is incomplete."""
    storage, prefix, log = files.storage, files.prefix, files.log
    first, last = block(level, first)
    head = log.head_version()
    if head is None or last > head:
        return None
    if first < log.read(head).properties.get("expired_before", 0):
        return None  # the block reaches into expired versions, whose files vacuum may have reclaimed (expiry.py)
    existing = load(storage, prefix, first, last)
    if existing is not None:
        return existing
    units = cover(log, first, last, head)
    if len(units) == 1 and units[0].compaction is not None and units[0].first <= first and units[0].last >= last:
        return None  # a larger block already stands for these versions
    if not evolution.consistent(r.columns for r in log.read_range(first, last)):
        return None  # an ALTER renamed, retyped or re-added a column inside the block: its files stay as they are
    inputs = [f for u in units for f in u.files]
    written: list[CompactedFile] = []
    started = time.monotonic()
    if not inputs:
        listed: tuple[CompactedFile, ...] = ()
        replaces: tuple[str, ...] = ()
    else:
        total = sum(f.file.size for f in inputs)
        carried = [f for f in inputs if f.file.size >= CARRY_ALWAYS_BYTES or (f.file.size >= CARRY_MIN_BYTES and 2 * f.file.size > total)]
        carried = _whole_versions(carried, inputs)
        rest = [f for f in inputs if f not in carried]
        if only_small and (not rest or sum(f.file.size for f in rest) / len(rest) > AUTO_MAX_MEAN_BYTES * FANOUT ** (level - 1)):
            return None  # automatic compaction merges small files (a level's inputs are the blocks of the level below; a big file it would carry over does not count)
        if sum(f.file.size for f in rest) > MAX_MERGE_BYTES:
            return None
        replaces_list: list[str] = []
        groups = [[f for f in rest if f.file.inserts_only == inserts_only] for inserts_only in (True, False)]
        carried += [group[0] for group in groups if len(group) == 1]
        groups = [group for group in groups if len(group) > 1]
        try:  # the two groups (inserts only, the rest) merged at once: encoding and fsyncs release the GIL
            merged = threads.run_all([functools.partial(_merge, files, first, last, group, written) for group in groups])
            storage.sync_directories([layout.join(prefix, f.file.path) for f in written])
        except BaseException:
            _delete(storage, prefix, written)
            raise
        if any(m is None for m in merged):  # column types differ across the block: leave it to smaller blocks
            _delete(storage, prefix, written)
            return None
        for group in groups:
            replaces_list.extend(f.file.path for f in group)
        made = tuple(m for m in merged if m is not None)  # in group order (inserts only first), not finishing order
        listed = tuple(sorted(carried, key=lambda f: f.file.path)) + made
        replaces = tuple(replaces_list)
    record = CompactionRecord(first, last, level, listed, replaces, timestamps.encode(timestamps.now()), log.table_id())
    if time.monotonic() - started >= PUBLISH_WINDOW:  # vacuum may already treat its files as a dead compactor's
        _delete(storage, prefix, written)
        return None
    if not storage.put_if_absent(record_path(prefix, first, last), record.encode()):
        _delete(storage, prefix, written)  # another compactor published this block first
        return load(storage, prefix, first, last)
    return record


def _whole_versions(carried: list[CompactedFile], inputs: list[CompactedFile]) -> list[CompactedFile]:
    """`carried` without the change files of a version written as several files unless all of them are carried: a
    reader takes such a version's rows from all its own files or from the merged file, never from both (format 4)."""

    def own(f: CompactedFile) -> int | None:
        return layout.file_version(f.file.path) if f.file.path.startswith(layout.DATA_DIR + "/") else None

    counts = Counter(own(f) for f in inputs)
    split = {v for v, n in counts.items() if v is not None and n > 1}
    broken = {v for v in split if any(own(f) == v and f not in carried for f in inputs)}
    return [f for f in carried if own(f) not in broken]


def _delete(storage, prefix: str, files) -> None:
    for f in files:
        storage.delete(layout.join(prefix, f.file.path))


def _merge(files: TableFiles, first: int, last: int, group: list[CompactedFile], written: list[CompactedFile]) -> CompactedFile | None:
    """Merge the group's files into one compacted file, published (its directory entry not yet fsynced) and added to
    `written` (also when a later step fails, so that the caller can remove it); None if column types differ."""
    from .commit import write_parquet

    storage, prefix = files.storage, files.prefix
    parts = _read_inputs(storage, prefix, group)
    try:
        merged = pa.concat_tables(parts, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    fixed = [n for n in merged.column_names if n.startswith("_")]
    leading = (layout.ROW_ID, layout.OP, layout.VERSION)
    order = [n for n in leading if n in fixed] + [n for n in fixed if n not in leading]
    merged = merged.select(order + [n for n in merged.column_names if not n.startswith("_")])
    if not _ordered(merged):
        merged = merged.sort_by([(layout.VERSION, "ascending"), (layout.ROW_ID, "ascending")])
    relative = layout.new_compacted_file(first, last)
    path = layout.join(prefix, relative)
    inserts_only = group[0].file.inserts_only
    held = frozenset().union(*(f.columns for f in group))
    in_memory = sum(f.file.size for f in group) <= IN_MEMORY_BYTES
    size, digest = write_parquet(storage, path, merged, row_group_size=ROW_GROUP_ROWS, sync_directory=False, in_memory=in_memory)
    done = CompactedFile(DataFile(relative, merged.num_rows, size, digest, inserts_only), held)
    written.append(done)
    return done


def _read_inputs(storage, prefix: str, group: list[CompactedFile]) -> list[pa.Table]:
    """The rows of the block's input files: the table itself for a file this process wrote lately (recent.py),
    else the file, checked against its size and SHA-256 first and read with ParquetFile.read (a third of
    read_table's cost: no dataset), on the process's worker threads (the reads and hashes release the GIL)."""

    def read(f: CompactedFile) -> pa.Table:
        full = layout.join(prefix, f.file.path)
        kept = recent.recall(storage.location, full, f.file.sha256)
        if kept is not None:
            return kept
        integrity.check_file(storage, full, f.file.size, f.file.sha256, None, what="change file (compaction input)")
        return pq.ParquetFile(storage.url(full)).read()

    return threads.run_all([functools.partial(read, f) for f in group])


def _ordered(rows: pa.Table) -> bool:
    """Whether the rows are already in change-file order (by _version, then _row_id): the inputs come in version order,
    so a merged block usually is, and its sort can be skipped."""
    if rows.num_rows < 2:
        return True
    version = integers(rows.column(layout.VERSION))  # not to_numpy: pyarrow's conversion imports pandas
    row_id = integers(rows.column(layout.ROW_ID))
    step_v, step_r = np.diff(version), np.diff(row_id)
    return bool(np.all((step_v > 0) | ((step_v == 0) & (step_r > 0))))


def after_commit(files: TableFiles, version: int) -> list[CompactionRecord]:
    """Automatic compaction after committing `version`: every block it completes, smallest level first."""
    done: list[CompactionRecord] = []
    if not auto_enabled():
        return done
    level = 1
    while level <= MAX_LEVEL and (version + 1) % FANOUT**level == 0:
        record = compact_block(files, level, version, only_small=True)
        if record is None:
            break
        done.append(record)
        level += 1
    return done


def compact(files: TableFiles) -> list[CompactionRecord]:
    """Compact every complete block not yet covered, largest blocks first (from version 0 to the head).

    Returns the records it published. The last head+1 mod FANOUT versions stay as they are until their block is
    complete. Also writes any missing log checkpoints.
    """
    from . import checkpoint

    head = files.log.head_version()
    made: list[CompactionRecord] = []
    if head is None:
        return made
    x = 0
    while x <= head:
        done = False
        for level in range(MAX_LEVEL, 0, -1):
            size = FANOUT**level
            if x % size or x + size - 1 > head:
                continue
            existing = load(files.storage, files.prefix, x, x + size - 1)
            if existing is None:
                try:
                    existing = compact_block(files, level, x)
                except (LogstoreError, OSError) as e:
                    warnings.warn(f"logstore: could not compact versions {x}..{x + size - 1}: {e}", RuntimeWarning, stacklevel=2)
                    existing = None
                if existing is not None:
                    made.append(existing)
            if existing is not None:
                x += size
                done = True
                break
        if not done:
            x += 1
    checkpoint.write_missing(files.log, head)
    return made
