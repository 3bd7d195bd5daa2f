"""A level-1 compaction's merge, started beside the commit that completes its block.

The commit of version 10k+9 is followed by the automatic compaction of the block 10k..10k+9 (compaction.py), whose
cost is mostly encoding the merged file. Those rows are known when the commit starts: the change files of the
block's earlier versions (usually still in memory, recent.py) and the committing version's own change rows. So the
committing thread starts the merge on a worker thread (`start`), where it runs while the commit computes its
fingerprint, writes its change file and publishes its record; the compaction then takes the result (`take`)
instead of merging again.

Nothing is written here, and nothing is taken on trust. `take` gives the result only to a merge of exactly the same
inputs: the same earlier files (path and SHA-256, in order) and, as the last input, the committing version's file,
recognised by its table in recent.py being the very table the merge used (the one its file was encoded from).
Anything else (the commit lost its race, another writer compacted first, the block's files differ from the guess,
the worker failed) leaves the compaction to merge as before; the stored result is the same bytes either way.
One merge is kept per table, the newest, and at most KEPT in all (a merge no compaction took, because the block
was not compacted after all, is dropped when the table's next block starts, or when KEPT other tables started one).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass

import pyarrow as pa

from . import compaction, layout, recent, threads
from .compaction import CompactedFile


@dataclass(frozen=True)
class _Started:
    rows: pa.Table  # the committing version's change rows, as its change file holds them
    merged: Future  # (earlier inputs as (path, sha256), merged table, its encoding) or None


KEPT = 4

_lock = threading.Lock()
_started: OrderedDict[tuple[str, str], _Started] = OrderedDict()  # (store location, table prefix) -> its newest merge


def start(files, version: int, rows: pa.Table, *, inserts_only: bool) -> None:
    """If committing `version` completes a level-1 block that automatic compaction will merge, start merging the
    block's files of `rows`' kind (insert-only or not) with `rows` on a worker thread."""
    if (version + 1) % compaction.FANOUT or not compaction.auto_enabled() or rows.nbytes >= compaction.CARRY_MIN_BYTES:
        return
    merged = threads.submit(_merge, files, version, rows, inserts_only)
    key = (files.storage.location, files.prefix)
    with _lock:
        _started.pop(key, None)
        _started[key] = _Started(rows, merged)
        while len(_started) > KEPT:
            _started.popitem(last=False)


def discard(files) -> None:
    """Forget the merge started for this table (its commit was not published)."""
    with _lock:
        _started.pop((files.storage.location, files.prefix), None)


def take(storage, prefix: str, group: list[CompactedFile]) -> tuple[pa.Table, pa.Buffer] | None:
    """The merged table and its encoding for `group`, if a merge of exactly these files was started; else None."""
    with _lock:
        started = _started.get((storage.location, prefix))
    if started is None or len(group) < 2:
        return None
    last = group[-1].file
    if recent.recall(storage.location, layout.join(prefix, last.path), last.sha256) is not started.rows:
        return None
    try:
        result = started.merged.result()
    except Exception:  # the compaction merges as before (and meets the error itself, if it is one)
        result = None
    if result is None or result[0] != _identities(group[:-1]):
        return None
    with _lock:
        if _started.get((storage.location, prefix)) is started:
            del _started[(storage.location, prefix)]
    return result[1], result[2]


def _merge(files, version: int, rows: pa.Table, inserts_only: bool) -> tuple[tuple[tuple[str, str], ...], pa.Table, pa.Buffer] | None:
    """(the earlier files merged, the merged table, its encoding), or None when the block is not one automatic
    compaction merges whole (a file it would carry over, a version written as several files, big files)."""
    from .commit import encode_parquet

    first, _ = compaction.block(1, version)
    units = compaction.cover(files.log, first, version - 1, version - 1)
    if any(len(u.files) > 1 or u.compaction is not None for u in units):
        return None
    earlier = [f for u in units for f in u.files]
    if any(f.file.size >= compaction.CARRY_MIN_BYTES for f in earlier):
        return None
    if sum(f.file.size for f in earlier) > compaction.AUTO_MAX_MEAN_BYTES * max(len(earlier), 1):
        return None
    group = [f for f in earlier if f.file.inserts_only == inserts_only]
    if not group or sum(f.file.size for f in group) > compaction.IN_MEMORY_BYTES:
        return None  # nothing to merge with; or a merge the compaction encodes through a staging file
    merged = compaction.merge_tables(compaction.read_inputs(files.storage, files.prefix, group) + [rows])
    if merged is None:
        return None
    return _identities(group), merged, encode_parquet(merged, row_group_size=compaction.ROW_GROUP_ROWS)


def _identities(group: list[CompactedFile]) -> tuple[tuple[str, str], ...]:
    return tuple((f.file.path, f.file.sha256) for f in group)
