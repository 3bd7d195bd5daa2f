"""Compaction (logstore/compaction.py): every version reads exactly as before, whatever was compacted or removed."""

from __future__ import annotations

import datetime as dt
import os
import random
import warnings

import pyarrow as pa
import pytest

import logstore
from logstore import compaction, testing

from conftest import people

START = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(compaction, "FANOUT", 3)


def fresh(store, name="t"):
    return logstore.open(store.path).table(name)


def random_history(store, seed: int, commits: int, *, name="t", snapshots=False):
    """A random mix of appends, upserts, updates, deletes, overwrites, restores and a schema change."""
    rng = random.Random(seed)
    props = {} if snapshots else {"snapshot_fraction": 1000.0, "snapshot_commits": 100_000}
    props.update({"snapshot_commits": 7} if snapshots else {})
    t = store.create_table(name, people(range(6)), key="id", timestamp=START, properties=props)
    next_id, extra = 6, False

    def rows(ids, scores=None):
        data = people(ids, scores=scores)
        has_tag = "tag" in t.schema().names  # a restore may go back to before the column was added
        return data.append_column("tag", pa.array([None] * len(data), pa.string())) if has_tag else data

    for v in range(1, commits + 1):
        moment = START + dt.timedelta(hours=v)
        kind = rng.choice(["append", "append", "upsert", "update", "delete", "restore", "overwrite", "merge"])
        if kind == "append":
            n = rng.randint(1, 4)
            t.append(rows(range(next_id, next_id + n)), timestamp=moment)
            next_id += n
        elif kind == "upsert":
            ids = rng.sample(range(next_id + 2), 3)
            t.upsert(rows(ids, scores=[rng.random() for _ in ids]), timestamp=moment)
            next_id = max(next_id, max(ids) + 1)
        elif kind == "update":
            t.update(set={"name": f"'u{v}'", "score": f"score + {v}"}, where=f"id % 3 = {rng.randint(0, 2)}", timestamp=moment)
        elif kind == "delete":
            t.delete(where=f"id % 5 = {rng.randint(0, 4)}", timestamp=moment)
        elif kind == "restore":
            t.restore(version=rng.randint(0, t.version), timestamp=moment)
        elif kind == "overwrite":
            t.overwrite(rows(range(next_id - 4, next_id)), timestamp=moment)
        elif kind == "merge" and "tag" not in t.schema().names:
            data = people([next_id]).append_column("tag", pa.array([f"t{v}"]))
            t.append(data, schema_mode="merge", timestamp=moment)
            next_id, extra = next_id + 1, True
        else:
            t.append(rows([next_id]), timestamp=moment)
            next_id += 1
    return t


def all_versions(t):
    return [t.read(version=v) for v in range(t.version + 1)]


def compacted_dir(store, name="t"):
    return os.path.join(store.path, "tables", name, compaction.COMPACTED_DATA_DIR)


def remove_replaced(store, t):
    """What vacuum may do: delete every file a compaction record replaces."""
    removed = 0
    directory = os.path.join(store.path, "tables", t.name, compaction.COMPACTION_DIR)
    for name in os.listdir(directory):
        first, last = (int(x) for x in name[:-5].split("-"))
        for path in compaction.load(testing.storage(t), testing.prefix(t), first, last).replaces:
            full = os.path.join(store.path, "tables", t.name, path)
            if os.path.exists(full):
                os.unlink(full)
                removed += 1
    return removed


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("snapshots", [False, True])
def test_every_version_reads_the_same_after_compact(store, no_fsync, small_blocks, monkeypatch, seed, snapshots):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = random_history(store, seed, 24, snapshots=snapshots)
    before = all_versions(t)
    made = t.compact()
    assert made and all(r.first % 3 == 0 for r in made)
    assert [r.to_json() for r in t.compact()] == []  # nothing left to do
    assert all_versions(fresh(store)) == before
    assert remove_replaced(store, t) > 0
    assert all_versions(fresh(store)) == before  # originals gone: the compacted blocks stand for them
    assert fresh(store).schema() == t.schema()


@pytest.mark.parametrize("seed", [0])
def test_automatic_compaction_reads_like_no_compaction(store, no_fsync, small_blocks, monkeypatch, seed):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    plain = random_history(store, seed, 27, name="plain")
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "1")
    auto = random_history(store, seed, 27, name="auto")
    assert os.listdir(compacted_dir(store, "auto"))
    assert not os.path.exists(compacted_dir(store, "plain"))
    assert all_versions(fresh(store, "auto")) == all_versions(plain)
    remove_replaced(store, auto)
    assert all_versions(fresh(store, "auto")) == all_versions(plain)
    # the latest version's plan opens few files: at most FANOUT-1 units per level plus the last versions
    plan = testing.plan(fresh(store, "auto"), 27)
    assert len(plan.inserts) + len(plan.changes) <= 2 * (2 * 3 + 3)


def test_file_count_stays_bounded(store, no_fsync, small_blocks):
    t = store.create_table("t", people(range(3)), key="id", properties={"snapshot_fraction": 1000.0, "snapshot_commits": 100_000})
    for i in range(80):
        t.append(people([100 + i]))
    plan = testing.plan(fresh(store), t.version)
    assert len(plan.inserts) + len(plan.changes) <= 2 * 3 + 2  # levels 1..3 of FANOUT 3, plus the tail
    assert t.read().num_rows == 83


def test_damaged_compaction_record_is_ignored(store, no_fsync, small_blocks, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = random_history(store, 7, 20)
    before = all_versions(t)
    t.compact()
    directory = os.path.join(store.path, "tables", "t", compaction.COMPACTION_DIR)
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "r+") as f:
            text = f.read().replace('"rows": ', '"rows": 1', 1)
            f.seek(0)
            f.write(text)
    compaction._cache.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert all_versions(fresh(store)) == before
    assert any("damaged compaction record" in str(w.message) for w in caught)


def test_unpublished_compaction_is_invisible(store, no_fsync, small_blocks, monkeypatch):
    """A compactor that dies after writing its files but before its record changes nothing for readers."""
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = random_history(store, 3, 12)
    before = all_versions(t)
    real = testing.storage(t).put_if_absent

    def crash(path, data):
        if compaction.COMPACTION_DIR in path:
            raise OSError("crash before the record")
        return real(path, data)

    monkeypatch.setattr(testing.storage(t), "put_if_absent", crash)
    with pytest.warns(RuntimeWarning, match="could not compact"):
        assert t.compact() == []
    assert os.listdir(compacted_dir(store))  # the orphan files are there ...
    assert all_versions(fresh(store)) == before  # ... and nobody reads them


def test_racing_compactors_publish_one_record(store, no_fsync, small_blocks, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = random_history(store, 5, 10)
    before = all_versions(t)
    other = fresh(store)
    first = compaction.compact_block(testing.files(t), 2, 0)
    compaction._cache.clear()
    monkeypatch.setattr(compaction, "load", lambda *a, **k: None)  # the other one did not see it: it loses the put
    second = compaction.compact_block(testing.files(other), 2, 0)
    monkeypatch.undo()
    assert second is None or second.files == first.files
    assert len(os.listdir(compacted_dir(store))) == len([f for f in first.files if f.file.path.startswith("compacted/")])
    assert all_versions(fresh(store)) == before
