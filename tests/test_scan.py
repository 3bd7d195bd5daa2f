"""The read plan (logstore/scan.py): rows in the table's row order without a sort, dead rows skipped by position.

The model tests (test_model.py) check rows and order against an in-memory model; these check what the model does
not reach: the order is the same whichever snapshots, compactions and carried-over files a read goes through, older
snapshots without `_version` are not used for ordered reads, and the row-id positions of base files are right
whatever their layout.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import logstore
from logstore import compaction, integrity, planner, scan, testing
from logstore.materialize import Source

from conftest import people

START = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)


def every_version(t):
    return [t.read(version=v) for v in range(t.version + 1)]


def interleaved_history(store, name="t"):
    """Appends, updates, deletes and upserts interleaved, so that compacted blocks mix insert-only and other
    versions, and one big append a compaction carries over unchanged."""
    t = store.create_table(name, people(range(20)), key="id", timestamp=START, properties={"snapshot_fraction": 1000.0, "snapshot_commits": 100_000})
    next_id = 20
    for v in range(1, 40):
        moment = START + dt.timedelta(hours=v)
        kind = v % 4
        if v == 13:  # big: carried over by the compaction of its block
            t.append(people(range(next_id, next_id + 3000)), timestamp=moment)
            next_id += 3000
        elif kind == 0:
            t.append(people(range(next_id, next_id + 3)), timestamp=moment)
            next_id += 3
        elif kind == 1:
            t.update(set={"score": f"score + {v}"}, where=f"id % 3 = {v % 3}", timestamp=moment)
        elif kind == 2:
            t.delete(where=f"id % 7 = {v % 7} AND id < {next_id - 5}", timestamp=moment)
        else:
            t.upsert(people([v, next_id], scores=[float(v), 1.0]), timestamp=moment)
            next_id += 1
    return t


def test_order_is_the_same_through_compactions_snapshots_and_vacuum(store, no_fsync, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    monkeypatch.setattr(compaction, "FANOUT", 4)
    monkeypatch.setattr(compaction, "CARRY_ALWAYS_BYTES", 10_000)  # the 3,000-row append (~25 KB); the others are < 5 KB
    t = interleaved_history(store)
    before = every_version(t)
    made = t.compact()
    assert made
    carried = [f for r in made for f in r.files if f.file.path.startswith("data/")]
    assert carried, "the big append should have been carried over"
    fresh = logstore.open(store.path).table("t")
    assert every_version(fresh) == before
    for v in (5, 17, 30, 39):
        fresh._write_snapshot(v)
    assert every_version(logstore.open(store.path).table("t")) == before
    fresh.vacuum(dry_run=False, older_than=0)
    assert every_version(logstore.open(store.path).table("t")) == before


def test_each_read_matches_the_join_plan(store, no_fsync, monkeypatch):
    """Same rows as the join plan (materialize.Plan), in (version, row id) order."""
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "1")
    monkeypatch.setattr(compaction, "FANOUT", 3)
    t = interleaved_history(store)
    con = testing.connection(store)
    for v in range(t.version + 1):
        files = testing.files(t)
        joined = con.sql(f"SELECT * FROM ({planner.plan(files, v).relation_sql()}) ORDER BY _row_id").to_arrow_table()
        scanned = con.sql(planner.scan_plan(files, v).select_sql(row_id=True, version=True)).to_arrow_table()
        assert scanned.drop_columns(["_version"]).sort_by("_row_id") == joined
        keys = list(zip(scanned.column("_version").to_pylist(), scanned.column("_row_id").to_pylist()))
        assert keys == sorted(keys)


def test_snapshot_holds_rows_in_row_order_with_their_versions(store, no_fsync):
    t = store.create_table("t", people(range(5)), key="id", timestamp=START)
    t.update(set={"score": "score + 1"}, where="id IN (1, 3)")
    t.append(people([5]))
    version = t.snapshot()
    path = os.path.join(store.path, "tables", "t", "snapshots")
    (name,) = os.listdir(path)
    rows = pq.read_table(os.path.join(path, name))
    assert rows.column_names[:2] == ["_row_id", "_version"]
    assert list(zip(rows.column("_version").to_pylist(), rows.column("_row_id").to_pylist())) == [(0, 0), (0, 2), (0, 4), (1, 1), (1, 3), (2, 5)]
    record = json.loads(open(os.path.join(store.path, "tables", "t", "_snapshots", f"{version:020d}.json")).read())
    assert record["format_version"] == 3
    assert planner.scan_plan(testing.files(t), version).snapshot is not None


def test_an_old_snapshot_without_versions_is_not_used_for_reads(store, no_fsync):
    """A format-2 snapshot (sorted by row id, no _version) cannot give the row order: reads use the log instead."""
    t = store.create_table("t", people(range(5)), key="id", timestamp=START)
    t.update(set={"score": "score + 1"}, where="id = 1")
    expected = t.read()
    t.snapshot()
    snaps = os.path.join(store.path, "tables", "t", "snapshots")
    (name,) = os.listdir(snaps)
    full = os.path.join(snaps, name)
    legacy = pq.read_table(full).drop_columns(["_version"]).sort_by("_row_id")
    os.unlink(full)
    pq.write_table(legacy, full, compression="zstd")
    record_path = os.path.join(store.path, "tables", "t", "_snapshots", f"{1:020d}.json")
    record = json.loads(open(record_path).read())
    del record["format_version"]
    record["size"] = os.path.getsize(full)
    record["sha256"] = hashlib.sha256(open(full, "rb").read()).hexdigest()
    record = integrity.seal({k: v for k, v in record.items() if k != "checksum"})
    os.unlink(record_path)
    with open(record_path, "w") as f:
        json.dump(record, f)
    fresh = logstore.open(store.path).table("t")
    assert planner.scan_plan(testing.files(fresh), 1).snapshot is None  # not used for ordered reads
    assert planner.plan(testing.files(fresh), 1).snapshot is not None  # still good for the join plan (writes, lookups)
    assert fresh.read() == expected
    assert [r["id"] for r in expected.to_pylist()] == [0, 2, 3, 4, 1]


def _file(tmp_path, ids, *, inserts_only: bool, name="f.parquet") -> scan.File:
    path = str(tmp_path / name)
    pq.write_table(pa.table({"_row_id": pa.array(ids, pa.int64())}), path, row_group_size=4)
    return scan.File(Source(path, frozenset()), len(ids), 0, 0, inserts_only, ("test", path, len(ids), name))


@pytest.mark.parametrize(
    "ids, inserts_only",
    [
        ([10, 11, 12, 13, 14, 15, 16, 17, 18], True),  # dense: from the statistics alone
        ([10, 11, 13, 14, 20, 21, 22, 30, 31], True),  # gaps
        ([5, 3, 9, 1, 7, 2, 8, 6, 4], False),  # a snapshot's order: not sorted by row id
        ([4, 5, 6, 7, 0, 1, 2, 3, 8], False),  # every id of a range, out of order: statistics must not be trusted
    ],
)
def test_positions_of_row_ids(tmp_path, ids, inserts_only):
    scan.forget()
    f = _file(tmp_path, ids, inserts_only=inserts_only)
    wanted = np.array(sorted({ids[1], ids[4], ids[-1], 999, -1}), dtype=np.int64)
    got = sorted(scan._positions(f, wanted).tolist())
    assert got == sorted(i for i, x in enumerate(ids) if x in set(wanted.tolist()))


def test_restricted_plan_reads_only_the_rows_asked_for(store, no_fsync, monkeypatch):
    monkeypatch.setattr(compaction, "FANOUT", 3)
    t = interleaved_history(store)
    files, con = testing.files(t), testing.connection(store)
    for v in (0, 7, 20, t.version):
        plan = planner.scan_plan(files, v)
        everything = con.sql(plan.select_sql(row_id=True)).to_arrow_table()
        present = everything.column("_row_id").to_pylist()
        asked = sorted(set(present[::3]) | {10_000, 19})  # some rows, one never used, one maybe deleted
        got = con.sql(plan.restricted(np.array(asked)).select_sql(row_id=True)).to_arrow_table()
        assert got == everything.filter(pc.is_in(everything.column("_row_id"), pa.array(asked, pa.int64())))


def test_a_store_with_only_old_snapshots_gets_an_ordered_one_when_due(store, no_fsync):
    """The snapshot policy counts from the newest snapshot reads can use: old ones do not hold back a new one."""
    t = store.create_table("t", people(range(4)), key="id", timestamp=START, properties={"snapshot_commits": 3})
    t.update(set={"score": "score + 1"}, where="id = 1")
    version = t.snapshot()
    record_path = os.path.join(store.path, "tables", "t", "_snapshots", f"{version:020d}.json")
    record = json.loads(open(record_path).read())
    del record["format_version"]  # as if format 2 had written it (reads then ignore it)
    os.unlink(record_path)
    with open(record_path, "w") as f:
        json.dump(integrity.seal({k: v for k, v in record.items() if k != "checksum"}), f)
    fresh = logstore.open(store.path).table("t")
    fresh.append(people([10]))
    assert fresh.snapshots() == [1, 2]  # 3 commits since the start (no usable snapshot): due; before, 1 since version 1
    assert planner.scan_plan(testing.files(fresh), 2).snapshot is not None


def test_checkouts_are_the_same_bytes_through_compaction_and_snapshots(store, no_fsync, monkeypatch, tmp_path):
    """Reproducible: two checkouts of the same version are the same bytes, whatever files the reads went through."""
    from logstore.export import write_relation

    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    monkeypatch.setattr(compaction, "FANOUT", 4)
    t = interleaved_history(store)

    def checkout(v: int, name: str) -> bytes:
        path = tmp_path / f"{name}-{v}.parquet"
        write_relation(t.to_duckdb(version=v), str(path), store=store)
        return path.read_bytes()

    before = {v: checkout(v, "before") for v in (3, 17, 39)}
    t.compact()
    t.snapshot()
    t._write_snapshot(17)
    for v, data in before.items():
        assert checkout(v, "after") == data


@pytest.mark.parametrize("which", ["snapshot", "change file"])
def test_a_file_unreadable_by_position_is_skipped_or_named(store, no_fsync, monkeypatch, which):
    """With size-only checks, a file replaced by garbage of the same size is found by the position reads first: a
    snapshot is skipped (as DuckDB failures of a snapshot are), a change file is reported by name, never a
    traceback from pyarrow."""
    monkeypatch.setenv("LOGSTORE_VERIFY_READS", "size")
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = store.create_table("t", people(range(5)), key="id", timestamp=START)
    t.update(set={"score": "score + 1"}, where="id = 1")
    t.snapshot()
    t.update(set={"score": "score + 2"}, where="id = 2")
    expected = t.read()
    table_dir = os.path.join(store.path, "tables", "t")
    if which == "snapshot":
        (name,) = os.listdir(os.path.join(table_dir, "snapshots"))
        victim = os.path.join(table_dir, "snapshots", name)
    else:
        victim = os.path.join(table_dir, testing.log(t).read(2).files[0].path)
    size = os.path.getsize(victim)
    os.unlink(victim)
    with open(victim, "wb") as f:
        f.write(bytes(size))
    scan.forget()
    fresh = logstore.open(store.path).table("t")
    if which == "snapshot":
        with pytest.warns(RuntimeWarning, match="snapshot of version 1 is unreadable"):
            assert fresh.read() == expected
    else:
        with pytest.raises(logstore.CorruptionError, match=os.path.basename(victim)):
            fresh.read()
