"""Table.to_dask on a real dask.distributed LocalCluster with two worker processes (logstore/fragments.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

import logstore

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def history(root) -> logstore.Table:
    store = logstore.init(root)
    t = store.create_table("t", pa.table({"k": list(range(100)), "x": [i * 1.5 for i in range(100)], "s": [f"s{i}" for i in range(100)]}), key="k")
    t.append(pa.table({"k": list(range(100, 150)), "x": [0.5] * 50, "s": ["new"] * 50}))
    t.update({"x": "x + 1"}, "k % 3 = 0")
    t.delete("k % 10 = 1")
    return t


def test_dask_frame_equals_read_with_a_partition_per_fragment(client, tmp_path):
    t = history(tmp_path / "store")
    frame = t.to_dask(rows_per_fragment=40)
    assert frame.npartitions == len(t.fragments(rows_per_fragment=40)) > 1
    assert list(frame.columns) == ["k", "x", "s"]
    computed = client.compute(frame).result()
    assert pa.Table.from_pandas(computed, preserve_index=False).cast(t.schema()).equals(t.read())
    total = client.compute(frame.x.sum()).result()
    assert total == pytest.approx(sum(t.read().column("x").to_pylist()))


def test_dask_reads_old_versions_and_columns(client, tmp_path):
    t = history(tmp_path / "store")
    frame = t.to_dask(version=1, columns=["s"], rows_per_fragment=60)
    assert frame.npartitions > 1
    computed = client.compute(frame).result()
    assert computed["s"].tolist() == t.read(version=1, columns=["s"]).column("s").to_pylist()


def test_dask_append_writes_a_change_file_per_partition_in_one_commit(client, tmp_path):
    import pandas

    from conftest import staging_leftovers

    store = logstore.init(tmp_path / "store")
    t = store.create_table("t", pa.table({"k": [0, 1], "x": [0.0, 1.0]}), key="k")
    frame = dd.from_pandas(pandas.DataFrame({"k": range(2, 302), "x": [float(i) for i in range(2, 302)]}), npartitions=4)
    done = t.append(frame, message="from dask")
    assert done.version == 1 and done.rows_inserted == 300
    record = t._log.read(1)
    assert len(record.files) == 4
    expected = pa.table({"k": list(range(302)), "x": [float(i) for i in range(302)]})
    assert t.read().equals(expected)
    assert t.verify(full=True).problems == []
    assert client.compute(t.to_dask(rows_per_fragment=100)).result()["k"].tolist() == list(range(302))
    # later commits and compaction keep the rows of the partitions, in order
    t.update({"x": "-x"}, "k % 50 = 0")
    t.compact()
    assert t.read(version=1).equals(expected)
    assert staging_leftovers(store.path) == []


def test_dask_append_key_checks_and_failures_leave_the_store_as_before(client, tmp_path):
    import pandas

    from conftest import file_state

    store = logstore.init(tmp_path / "store")
    t = store.create_table("t", pa.table({"k": [0, 1], "x": [0.0, 1.0]}), key="k")
    before = file_state(store.path)
    clash = dd.from_pandas(pandas.DataFrame({"k": [5, 6, 1, 7], "x": [1.0] * 4}), npartitions=2)
    with pytest.raises(logstore.KeyViolationError, match="already in the table"):
        t.append(clash)
    across = dd.from_pandas(pandas.DataFrame({"k": [5, 6, 7, 5], "x": [1.0] * 4}), npartitions=2)  # 5 in two partitions
    with pytest.raises(logstore.KeyViolationError, match="duplicate"):
        t.append(across)
    broken = dd.from_pandas(pandas.DataFrame({"k": [8, 9, 10, 11], "x": ["a", "b", "c", "d"]}), npartitions=2)
    with pytest.raises(logstore.LogstoreError):  # a worker fails: 'a' is no DOUBLE
        t.append(broken)
    assert file_state(store.path) == before
    assert t.version == 0
