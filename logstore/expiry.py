"""Expiry: versions older than a cut-off stop being readable, so that vacuum can reclaim the files only they need.

`expire(table, before=..., keep_last=...)` commits an EXPIRE version (no row changes) whose table properties carry
the cut-off: `expired_before` (versions below it are expired) and `expired_kept` (tagged versions below it that
stay readable). Properties are carried forward by every later commit, so the latest record always says which
versions are readable. Reading an expired version raises VersionExpiredError naming the cut-off; history() still
lists it, marked expired. Expire then writes a snapshot of the cut-off version (and of each kept tagged version),
so that reading them needs none of the files of the versions before: vacuum removes those (vacuum.py).

The `retention` table property (e.g. "90d", "12h"; set with set_properties) makes vacuum expire, before it removes
anything, every version committed more than that long ago (but never the latest version).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import duckdb

from . import operations, snapshot, timestamps
from .commit import CommitInfo, commit
from .errors import CorruptionError, InvalidInputError, LogstoreError, TimestampError, VersionExpiredError

if TYPE_CHECKING:
    from .log import CommitRecord
    from .planner import TableFiles

OPERATION = "EXPIRE"
CUTOFF = "expired_before"
KEPT = "expired_kept"
RETENTION = "retention"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


@dataclass(frozen=True)
class ExpireReport:
    """What an expire did (or, in a dry run, would do)."""

    table: str
    dry_run: bool
    cutoff: int  # versions below it are expired (unless kept)
    cutoff_timestamp: str  # the commit time of the cut-off version
    expired: list[int] = field(default_factory=list)  # versions this call expires
    kept: list[int] = field(default_factory=list)  # tagged versions below the cut-off that stay readable
    version: int | None = None  # the EXPIRE version (None in a dry run or when nothing new expires)

    def summary(self) -> str:
        verb = "would expire" if self.dry_run else "expired"
        kept = f"; kept tagged versions {', '.join(map(str, self.kept))}" if self.kept else ""
        at = f" (version {self.version})" if self.version is not None else ""
        return f"{self.table}: {verb} {len(self.expired)} versions before {self.cutoff} ({self.cutoff_timestamp}){kept}{at}"


def parse_retention(value) -> dt.timedelta:
    """A retention such as "90d", "12h", "30m", "2w" or a number of seconds, as a timedelta."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return dt.timedelta(seconds=value)
    match = _PATTERN.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise InvalidInputError(value, f"retention must be a positive duration like '90d', '12h', '30m' or '2w', not {value!r}")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def cutoff_of(record: CommitRecord | None) -> tuple[int, frozenset[int]]:
    """(the cut-off, the kept versions) a commit record's properties say; (0, {}) if nothing expired."""
    if record is None:
        return 0, frozenset()
    props = record.properties
    return int(props.get(CUTOFF) or 0), frozenset(int(v) for v in props.get(KEPT) or ())


def _latest_record(files: TableFiles) -> CommitRecord | None:
    """The newest commit record this handle knows (or the newest present); at damage at the top of the log the
    newest intact one below it (its cut-off is at most the true one), None if none of the last few is."""
    log = files.log
    top = log.known_head if log.known_head is not None else log.head_version()
    if top is None:
        return None
    for v in range(top, max(top - 10, -1), -1):
        try:
            return log.read(v)
        except CorruptionError:
            continue
    return None


def expired(files: TableFiles, version: int) -> bool:
    cutoff, kept = cutoff_of(_latest_record(files))
    return version < cutoff and version not in kept


def check(files: TableFiles, version: int) -> None:
    """VersionExpiredError if `version` is expired (by the newest record this handle knows)."""
    record = _latest_record(files)
    cutoff, kept = cutoff_of(record)
    if version < cutoff and version not in kept:
        raise VersionExpiredError(version, cutoff, timestamps.encode(files.log.read(cutoff).commit.timestamp))


def _cutoff_for(files: TableFiles, head: CommitRecord, before, keep_last) -> int:
    if before is None and keep_last is None:
        raise InvalidInputError(None, "expire needs before= (a moment) or keep_last= (a number of versions)")
    cutoffs = []
    if keep_last is not None:
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise InvalidInputError(keep_last, f"keep_last must be an integer >= 1 (the latest version is always kept), not {keep_last!r}")
        cutoffs.append(max(head.version - keep_last + 1, 0))
    if before is not None:
        cutoffs.append(_first_at_or_after(files, timestamps.parse(before), head))
    cutoff = max(cutoffs)
    if cutoff > head.version:
        raise InvalidInputError(before if before is not None else keep_last, f"expire would expire the latest version {head.version} (committed {timestamps.encode(head.commit.timestamp)}); it is always kept")
    return cutoff


def _first_at_or_after(files: TableFiles, moment: dt.datetime, head: CommitRecord) -> int:
    log = files.log
    if moment <= log.read(0).commit.timestamp:
        return 0
    if moment > head.commit.timestamp:
        return head.version + 1
    try:
        at = log.version_at(moment, head.version)
    except TimestampError:
        return 0
    return at if log.read(at).commit.timestamp == moment else at + 1


def expire(table, *, before=None, keep_last=None, keep_tags: bool = True, dry_run: bool = False, info: CommitInfo | None = None) -> ExpireReport:
    files: TableFiles = table._files
    head = files.log.head()
    cutoff = _cutoff_for(files, head, before, keep_last)
    old_cutoff, old_kept = cutoff_of(head)
    tagged = set(files.tags.all().values()) if keep_tags else set()
    kept = sorted(v for v in tagged if v < cutoff and (v >= old_cutoff or v in old_kept))
    if cutoff <= old_cutoff:  # never un-expire: the files of expired versions may be gone
        cutoff, kept = old_cutoff, sorted(v for v in old_kept if v in tagged)
    newly = [v for v in range(0, cutoff) if v not in kept and (v >= old_cutoff or v in old_kept)]
    stamp = timestamps.encode(files.log.read(cutoff).commit.timestamp)
    report = ExpireReport(files.name, dry_run, cutoff, stamp, newly, kept)
    if dry_run or not newly:
        return report
    properties = {CUTOFF: cutoff, KEPT: kept}

    def build(h):
        done = operations.set_properties(h, properties)
        return replace(done, parameters={"before_version": cutoff, "kept": kept})

    from . import marker

    marker.upgrade(files.storage, 4)
    done = commit(table, OPERATION, build, info or CommitInfo())
    for v in [cutoff, *kept]:  # reads of the oldest readable versions then need no file of an expired one
        _snapshot(table, files, v)
    return replace(report, version=done.version)


def _snapshot(table, files: TableFiles, version: int) -> None:
    if version in snapshot.snapshot_versions(files.storage, files.prefix) and snapshot.load(files.storage, files.prefix, version) is not None:
        return
    try:
        table._write_snapshot(version)
    except (LogstoreError, OSError, duckdb.Error) as e:  # derived data: the expiry stands without it
        warnings.warn(f"logstore: could not snapshot version {version} after expiring: {e}", RuntimeWarning, stacklevel=3)


def apply_retention(table, *, dry_run: bool) -> ExpireReport | None:
    """Vacuum's rolling cut-off: expire the versions committed more than the `retention` property ago."""
    files: TableFiles = table._files
    head = files.log.head()
    value = head.properties.get(RETENTION)
    if value is None:
        return None
    moment = timestamps.now() - parse_retention(value)
    if _first_at_or_after(files, moment, head) > head.version:
        moment = head.commit.timestamp  # everything is older: keep the latest version
    if moment <= files.log.read(0).commit.timestamp:
        return None
    return expire(table, before=moment, dry_run=dry_run, info=CommitInfo(message=f"retention {value}"))


# --- vacuum (vacuum.py) -----------------------------------------------------------------------------------------


def readable_bounds(record: CommitRecord) -> list[int]:
    """The versions below which vacuum keeps the newest intact snapshot for expiry: the cut-off and the kept
    tagged versions (reads of them start there)."""
    cutoff, kept = cutoff_of(record)
    return [cutoff, *sorted(kept)] if cutoff > 0 else []


def reclaimable(prefix: str, record: CommitRecord, originals: dict[int, set[str]], compactions, snapshots: dict[int, bool]) -> dict[str, str]:
    """Files (relative to the store root) that only expired versions need: {path: reason}.

    `record` is the latest commit record (its properties name the cut-off), `originals` each version's own files,
    `compactions` the intact compaction records (compaction.Scan), `snapshots` the snapshot versions vacuum keeps
    (version -> whether readers in row order can start from it). A readable version v reads from the newest such
    snapshot s <= v and the files standing for versions s+1..v: everything else is needed by no readable version.
    """
    from .layout import join

    cutoff, kept = cutoff_of(record)
    head = record.version
    if cutoff <= 0 or compactions.damaged:  # a damaged compaction record might stand for any version: keep all
        return {}
    ordered = sorted(v for v, usable in snapshots.items() if usable)

    def start(v: int) -> int:
        below = [s for s in ordered if s <= v]
        return below[-1] if below else -1

    needed: set[int] = set(range(start(cutoff) + 1, head + 1))
    for t in kept:
        needed |= set(range(start(t) + 1, t + 1))
    used: set[str] = set()
    v = 0
    while v <= head:
        standing = compactions.standing(v, head)
        last = standing.last if standing is not None else v
        if any(w in needed for w in range(v, last + 1)):
            used |= {join(prefix, cf.file.path) for cf in standing.files} if standing is not None else originals[v]
        v = last + 1
    out: dict[str, str] = {}
    for v, paths in originals.items():
        if v not in needed:
            for p in paths - used:
                out.setdefault(p, f"change file only expired versions need (cut-off {cutoff})")
    for (first, last), rec in compactions.records.items():
        if not any(w in needed for w in range(first, last + 1)):
            for cf in rec.files:
                p = join(prefix, cf.file.path)
                if p not in used:
                    out.setdefault(p, f"compacted file only expired versions need (cut-off {cutoff})")
    return out
