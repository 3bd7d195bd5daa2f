"""Snapshots: written by threshold or on demand, used by reads, and never able to change an answer."""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow as pa
import pytest

import logstore
from logstore import testing

from conftest import people

BIG = 1e9  # a snapshot_fraction that never triggers


def table_dir(store, name="t") -> Path:
    return Path(store.path) / "tables" / name


def snapshot_files(store, name="t") -> list[Path]:
    return sorted((table_dir(store, name) / "snapshots").glob("*.parquet"))


def all_versions(t) -> list[pa.Table]:
    return [t.read(version=v) for v in range(t.version + 1)]


def test_no_snapshot_by_default_for_a_few_small_appends(store):
    t = store.create_table("t", people(range(10)), key="id")
    for i in range(3):
        t.append(people([100 + i]))  # insert-only commits do not count as change rows
    assert t.snapshots() == []


def test_snapshot_every_n_commits(store):
    t = store.create_table("t", people(range(5)), key="id", properties={"snapshot_commits": 3, "snapshot_fraction": BIG})
    assert t.properties["snapshot_commits"] == 3
    for i in range(8):
        t.append(people([100 + i]))
    # version 0 is the first commit: 3 commits are versions 0, 1, 2
    assert t.snapshots() == [2, 5, 8]
    assert len(snapshot_files(store)) == 3


def test_set_properties_changes_the_threshold(store):
    t = store.create_table("t", people(range(5)), key="id", properties={"snapshot_fraction": BIG})
    for i in range(3):
        t.append(people([100 + i]))
    assert t.snapshots() == []
    c = t.set_properties(snapshot_commits=2)
    assert c.operation == "SET PROPERTIES" and c.version == 4
    assert c.rows_inserted == c.rows_updated == c.rows_deleted == 0
    assert t.properties["snapshot_commits"] == 2
    assert t.read().equals(t.read(version=3))
    assert t.snapshots() == [4]  # 5 commits since the start: due at once
    t.append(people([200]))
    t.append(people([201]))
    assert t.snapshots() == [4, 6]


def test_snapshot_by_fraction_of_changed_rows(store):
    t = store.create_table("t", people(range(10)), key="id", properties={"snapshot_fraction": 0.5})
    t.update(set={"score": "0"}, where="id < 3")  # 3 change rows < 5
    assert t.snapshots() == []
    t.delete(where="id >= 7")  # 6 change rows >= 0.5 * 7 rows
    assert t.snapshots() == [2]
    t.update(set={"score": "1"}, where="id = 0")
    assert t.snapshots() == [2]


def test_forced_snapshot(store):
    t = store.create_table("t", people(range(4)), key="id")
    t.update(set={"name": "'x'"}, where="id = 1")
    assert t.snapshot() == 1
    assert t.snapshots() == [1]
    assert t.snapshot() == 1  # idempotent
    assert t.snapshots() == [1]
    assert len(snapshot_files(store)) == 1
    assert t.read().to_pylist() == t.read(version=1).to_pylist()


def test_forced_snapshot_of_empty_and_schema_only_table(store):
    t = store.create_table("t", schema={"a": "BIGINT", "b": "VARCHAR"})
    assert t.snapshot() == 0
    assert t.read().num_rows == 0
    assert t.read().schema.names == ["a", "b"]
    t.append(pa.table({"a": [1], "b": ["x"]}))
    assert t.read().to_pylist() == [{"a": 1, "b": "x"}]


def test_reads_use_the_newest_snapshot_at_or_below(store):
    t = store.create_table("t", people(range(4)), key="id", properties={"snapshot_fraction": BIG})
    t.update(set={"score": "10"}, where="id = 0")  # 1
    t.snapshot()
    t.update(set={"score": "20"}, where="id = 1")  # 2
    t.update(set={"score": "30"}, where="id = 2")  # 3
    t.snapshot()
    t.delete(where="id = 3")  # 4
    expected = [t.read(version=v).to_pylist() for v in range(5)]
    assert [testing.plan(t, v).snapshot_version for v in range(5)] == [-1, 1, 1, 3, 3]
    # with the change files up to version 3 gone, versions 3 and 4 still read from the snapshot of 3
    for v in range(4):
        for f in testing.log(t).read(v).files:
            (table_dir(store) / f.path).unlink()
    fresh = logstore.open(store.path).table("t")
    assert fresh.read(version=3).to_pylist() == expected[3]
    assert fresh.read(version=4).to_pylist() == expected[4]
    with pytest.raises(logstore.CorruptionError):
        fresh.read(version=2)


def _damaged_table(store):
    t = store.create_table("t", people(range(6)), key="id", properties={"snapshot_commits": 2, "snapshot_fraction": BIG})
    t.update(set={"score": "score * 10"}, where="id % 2 = 0")
    t.delete(where="id = 5")
    t.upsert(people([1, 9], ["one", "nine"]))
    t.overwrite(people([0, 1, 2, 9, 11]))
    t.append(people([12]))
    t.restore(2)
    assert t.snapshots()
    return t


def _same_size_garbage(p: Path):
    p.write_bytes(b"\x00" * p.stat().st_size)


def _truncated(p: Path):
    p.write_bytes(p.read_bytes()[:10])


def _deleted(p: Path):
    p.unlink()


def _bad_magic_same_size(p: Path):
    data = bytearray(p.read_bytes())
    data[-4:] = b"XXXX"  # the Parquet footer magic
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_same_size_garbage, _truncated, _deleted, _bad_magic_same_size])
def test_damaged_snapshot_falls_back_with_a_warning(store, damage):
    t = _damaged_table(store)
    expected = [r.to_pylist() for r in all_versions(t)]
    for p in snapshot_files(store):
        damage(p)
    fresh = logstore.open(store.path).table("t")
    with pytest.warns(RuntimeWarning, match="snapshot"):
        got = [r.to_pylist() for r in all_versions(fresh)]
    assert got == expected
    # the other readers fall back as well
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert fresh.to_polars().to_arrow().to_pylist() == expected[-1]
        assert logstore.read_arrow(store.path, "t", version=3).to_pylist() == expected[3]


@pytest.mark.parametrize("damage", [_same_size_garbage, _truncated, _deleted])
def test_writes_after_snapshot_damage(store, damage):
    """Writes read the head too: a damaged snapshot must not break them or change their result."""
    t = _damaged_table(store)
    for p in snapshot_files(store):
        damage(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        before = t.read().to_pylist()
        t.update(set={"name": "'u'"}, where="id = 1")
        t.upsert(people([1, 50], ["up", "new"]))
        t.delete(where="id = 0")
        t.overwrite(pa.table(t.read()))
        t.restore(0)
        t.snapshot()
        after = t.read().to_pylist()
    assert sorted(after, key=lambda r: r["id"]) == people(range(6)).to_pylist()
    assert before != after


@pytest.mark.parametrize("record_damage", ["garbage", "deleted", "wrong_size"])
def test_damaged_snapshot_record(store, record_damage):
    t = _damaged_table(store)
    expected = [r.to_pylist() for r in all_versions(t)]
    records = sorted((table_dir(store) / "_snapshots").glob("*.json"))
    assert records
    for r in records:
        if record_damage == "garbage":
            r.write_text("{not json")
        elif record_damage == "deleted":
            r.unlink()
        else:
            r.write_text(r.read_text().replace('"size": ', '"size": 1'))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [r.to_pylist() for r in all_versions(logstore.open(store.path).table("t"))]
    assert got == expected
    if record_damage != "deleted":
        assert any(issubclass(w.category, RuntimeWarning) for w in caught)


def test_newer_snapshot_damaged_older_one_used(store):
    t = store.create_table("t", people(range(4)), key="id", properties={"snapshot_fraction": BIG})
    t.update(set={"score": "1"}, where="id = 0")
    t.snapshot()  # 1
    t.update(set={"score": "2"}, where="id = 1")
    t.snapshot()  # 2
    t.update(set={"score": "3"}, where="id = 2")
    expected = t.read().to_pylist()
    newest = [p for p in snapshot_files(store) if p.name.startswith(f"{2:020d}")]
    assert len(newest) == 1
    _same_size_garbage(newest[0])
    fresh = logstore.open(store.path).table("t")
    with pytest.warns(RuntimeWarning):
        assert fresh.read().to_pylist() == expected
    assert testing.plan(fresh, 3, exclude=frozenset({2})).snapshot_version == 1


def test_snapshot_then_schema_evolution(store):
    t = store.create_table("t", people([1, 2]), key="id")
    t.snapshot()
    t.append(pa.table({"id": [3], "name": ["c"], "score": [1.0], "tag": ["new"]}), schema_mode="merge")
    t.snapshot()
    t.upsert(pa.table({"id": [1], "name": ["a"], "score": [0.5], "tag": ["up"]}))
    assert t.read(version=0).schema.names == ["id", "name", "score"]
    assert t.read().column("tag").to_pylist() == [None, "new", "up"]  # id 2, then 3 (version 1), then 1 (version 2)
    for p in snapshot_files(store):
        p.unlink()
    with pytest.warns(RuntimeWarning):
        assert logstore.open(store.path).table("t").read().column("tag").to_pylist() == [None, "new", "up"]
