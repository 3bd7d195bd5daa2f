"""Content fingerprints: the incrementally maintained value always equals a full recomputation.

Random sequences of every write operation (keyed and keyless tables, schema merges, restores to older schemas,
overwrites, empty commits) are applied; after each, the fingerprint in the commit record must equal the
fingerprint computed from the fully materialized version (read from the log alone, no snapshot).
"""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

import logstore
from logstore import fingerprint, testing


def _full(t, v):
    plan = testing.plan(t, v, exclude=frozenset(t.snapshots()))
    return fingerprint.encode(fingerprint.of_plan(testing.connection(testing.store(t)), plan))


def _random_ops(t, rng: random.Random, steps: int, keyed: bool) -> None:
    next_id = 1000
    for step in range(steps):
        kind = rng.choice(["append", "update", "delete", "upsert", "overwrite", "restore", "merge", "noop", "snapshot"])
        cols = [c.name for c in testing.log(t).head().columns]
        if kind in ("upsert",) and not keyed:
            kind = "append"
        if kind == "append" or kind == "merge":
            n = rng.randint(0, 4)
            data = {"k": list(range(next_id, next_id + n)), "x": [rng.choice([None, rng.randint(-5, 5)]) for _ in range(n)]}
            next_id += n
            for c in cols:
                if c not in data:
                    data[c] = [rng.choice([None, "a", "b"]) if c == "s" else rng.choice([None, 2.5]) for _ in range(n)]
            if kind == "merge":
                data[f"c{step}"] = pa.array([rng.choice([None, 1.5, -0.0]) for _ in range(n)], pa.float64())
                t.append(pa.table(data), schema_mode="merge")
            else:
                t.append(pa.table({c: data[c] for c in cols}).cast(t.schema()))
        elif kind == "update":
            t.update({"x": rng.choice(["x + 1", "NULL", "k % 3"])}, rng.choice([None, "k % 2 = 0", "x IS NULL", "false"]))
        elif kind == "delete":
            t.delete(rng.choice(["k % 5 = 0", "x > 2", "false", "k > 1010"]))
        elif kind == "upsert":
            current = t.read().to_pylist()
            picked = rng.sample(current, min(len(current), 2)) + [{"k": next_id}]
            next_id += 1
            rows = [{c: r.get(c) for c in cols} | {"x": rng.randint(-3, 3)} for r in picked]
            t.upsert(pa.Table.from_pylist(rows, schema=t.schema()))
        elif kind == "overwrite":
            current = t.read().to_pylist()
            kept = [r for r in current if rng.random() < 0.7]
            for r in kept:
                if rng.random() < 0.3:
                    r["x"] = rng.randint(-9, 9)
            t.overwrite(pa.Table.from_pylist(kept, schema=t.schema()))
        elif kind == "restore":
            t.restore(version=rng.randint(0, t.version))
        elif kind == "snapshot":
            t.snapshot()
        else:
            t.set_properties(snapshot_fraction=rng.choice([0.3, 0.5, 2.0]))
        head = testing.log(t).head()
        assert head.fingerprint == _full(t, head.version), f"step {step} ({kind}): incremental fingerprint is wrong"


@pytest.mark.parametrize("keyed", [True, False])
@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_fingerprint_equals_full_recomputation(tmp_path, keyed, seed):
    store = logstore.init(tmp_path / "s")
    first = pa.table({"k": pa.array([1, 2, 3], pa.int64()), "x": pa.array([1, None, 3], pa.int64()), "s": ["a", None, "c"]})
    t = store.create_table("t", first, key="k" if keyed else None, properties={"snapshot_commits": 4})
    _random_ops(t, random.Random(seed), 25, keyed)
    report = t.verify(full=True)
    assert report.ok and report.versions_checked == t.version + 1, report.problems


@pytest.mark.stress
@pytest.mark.parametrize("seed", range(10, 20))
def test_incremental_fingerprint_stress(tmp_path, seed):
    store = logstore.init(tmp_path / "s")
    first = pa.table({"k": pa.array([1, 2, 3], pa.int64()), "x": pa.array([1, None, 3], pa.int64()), "s": ["a", None, "c"]})
    t = store.create_table("t", first, key="k" if seed % 2 else None, properties={"snapshot_commits": 4})
    _random_ops(t, random.Random(seed), 150, seed % 2 == 1)


def test_fingerprint_properties(tmp_path):
    """Order-independent, row-id sensitive, unchanged by adding a nullable column, zero for an empty table."""
    store = logstore.init(tmp_path / "s")
    t = store.create_table("t", pa.table({"k": [1, 2], "x": [10, 20]}), key="k")
    v0 = testing.log(t).head().fingerprint
    t.append(pa.table({"k": [3], "x": [30], "extra": pa.array([None], pa.string())}), schema_mode="merge")
    t.delete("k = 3")
    assert testing.log(t).head().fingerprint == v0  # the added all-NULL column changed nothing
    t.restore(version=0)
    assert testing.log(t).head().fingerprint == v0
    t.delete()
    assert testing.log(t).head().fingerprint == "0" * 16
    u = store.create_table("u", pa.table({"k": [2, 1], "x": [20, 10]}), key="k")
    assert testing.log(u).head().fingerprint != v0  # same rows, other row ids: the fingerprint pins row identity
    assert fingerprint.hash_is_stable(testing.connection(store))
