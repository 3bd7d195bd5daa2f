"""Table.to_ray on a local Ray instance (logstore/fragments.py): one read task per fragment."""

from __future__ import annotations

import pyarrow as pa
import pytest

import logstore

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_dataset_equals_read(ray_session, tmp_path):
    store = logstore.init(tmp_path / "store")
    t = store.create_table("t", pa.table({"k": list(range(200)), "x": [float(i) for i in range(200)]}), key="k")
    t.append(pa.table({"k": list(range(200, 260)), "x": [1.0] * 60}))
    t.update({"x": "-x"}, "k % 4 = 0")
    t.delete("k BETWEEN 10 AND 20")
    ds = t.to_ray(rows_per_fragment=64)
    assert ds.count() == t.read().num_rows
    got = pa.concat_tables(ray.get(ds.to_arrow_refs())).sort_by("k")
    assert got.cast(t.schema()).equals(t.read().sort_by("k"))
    old = t.to_ray(version=0, columns=["x"])
    assert sorted(old.to_pandas()["x"]) == sorted(t.read(version=0).column("x").to_pylist())


def test_ray_append_writes_a_change_file_per_block_in_one_commit(ray_session, tmp_path):
    store = logstore.init(tmp_path / "store")
    t = store.create_table("t", pa.table({"k": [0], "x": [0.0]}), key="k")
    ds = ray.data.from_arrow([pa.table({"k": list(range(i, i + 50)), "x": [1.0] * 50}) for i in (1, 51, 101)])
    done = t.append(ds)
    assert done.rows_inserted == 150 and len(t._log.read(1).files) == 3
    assert t.read().column("k").to_pylist() == list(range(151))
    with pytest.raises(logstore.KeyViolationError):
        t.append(ray.data.from_arrow([pa.table({"k": [200, 5], "x": [1.0, 1.0]})]))
    assert t.version == 1 and t.verify(full=True).problems == []
