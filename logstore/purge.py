"""Purge: remove every row of a lineage from every version of history (right to be forgotten), format 4.

`purge(table, where=...)` finds every row id whose image matched `where` in *any* version (the lineage rule: a row
that matched once is removed before and after it matched), then removes those row ids from every file of the
table: change files, compacted files and snapshots are copied without their rows (every other column, the row
order, the compression and row-group size kept), and the records that describe them are rewritten. Every other
row of every version reads exactly as before, with its row id.

On disk (docs/format.md, "Retention and purge (format 4)"):

1. New files first, under new unique names (`data/<v>-<uuid>.parquet`, `compacted/<first>-<last>-<uuid>.parquet`,
   `snapshots/<v>-<uuid>.parquet`); nothing references them yet. `_purge.json` says `pending` for version P and
   lists them (vacuum keeps them like an in-flight writer's).
2. The PURGE commit record P (put-if-absent: the commit point). Besides the usual fields it carries `purge`: for
   every earlier commit record to rewrite a *patch* (new `files`, `num_rows`, `fingerprint`, row counts,
   `change_rows_total`, redacted `parameters`/`message`/`metadata`), the new compaction and snapshot records, and
   the paths of the replaced files. None of it holds a purged value.
3. Roll forward (idempotent): each patched commit record is replaced by `record + patch + {"purged": [..., P]}`
   (re-sealed), then the compaction records, the snapshot records and the log checkpoints of the segments holding
   rewritten records, then the replaced files are deleted, then `_purge.json` says `done`.

Readers never see a half state: every read (planner, selectors, vacuum, verify) first calls `settle`, which finishes
the roll-forward of a committed pending purge (a purge killed after step 2) and drops what this process cached of
the table's records when a purge happened since it last looked. A purge killed before step 2 left only unreferenced
files (vacuum removes them): the store is as before.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import (
    checkpoint,
    codec,
    compaction,
    evolution,
    expressions,
    fingerprint,
    layout,
    marker,
    scan,
    snapshot,
    timestamps,
)
from .commit import (
    FIRST_BACKOFF,
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    PUBLISH_WINDOW,
    CommitInfo,
    change_file_encoding,
    publish_staged,
)
from .errors import CommitConflictError, CorruptionError
from .layout import DELETE, OP, ROW_ID, VERSION
from .log import Commit, CommitRecord
from .materialize import _project
from .schema import Column, literal

if TYPE_CHECKING:
    from .planner import TableFiles

OPERATION = "PURGE"
STATE_FILE = "_purge.json"
REDACTED = "redacted"
KEEP_PARAMETERS = {"RESTORE": ("version", "reset")}  # structural parameters readers use; they hold no row values
MIN_VALUE_CHARS = 3  # string values shorter than this are not searched for in messages and metadata


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, in a dry run, would remove)."""

    table: str
    dry_run: bool
    rows: int  # row ids purged (each from every version)
    change_rows: int  # stored rows (change rows and snapshot rows) removed
    versions: list[int] = field(default_factory=list)  # versions whose rows change
    records: list[int] = field(default_factory=list)  # commit records rewritten
    files: list[str] = field(default_factory=list)  # files rewritten (paths relative to the table directory)
    bytes_rewritten: int = 0  # bytes of the files rewritten (their old size)
    version: int | None = None  # the PURGE version (None in a dry run or when nothing matched)

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        at = f" (version {self.version})" if self.version is not None else ""
        return (f"{self.table}: {verb} {self.rows} rows{at} from {len(self.versions)} versions; "
                f"{len(self.files)} files ({self.bytes_rewritten} bytes) rewritten, {len(self.records)} commit records rewritten")


# --- the table's files ------------------------------------------------------------------------------------------


@dataclass
class _Inventory:
    """Every file of the table a record references and that is present, with the records of versions 0..head."""

    records: list[CommitRecord]
    change: dict[str, int]  # change file path -> its version
    compacted: dict[str, tuple[int, int]]  # compacted file path -> its block
    snapshots: dict[int, snapshot.SnapshotRecord]  # intact-looking snapshot records by version
    compactions: dict[tuple[int, int], compaction.CompactionRecord]
    columns: dict[str, frozenset[str]] = field(default_factory=dict)  # path -> the columns its file holds

    def paths(self) -> list[str]:
        return sorted(self.change) + sorted(self.compacted) + [s.path for _v, s in sorted(self.snapshots.items())]


def _inventory(files: TableFiles, head: int) -> _Inventory:
    storage, prefix = files.storage, files.prefix
    records = files.log.read_range(0, head)
    present = {layout.join(d, n) for d in (layout.DATA_DIR, layout.COMPACTED_DATA_DIR, layout.SNAPSHOT_DATA_DIR) for n in storage.list(layout.join(prefix, d))}
    change: dict[str, int] = {}
    for r in records:
        for f in r.files:
            if f.path in present:
                change[f.path] = r.version
    found = compaction.scan(storage, prefix)
    if found.damaged:
        name = sorted(found.damaged)[0]
        raise CorruptionError(layout.join(prefix, layout.COMPACTION_DIR, name), None, f"damaged compaction record: {found.damaged[name]}; purge refuses (it could not rewrite the files it lists): run verify")
    compacted: dict[str, tuple[int, int]] = {}
    for b, rec in found.records.items():
        for cf in rec.files:
            if cf.file.path in present and cf.file.path not in change:
                compacted[cf.file.path] = b
    snaps: dict[int, snapshot.SnapshotRecord] = {}
    for v in snapshot.snapshot_versions(storage, prefix):
        try:
            rec_ = snapshot.read_record(storage, prefix, v)
        except (OSError, CorruptionError):
            continue  # a damaged snapshot record: readers skip it; vacuum removes it
        if rec_.path in present and v <= head:
            snaps[v] = rec_
    return _Inventory(records, change, compacted, snaps, found.records)


# --- finding the lineage ----------------------------------------------------------------------------------------


def _lineage(files: TableFiles, con, inv: _Inventory, where: str, columns: tuple[Column, ...]) -> np.ndarray:
    """The sorted row ids whose image matches `where` in any file (a change row that is not a delete, a delete row
    holding its pre-image (format 5), a snapshot row): every image a version ever had is stored in one of them."""
    parts = []
    holding = [r.version for r in inv.records if r.preimages]  # format 5: their delete rows hold pre-images, images too
    for path in inv.paths():
        url = files.url(path)
        held = _held(inv, path, url)
        not_delete = f"{OP} <> '{DELETE}' AND " if OP in held else ""
        if holding and OP in held and VERSION in held:
            not_delete = f"({OP} <> '{DELETE}' OR {VERSION} IN ({', '.join(map(str, holding))})) AND "
        inner = f"{ROW_ID}{', ' + OP if OP in held else ''}{', ' + VERSION if VERSION in held and not_delete else ''}"
        parts.append(f"SELECT {ROW_ID} FROM (SELECT {inner}, {_project(columns, held)} FROM read_parquet({literal(url)})) AS t WHERE {not_delete}({where})")
    if not parts:
        return np.zeros(0, dtype=np.int64)
    found = np.zeros(0, dtype=np.int64)
    for i in range(0, len(parts), 200):  # bounded SQL
        sql = " UNION ".join(parts[i : i + 200])
        ids = np.array([r[0] for r in con.execute(f"SELECT DISTINCT {ROW_ID} FROM ({sql}) AS u").fetchall()], dtype=np.int64)
        found = np.union1d(found, ids.astype(np.int64))
    return found


def _held(inv: _Inventory, path: str, url: str) -> frozenset[str]:
    if path not in inv.columns:
        inv.columns[path] = frozenset(pq.read_schema(url).names)
    return inv.columns[path]


# --- rewriting files --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rewrite:
    old: str  # path relative to the table directory
    old_size: int
    new: str | None  # None: no row is left, the file goes from its records
    rows: int
    size: int
    sha256: str
    removed: pa.Table  # the rows taken out of it


def _rows_holding(url: str, ids: np.ndarray) -> np.ndarray | None:
    """A boolean mask of the file's rows whose _row_id is in `ids` (sorted), or None if none is (row-group statistics
    first, then the _row_id column alone)."""
    f = pq.ParquetFile(url)
    meta = f.metadata
    index = meta.schema.names.index(ROW_ID)
    groups = [g for g in range(meta.num_row_groups) if _group_may_hold(meta.row_group(g).column(index).statistics, ids)]
    if not groups:
        return None
    rid = f.read(columns=[ROW_ID]).column(ROW_ID).to_numpy()
    mask = _member(rid, ids)
    return mask if mask.any() else None


def _group_may_hold(stats, ids: np.ndarray) -> bool:
    if stats is None or not stats.has_min_max:
        return True
    left = int(np.searchsorted(ids, stats.min))
    return left < len(ids) and int(ids[left]) <= stats.max


def _member(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """values in ids (sorted, unique), by binary search: O(n log k) for few ids, no hash table of n values."""
    if not len(ids):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
    return ids[at] == values


def _rewrite(files: TableFiles, path: str, mask: np.ndarray, new_path: str, *, write: bool) -> _Rewrite:
    """Copy the file without the rows `mask` marks, row group by row group (every column kept, whatever its name;
    row order, compression and row-group sizes kept; a row group emptied is left out); unless `write`, only collect
    the rows that would go."""
    storage = files.storage
    f = pq.ParquetFile(files.url(path))
    meta = f.metadata
    old_size = storage.stat(files.path(path)).size
    starts = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    touched = [g for g in range(meta.num_row_groups) if mask[starts[g] : starts[g + 1]].any()]
    read = {g: f.read_row_group(g) for g in touched}  # read once: for the rows that go and for the copy
    removed = pa.concat_tables([_take(read[g], mask[starts[g] : starts[g + 1]]) for g in touched]) if touched else f.schema_arrow.empty_table()
    kept_rows = int(len(mask) - mask.sum())
    snapshot_file = path.startswith(layout.SNAPSHOT_DATA_DIR + "/")
    if not write or (kept_rows == 0 and not snapshot_file):
        return _Rewrite(path, old_size, new_path if kept_rows or snapshot_file else None, kept_rows, 0, "", removed)
    compression = meta.row_group(0).column(0).compression.lower() if meta.num_row_groups else "zstd"
    staged = storage.staging_file(".parquet")
    try:
        kept_compression = compression if compression != "uncompressed" else "none"
        with pq.ParquetWriter(staged, f.schema_arrow, compression=kept_compression, **change_file_encoding(f.schema_arrow.names)) as writer:
            for g in range(meta.num_row_groups):
                part = mask[starts[g] : starts[g + 1]]
                group = _take(read[g], ~part) if g in read else f.read_row_group(g)
                if group.num_rows:
                    writer.write_table(group, row_group_size=max(group.num_rows, 1))
            if kept_rows == 0:
                writer.write_table(f.schema_arrow.empty_table())
    except BaseException:
        storage.delete_staged(staged)
        raise
    size, digest = publish_staged(storage, files.path(new_path), staged)
    return _Rewrite(path, old_size, new_path, kept_rows, size, digest, removed)


def _take(table: pa.Table, mask: np.ndarray) -> pa.Table:
    return table.take(pa.array(np.flatnonzero(mask)))


def _new_name(path: str) -> str:
    if path.startswith(layout.COMPACTED_DATA_DIR + "/"):
        block = layout.compacted_block(path)
        assert block is not None
        return layout.new_compacted_file(*block)
    version = layout.file_version(path)
    assert version is not None
    if path.startswith(layout.SNAPSHOT_DATA_DIR + "/"):
        return layout.new_snapshot_file(version)
    return layout.new_change_file(version)


# --- what each version loses -----------------------------------------------------------------------------------


@dataclass
class _Effects:
    """Per version: rows and fingerprint the purged lineage contributed, and its change rows by operation."""

    rows: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    hashes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    ops: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    values: set[str] = field(default_factory=set)  # the string values of the purged images


def _effects(con, inv: _Inventory, change_rows: list[pa.Table], snapshot_rows: list[pa.Table], head: int, physical_of: dict[int, tuple[Column, ...] | None]) -> _Effects:
    """Which purged image is alive at which version (each change or snapshot row stands from its _version until the
    row id's next change), hashed with each version's columns; `physical_of` (by id() of each table of removed rows)
    holds the columns its file was written with, so images are read by column identity (evolution.py) as readers do."""
    out = _Effects()
    events = _events(change_rows, snapshot_rows)
    for (_rid, v), (op, _i) in events.items():
        if op != "S":
            out.ops[v][op] += 1
    if not events:
        return out
    tables = [t for t in change_rows + snapshot_rows if t.num_rows]
    for t in tables:
        for name in t.column_names:
            if not name.startswith("_") and pa.types.is_string(t.schema.field(name).type):
                out.values.update(v for v in t.column(name).to_pylist() if isinstance(v, str) and len(v) >= MIN_VALUE_CHARS)
    by_columns: dict[tuple[Column, ...], list[int]] = defaultdict(list)
    for r in inv.records:
        by_columns[r.columns].append(r.version)
    physical = [physical_of[id(t)] for t in tables]
    hashes = {cols: [h for t, p in zip(tables, physical) for h in _row_hashes(con, t, cols, p)] for cols in by_columns}
    column_of = {v: cols for cols, vs in by_columns.items() for v in vs}
    per_id: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for (rid, v), (op, i) in events.items():
        per_id[rid].append((v, op, i))
    for seq in per_id.values():
        seq.sort()
        for n, (v, op, i) in enumerate(seq):
            if op == DELETE:
                continue
            end = seq[n + 1][0] - 1 if n + 1 < len(seq) else head
            for w in range(v, end + 1):
                out.rows[w] += 1
                out.hashes[w] = (out.hashes[w] + hashes[column_of[w]][i]) % fingerprint.MOD
    return out


def _events(change_rows: list[pa.Table], snapshot_rows: list[pa.Table]) -> dict[tuple[int, int], tuple[str, int]]:
    """(row id, version) -> (op, index in the concatenated images): a change row wins over a snapshot's copy of the
    same image."""
    events: dict[tuple[int, int], tuple[str, int]] = {}
    offset = 0
    for t in change_rows:
        for i, (rid, v, op) in enumerate(zip(t.column(ROW_ID).to_pylist(), t.column(VERSION).to_pylist(), t.column(OP).to_pylist())):
            events[(rid, v)] = (op, offset + i)
        offset += t.num_rows
    for t in snapshot_rows:
        if t.num_rows and VERSION not in t.column_names:
            offset += t.num_rows
            continue  # a snapshot of format 2 (no _version): its images are in the change files
        for i, (rid, v) in enumerate(zip(t.column(ROW_ID).to_pylist(), t.column(VERSION).to_pylist() if t.num_rows else [])):
            events.setdefault((rid, v), ("S", offset + i))
        offset += t.num_rows
    return events


def _physical(files: TableFiles, path: str, held: frozenset[str]) -> tuple[Column, ...] | None:
    """The columns (with identities) the file at `path` was written with: those of the versions it stands for."""
    span = None if path.startswith(layout.SNAPSHOT_DATA_DIR + "/") else scan.file_span(path)
    if span is None:
        version = layout.file_version(path)
        if version is None:  # not a name logstore writes: read by name, as before column identities
            return None
        span = (version, version)
    return evolution.layout(files.log, span[0], span[1], held)


def _row_hashes(con, images: pa.Table, columns: tuple[Column, ...], physical: tuple[Column, ...] | None) -> list[int]:
    name = f"logstore_purge_images_{threading.get_ident()}"
    con.register(name, images)
    try:
        held = frozenset(images.column_names)
        projection = _project(columns, held, evolution.special(columns, held, physical)) if columns else "NULL AS _none"
        sql = f"SELECT {fingerprint.row_hash_sql(columns)}::UBIGINT FROM (SELECT {ROW_ID}, {projection} FROM {name}) AS t"
        return [int(r[0]) for r in con.execute(sql).fetchall()]
    finally:
        con.unregister(name)


# --- the plan: patches of records ------------------------------------------------------------------------------


def _patches(inv: _Inventory, effects: _Effects, rewrites: dict[str, _Rewrite], head: int) -> dict[int, dict[str, Any]]:
    """The changed fields of each commit record 0..head that must change."""
    patches: dict[int, dict[str, Any]] = {}
    total_delta = 0
    needles = _needles(effects.values)
    for r in inv.records:
        v = r.version
        patch: dict[str, Any] = {}
        if any(f.path in rewrites for f in r.files):
            patch["files"] = [_file_entry(f.to_json(), rewrites.get(f.path)) for f in r.files]
            patch["files"] = [f for f in patch["files"] if f is not None]
        ops = effects.ops.get(v, {})
        if ops:
            patch["rows_inserted"] = r.commit.rows_inserted - ops.get("I", 0)
            patch["rows_updated"] = r.commit.rows_updated - ops.get("U", 0)
            patch["rows_deleted"] = r.commit.rows_deleted - ops.get(DELETE, 0)
            if r.files and not r.files[0].inserts_only:
                total_delta += sum(ops.values())
        if total_delta:
            patch["change_rows_total"] = r.change_rows_total - total_delta
        if effects.rows.get(v):
            patch["num_rows"] = r.commit.num_rows - effects.rows[v]
            if r.fingerprint is not None:
                patch["fingerprint"] = fingerprint.encode((fingerprint.decode(r.fingerprint) - effects.hashes[v]) % fingerprint.MOD)
        patch.update(_redaction(r, bool(ops), needles))
        if patch:
            patches[v] = patch
    return patches


def _file_entry(entry: dict, rewrite: _Rewrite | None) -> dict | None:
    if rewrite is None:
        return entry
    if rewrite.new is None:
        return None
    return {**entry, "path": rewrite.new, "rows": rewrite.rows, "size": rewrite.size, "sha256": rewrite.sha256}


def _redaction(r: CommitRecord, wrote: bool, values: tuple[str, ...]) -> dict[str, Any]:
    """Redacted `parameters` of a commit that wrote rows of the lineage or whose parameters quote a purged value; a
    `message` or `metadata` quoting one is redacted too."""
    out: dict[str, Any] = {}
    c = r.commit
    if (wrote or _quotes(c.parameters, values)) and c.parameters and c.parameters.get(REDACTED) is not True:
        kept = {k: c.parameters[k] for k in KEEP_PARAMETERS.get(c.operation, ()) if k in c.parameters}
        out["parameters"] = {**kept, REDACTED: True}
    if c.message is not None and _quotes(c.message, values):
        out["message"] = "[redacted by purge]"
    if c.metadata and _quotes(c.metadata, values):
        out["metadata"] = {REDACTED: True}
    return out


def _quotes(obj: Any, needles: tuple[str, ...]) -> bool:
    """Whether `obj` (a string, or JSON) holds one of `needles` (_needles: the values as written and JSON-escaped)."""
    texts = [obj] if isinstance(obj, str) else [json.dumps(obj, ensure_ascii=False), json.dumps(obj)]
    return any(n in text for text in texts for n in needles)


def _needles(values: set[str]) -> tuple[str, ...]:
    return tuple(sorted(values | {json.dumps(v)[1:-1] for v in values} | {json.dumps(v, ensure_ascii=False)[1:-1] for v in values}))


# --- publishing ---------------------------------------------------------------------------------------------------


def purge(table, *, where: str, info: CommitInfo, dry_run: bool = False) -> Commit | PurgeReport | None:
    """Purge the lineage of the rows matching `where`; see the module docstring. Returns the PURGE Commit (None if
    nothing matched: no version is made), or a PurgeReport when `dry_run`."""
    files: TableFiles = table._files
    first_head = None
    for attempt in itertools.count(1):
        settle(files)
        started = time.monotonic()
        head = files.log.head()
        first_head = head.version if first_head is None else first_head
        con = files.connection().cursor()
        expressions.check(con, where, head.columns, kind="predicate")
        inv = _inventory(files, head.version)
        ids = _lineage(files, con, inv, where, head.columns)
        report, plan = _prepare(files, con, inv, ids, head.version, write=not dry_run)
        if dry_run or not len(ids):
            return report if dry_run else None
        published = _publish(files, head, plan, ids, where, info, started)
        if published is not None:
            table._store._head_cache().note_commit(files, published, None)
            _roll_forward(files, published.version, plan)
            files.log.forget()
            _forget_cached(files)
            _seen[_key(files)] = (published.version, "done")
            _stamps.pop(_key(files), None)
            return published.commit
        _delete_new(files, plan)  # another writer took the version: nothing references the new files
        if attempt >= MAX_ATTEMPTS:
            raise CommitConflictError(files.name, first_head, files.log.latest(), attempt)
        time.sleep(random.uniform(0, min(FIRST_BACKOFF * 2**attempt, MAX_BACKOFF)))
    raise AssertionError("unreachable")


@dataclass
class _Plan:
    patches: dict[int, dict[str, Any]]
    compactions: dict[str, dict]  # record file name -> new record JSON (without checksum)
    snapshots: dict[int, dict]  # version -> new snapshot record JSON
    delete: list[str]  # replaced files (relative to the table directory)
    new: list[str]  # files written
    rows: int
    head_rows: int  # purged rows alive at the head
    head_hash: int


def _prepare(files: TableFiles, con, inv: _Inventory, ids: np.ndarray, head: int, *, write: bool) -> tuple[PurgeReport, _Plan]:
    rewrites: dict[str, _Rewrite] = {}
    change_rows: list[pa.Table] = []
    snapshot_rows: list[pa.Table] = []
    physical_of: dict[int, tuple[Column, ...] | None] = {}
    try:
        if len(ids):
            for path in inv.paths():
                mask = _rows_holding(files.url(path), ids)
                if mask is None:
                    continue
                done = _rewrite(files, path, mask, _new_name(path), write=write)
                rewrites[path] = done
                (snapshot_rows if path.startswith(layout.SNAPSHOT_DATA_DIR + "/") else change_rows).append(done.removed)
                physical_of[id(done.removed)] = _physical(files, path, frozenset(done.removed.column_names))
        effects = _effects(con, inv, change_rows, snapshot_rows, head, physical_of)
    except BaseException:
        _delete_paths(files, [r.new for r in rewrites.values() if r.new is not None and write])
        raise
    patches = _patches(inv, effects, rewrites, head)
    compactions = {}
    for b, rec in inv.compactions.items():
        touched = [cf for cf in rec.files if cf.file.path in rewrites] + [p for p in rec.replaces if p in rewrites]
        if touched:
            compactions[layout.compaction_name(*b)] = _compaction_json(rec, rewrites)
    snaps = {}
    for v, s in inv.snapshots.items():
        if s.path in rewrites:
            rw = rewrites[s.path]
            fp = patches.get(v, {}).get("fingerprint", s.fingerprint)
            snaps[v] = {**s.to_json(), "path": rw.new, "rows": rw.rows, "size": rw.size, "sha256": rw.sha256, "fingerprint": fp}
    plan = _Plan(patches, compactions, snaps, sorted(rewrites), sorted(r.new for r in rewrites.values() if r.new is not None and write),
                 len(ids), effects.rows.get(head, 0), effects.hashes.get(head, 0))
    report = PurgeReport(
        table=files.name, dry_run=not write, rows=len(ids), change_rows=sum(r.removed.num_rows for r in rewrites.values()),
        versions=sorted(v for v, n in effects.rows.items() if n), records=sorted(patches), files=sorted(rewrites),
        bytes_rewritten=sum(r.old_size for r in rewrites.values()),
    )
    return report, plan


def _compaction_json(rec: compaction.CompactionRecord, rewrites: dict[str, _Rewrite]) -> dict:
    entries = []
    for cf in rec.files:
        entry = _file_entry(cf.to_json(), rewrites.get(cf.file.path))
        if entry is not None:
            entries.append(entry)
    replaces = []
    for p in rec.replaces:
        rw = rewrites.get(p)
        if rw is None:
            replaces.append(p)
        elif rw.new is not None:
            replaces.append(rw.new)
    return {**rec.to_json(), "files": entries, "replaces": replaces}


def _publish(files: TableFiles, head: CommitRecord, plan: _Plan, ids: np.ndarray, where: str, info: CommitInfo, started: float) -> CommitRecord | None:
    version = head.version + 1
    marker.upgrade(files.storage, 4)
    _write_state(files, version, "pending", plan.new)
    new_fp = None
    if head.fingerprint is not None:
        new_fp = fingerprint.encode((fingerprint.decode(head.fingerprint) - plan.head_hash) % fingerprint.MOD)
    record = CommitRecord(
        commit=Commit(
            version=version,
            timestamp=timestamps.next_commit_time(head.commit.timestamp, info.timestamp),
            operation=OPERATION,
            author=info.author,
            message=info.message,
            metadata=dict(info.metadata),
            parameters={"rows": int(len(ids)), "predicate_sha256": hashlib.sha256(where.encode()).hexdigest(), "records_rewritten": len(plan.patches)},
            num_rows=head.commit.num_rows - plan.head_rows,
        ),
        columns=head.columns,
        key=head.key,
        files=(),
        next_row_id=head.next_row_id,
        change_rows_total=plan.patches.get(head.version, {}).get("change_rows_total", head.change_rows_total),
        properties=head.properties,
        fingerprint=new_fp,
        table_id=head.table_id,
    )
    body = {**record.to_json(), "purge": _overlay(plan)}
    if time.monotonic() - started >= PUBLISH_WINDOW:
        return None
    if not files.storage.put_if_absent(layout.join(files.prefix, layout.log_record(version)), codec.encode(body)):
        return None
    try:
        files.log.write_hint(version)
    except OSError as e:
        warnings.warn(f"logstore: could not write the head hint of version {version}: {e}", RuntimeWarning, stacklevel=3)
    return record


def _overlay(plan: _Plan) -> dict:
    return {
        "records": {str(v): p for v, p in sorted(plan.patches.items())},
        "compactions": plan.compactions,
        "snapshots": {str(v): s for v, s in sorted(plan.snapshots.items())},
        "delete": plan.delete,
    }


def _plan_of(overlay: dict) -> _Plan:
    return _Plan(
        {int(v): p for v, p in overlay["records"].items()}, dict(overlay["compactions"]),
        {int(v): s for v, s in overlay["snapshots"].items()}, list(overlay["delete"]), [], 0, 0, 0,
    )


def _delete_new(files: TableFiles, plan: _Plan) -> None:
    _delete_paths(files, plan.new)


def _delete_paths(files: TableFiles, paths) -> None:
    for p in paths:
        try:
            files.storage.delete(files.path(p))
        except FileNotFoundError:
            pass


# --- roll forward and settle ------------------------------------------------------------------------------------


def _roll_forward(files: TableFiles, version: int, plan: _Plan) -> None:
    """Apply a committed purge (idempotent: a record already rewritten by it is left as it is)."""
    storage, prefix, log = files.storage, files.prefix, files.log
    for v, patch in sorted(plan.patches.items()):
        raw = log.read_raw(v)
        if version in (raw.get("purged") or []):
            continue
        raw.pop("checksum", None)
        storage.put(layout.join(prefix, layout.log_record(v)), codec.encode({**raw, **patch, "purged": [*(raw.get("purged") or []), version]}))
    for name, body in sorted(plan.compactions.items()):
        storage.put(layout.join(prefix, layout.COMPACTION_DIR, name), codec.encode(body))
    for v, body in sorted(plan.snapshots.items()):
        storage.put(snapshot.record_path(prefix, v), codec.encode(body))
    log.forget()
    _forget_cached(files)
    for segment in sorted({checkpoint.segment_of(v) for v in plan.patches}):
        _rewrite_checkpoint(files, segment)
    _delete_paths(files, plan.delete)
    _write_state(files, version, "done", [])


def _rewrite_checkpoint(files: TableFiles, segment: int) -> None:
    storage, prefix, log = files.storage, files.prefix, files.log
    path = checkpoint.path(prefix, segment)
    try:
        data = storage.read(path)
    except FileNotFoundError:
        return
    first, last = checkpoint.segment_range(segment)
    try:
        timeline = checkpoint.decode(segment, data, path).timeline
    except CorruptionError:
        storage.delete(path)  # damaged derived data (it may hold old records): written again by compact
        return
    raw = [log.read_raw(v) for v in range(first, last + 1)]
    storage.put(path, checkpoint.encode(segment, raw, timeline, log.table_id()))


def _write_state(files: TableFiles, version: int, state: str, new: list[str]) -> None:
    body = {"version": version, "state": state, "files": new, "written": timestamps.encode(timestamps.now())}
    files.storage.put(layout.join(files.prefix, STATE_FILE), codec.encode(body, indent=None))


def _read_state(files: TableFiles) -> dict | None:
    path = layout.join(files.prefix, STATE_FILE)
    try:
        return codec.decode(files.storage.read(path), path=path, version=None, what="purge state")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except CorruptionError as e:
        warnings.warn(f"logstore: ignoring {e}", RuntimeWarning, stacklevel=3)
        return None


_seen: dict[tuple[str, str], tuple[int, str] | None] = {}
_settle_lock = threading.Lock()


def _key(files: TableFiles) -> tuple[str, str]:
    return (files.storage.location, files.prefix)


def settle(files: TableFiles) -> None:
    """Before a read or write: finish a committed purge whose roll-forward was interrupted, and forget this
    process's cached records of the table if a purge happened since it last looked. One stat (a HEAD on object
    stores) when nothing changed; the state is read only when its file did."""
    key = _key(files)
    try:
        info = files.storage.stat(layout.join(files.prefix, STATE_FILE))
        stamp: tuple | None = (info.size, info.modified, getattr(info, "tag", None))
    except (FileNotFoundError, NotADirectoryError):
        stamp = None
    if key in _stamps and _stamps[key] == stamp and (stamp is None or time.time() - stamp[1] > 2):
        return  # unchanged (a state written in the last 2 s is read again: same size, same second)
    state = _read_state(files) if stamp is not None else None
    now = None if state is None else (int(state["version"]), str(state["state"]))
    waiting = False
    with _settle_lock:
        if now is not None and now[1] == "pending":
            overlay = _committed_overlay(files, now[0])
            if overlay is not None:
                _roll_forward(files, now[0], _plan_of(overlay))
                now, stamp = (now[0], "done"), None
            else:
                waiting = True  # not committed (yet): look again next time
        if _seen.get(key) != now:
            files.log.forget()
            _forget_cached(files)
            _seen[key] = now
        if waiting:
            _stamps.pop(key, None)
        elif stamp is not None or now is None:
            _stamps[key] = stamp


_stamps: dict[tuple[str, str], tuple | None] = {}


def forget() -> None:
    """Forget what this process saw of every table's purge state (tests: as a new process)."""
    _seen.clear()
    _stamps.clear()


def _committed_overlay(files: TableFiles, version: int) -> dict | None:
    """The `purge` overlay of version `version` if that record exists and is a PURGE, else None."""
    return _committed_overlay_of(files.log, version)


def pending_files(files: TableFiles) -> set[str]:
    """Files (relative to the store root) a pending purge wrote and is about to publish: vacuum keeps them like an
    in-flight writer's."""
    state = _read_state(files)
    if state is None or state.get("state") != "pending":
        return set()
    return {files.path(p) for p in state.get("files") or []}


def _forget_cached(files: TableFiles) -> None:
    """Drop the process-wide caches of the table's compaction records (records a purge rewrote)."""
    location, prefix = files.storage.location, files.prefix
    with compaction._cache_lock:
        for key in [k for k in compaction._cache if k[0] == location and k[1].startswith(prefix + "/")]:
            del compaction._cache[key]
    snapshot._ordered.clear()



def record_problem(log, version: int, raw: dict) -> str | None:
    """Why the stored record of `version` (`raw`) is not what the PURGE records it names made of it, or None.

    A record a purge rewrote lists that purge's version last in `purged`; the PURGE record must exist, be a PURGE
    and patch this version, and every field its patch sets must hold the patch's value (verify.py)."""
    purged = raw.get("purged")
    if not purged:
        return None
    last = purged[-1]
    try:
        overlay = _committed_overlay_of(log, int(last))
    except (TypeError, ValueError):
        return f"names purge {last!r}, not a version"
    if overlay is None:
        return f"says version {last} rewrote it, but version {last} is no PURGE"
    patch = overlay.get("records", {}).get(str(version))
    if patch is None:
        return f"says version {last} rewrote it, but that PURGE has no patch for version {version}"
    wrong = sorted(k for k, value in patch.items() if raw.get(k) != value)
    return f"fields {', '.join(wrong)} differ from the patch of PURGE version {last}" if wrong else None


def _committed_overlay_of(log, version: int) -> dict | None:
    try:
        raw = log.read_raw(version)
    except CorruptionError:
        return None
    if raw.get("operation") != OPERATION or not isinstance(raw.get("purge"), dict):
        return None
    return raw["purge"]
