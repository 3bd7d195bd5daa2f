"""Log checkpoints: a compact, verified index of the commit log, so that nothing has to list or read every record.

The log is cut into aligned segments of INTERVAL versions: segment k holds versions k*INTERVAL .. (k+1)*INTERVAL-1.
Once the last version of a segment is committed, its committer writes the checkpoint
`_checkpoints/<last version, 20 digits>.ckpt.zst` with put-if-absent (a writer that finds it there does nothing):

    zstd( b"logstore-checkpoint 2 <sha256 of body, hex>\\n" + body )

where body is UTF-8 JSON:

    {"format_version": 2, "interval": 100, "first": <first version>, "last": <last version>,
     "table_id": <the table's identity; absent for a table of format 1, which has none>,
     "records": [<the commit records of first..last, exactly as stored in _log/>],
     "timeline": [[<first version of segment j>, <its timestamp>] for every segment j = 0..k]}

Format 1 (header `logstore-checkpoint 1`, written before tables had an identity) has no `table_id` and is still read.

A checkpoint is derived data: the commit records stay the source of truth. A checkpoint that is missing, fails to
decompress, fails its checksum or disagrees with its name is ignored (with a RuntimeWarning), and so is a foreign
one: its `table_id` differs from the log's (version 0's), or its copy of the segment's last record differs from
`_log/` (two record reads per load). The records are then read from `_log/` instead, so neither damage nor a
checkpoint copied from another table changes an answer.

What it makes cheap (n = number of commits):
  - the latest version: `Log.head_version` probes `_log/<v>.json` with exists() (galloping from the last known
    head, O(log n) stats; O(1) when a handle already knows a recent head) instead of listing `_log/`;
  - `version_at`: the newest checkpoint's timeline picks the segment (1 read), one segment read finds the version;
    versions after the newest checkpoint (fewer than 2*INTERVAL) are binary-searched over their records;
  - a read plan: the records of versions snapshot+1..v come from a few segment reads instead of one read each.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
import warnings

import zstandard

from . import codec, layout, timestamps
from .errors import CorruptionError
from .layout import CHECKPOINT_DIR  # noqa: F401 - where checkpoints are, known by this name here too

INTERVAL = 100
FORMAT_VERSION = 2  # 2: the body carries `table_id`
READABLE_FORMATS = (1, 2)
MAGIC = b"logstore-checkpoint"
LEVEL = 3

_warned: set[str] = set()
_warn_lock = threading.Lock()


def segment_of(version: int) -> int:
    return version // INTERVAL


def segment_range(segment: int) -> tuple[int, int]:
    return segment * INTERVAL, (segment + 1) * INTERVAL - 1


def name(segment: int) -> str:
    return layout.checkpoint_name(segment_range(segment)[1])


def path(prefix: str, segment: int) -> str:
    return layout.join(prefix, layout.checkpoint_file(segment_range(segment)[1]))


class Segment:
    """One loaded, verified checkpoint: the raw record objects of its versions and the timeline up to it."""

    def __init__(self, segment: int, records: list[dict], timeline: list[tuple[int, str]], table_id: str | None = None, path: str = ""):
        self.path = path  # where it was read from
        self.segment = segment
        self.first, self.last = segment_range(segment)
        self.records = records  # raw JSON objects, index = version - first
        self.timeline = timeline
        self.table_id = table_id  # the identity of the table it was written for; None in format 1

    def raw(self, version: int) -> dict:
        return self.records[version - self.first]

    def timestamp(self, version: int) -> str:
        return self.records[version - self.first]["timestamp"]


def encode(segment: int, raw_records: list[dict], timeline: list[tuple[int, str]], table_id: str | None) -> bytes:
    first, last = segment_range(segment)
    body = json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "interval": INTERVAL,
            "first": first,
            "last": last,
            **({"table_id": table_id} if table_id is not None else {}),
            "records": raw_records,
            "timeline": [list(t) for t in timeline],
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    header = MAGIC + b" %d " % FORMAT_VERSION + hashlib.sha256(body).hexdigest().encode() + b"\n"
    return zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(header + body)


def decode(segment: int, data: bytes, path: str) -> Segment:
    """The checkpoint of `segment` from its bytes, stored at `path`; CorruptionError if it is damaged in any way."""
    with codec.reading(path, None, "log checkpoint"):
        return _decode(segment, data, path)


def _decode(segment: int, data: bytes, path: str) -> Segment:
    """decode(), raising ValueError (or what taking a malformed body apart raises) for damage."""
    try:
        payload = zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as e:
        raise ValueError(f"cannot decompress: {e}") from None
    header, sep, body = payload.partition(b"\n")
    parts = header.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != MAGIC or parts[1] not in [b"%d" % f for f in READABLE_FORMATS]:
        raise ValueError("not a logstore checkpoint (bad header)")
    if hashlib.sha256(body).hexdigest().encode() != parts[2]:
        raise ValueError("checksum does not match its content")
    obj = json.loads(body)
    first, last = segment_range(segment)
    if obj.get("format_version") != int(parts[1]):
        raise ValueError(f"body says format {obj.get('format_version')!r}, its header {int(parts[1])}")
    if obj.get("interval") != INTERVAL or obj.get("first") != first or obj.get("last") != last:
        raise ValueError(f"says versions {obj.get('first')}..{obj.get('last')} (interval {obj.get('interval')})")
    records = obj["records"]
    if len(records) != INTERVAL or any(int(r["version"]) != first + i for i, r in enumerate(records)):
        raise ValueError("records do not match the versions it covers")
    timeline = [(int(v), str(t)) for v, t in obj["timeline"]]
    if len(timeline) != segment + 1 or timeline[-1] != (first, records[0]["timestamp"]):
        raise ValueError("timeline does not match the segments it covers")
    return Segment(segment, records, timeline, obj.get("table_id"), path)


class ForeignCheckpointError(CorruptionError):
    """An intact checkpoint that is not this table's (or no longer agrees with its log)."""


def check_identity(seg: Segment, table_id: str | None) -> None:
    """ForeignCheckpointError unless `seg` was written for the table whose identity is `table_id` (None: format 1;
    a checkpoint without `table_id` in a table that has one is foreign)."""
    if seg.table_id != table_id:
        raise ForeignCheckpointError(seg.path, None, f"written for table_id {seg.table_id}, the log's is {table_id}")


def check_against_log(seg: Segment, table_id: str | None, stored_last: dict) -> None:
    """ForeignCheckpointError unless `seg` belongs to the table whose identity is `table_id` and holds
    `stored_last`, the record of its last version as stored in `_log/` (O(1): one record compared)."""
    check_identity(seg, table_id)
    if seg.raw(seg.last) != stored_last:
        raise ForeignCheckpointError(seg.path, None, f"its record of version {seg.last} differs from the one in the log")


def load(storage, prefix: str, segment: int) -> Segment | None:
    """The checkpoint of `segment` if it exists, is intact and is this table's (checked against version 0 and the
    segment's last record in `_log/`); None otherwise (a warning if it is damaged or foreign)."""
    p = path(prefix, segment)
    try:
        data = storage.read(p)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        seg = decode(segment, data, p)
        check_against_log(seg, stored_record(storage, prefix, 0).get("table_id"), stored_record(storage, prefix, seg.last))
        return seg
    except CorruptionError as e:
        kind = "foreign" if isinstance(e, ForeignCheckpointError) else "unchecked" if isinstance(e, UncheckedError) else "damaged"
        _warn_once(p, f"logstore: ignoring {kind} log checkpoint {p}: {e.reason}")
        return None


class UncheckedError(CorruptionError):
    """Derived data cannot be checked against the log (the commit record it is checked with is missing or damaged);
    `path` and `version` name that record."""


def stored_record(storage, prefix: str, version: int) -> dict:
    """The commit record of `version` as stored in `_log/`, its checksum checked; UncheckedError if it is missing or
    damaged. Derived data (checkpoints, snapshots, compaction records) is checked against it before use."""
    record = layout.join(prefix, layout.log_record(version))
    try:
        return codec.read(storage, record, version=version, what="commit record")
    except (OSError, CorruptionError) as e:
        why = e.reason if isinstance(e, CorruptionError) else str(e)
        raise UncheckedError(record, version, f"cannot be checked against the commit record of version {version}: {why}") from None


def _warn_once(key: str, message: str) -> None:
    with _warn_lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def exists(storage, prefix: str, segment: int) -> bool:
    return storage.exists(path(prefix, segment))


def write(log, segment: int) -> bool:
    """Write the checkpoint of a complete segment unless one is there; True if this call wrote it.

    `log` is the table's Log. The records are copied byte-for-byte in meaning (their JSON objects as stored), so
    fields this module does not know about survive. The timeline is the previous checkpoint's plus this segment's
    first timestamp; if the previous one is missing or damaged it is rebuilt from the first record of each segment.
    """
    storage, prefix = log.storage, log.prefix
    if exists(storage, prefix, segment):
        return False
    first, last = segment_range(segment)
    raw_records = [log.read_raw(v) for v in range(first, last + 1)]  # CorruptionError if any is missing or damaged
    previous = load(storage, prefix, segment - 1) if segment > 0 else None
    if previous is not None:
        timeline = previous.timeline + [(first, raw_records[0]["timestamp"])]
    else:
        timeline = [(s * INTERVAL, log.read_raw(s * INTERVAL)["timestamp"]) for s in range(segment)]
        timeline.append((first, raw_records[0]["timestamp"]))
    return storage.put_if_absent(path(prefix, segment), encode(segment, raw_records, timeline, log.table_id()))


def write_due(log, version: int) -> list[int]:
    """After committing `version`: write the checkpoint of the segment it completes, and of the one before if that
    is missing (a committer that crashed). Returns the segments written."""
    written = []
    if (version + 1) % INTERVAL != 0:
        return written
    segment = segment_of(version)
    for s in (segment - 1, segment):
        if s >= 0 and not exists(log.storage, log.prefix, s):
            if write(log, s):
                written.append(s)
    return written


def write_missing(log, latest: int) -> list[int]:
    """Write every missing checkpoint of complete segments up to `latest` (used by compact)."""
    complete = (latest + 1) // INTERVAL
    return [s for s in range(complete) if not exists(log.storage, log.prefix, s) and write(log, s)]


def newest_segment(log, latest: int, *, tries: int = 3) -> Segment | None:
    """The newest intact checkpoint at or below the head, looking back at most `tries` segments (O(1))."""
    top = (latest + 1) // INTERVAL - 1
    for s in range(top, max(top - tries, -1), -1):
        seg = log.segment(s)
        if seg is not None:
            return seg
    return None


def version_at(log, moment, latest: int) -> int | None:
    """The latest version whose time is <= moment, found through checkpoints; None if none are usable.

    The caller has checked that moment is not before version 0 and not in the future.
    """
    newest = newest_segment(log, latest)
    if newest is None:
        return None
    after = newest.last + 1
    if after <= latest and log.read(after).commit.timestamp <= moment:
        return log.last_at_or_before(moment, after, latest)
    # the on-disk form (UTC, fixed width, microseconds) sorts as text in time order: no parsing needed
    text = timestamps.encode(moment)
    j = bisect.bisect_right([t for _v, t in newest.timeline], text) - 1  # last segment starting at or before moment
    if j < 0:
        return None
    seg = newest if j == newest.segment else log.segment(j)
    if seg is None:
        return None
    return seg.first + bisect.bisect_right([r["timestamp"] for r in seg.records], text) - 1
