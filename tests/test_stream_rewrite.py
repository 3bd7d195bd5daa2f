"""Streamed upsert and overwrite (logstore/ingest.py's staged rewrite): the same versions as the in-memory path.

A differential model test runs one random history twice, on two stores: once with every input an Arrow table
(operations.upsert/overwrite in memory), once with every input a stream of small record batches and a buffer of a
few rows (so that nearly every input is staged to Parquet and the change rows come from DuckDB over files). Every
version must then have the same rows and row ids, the same fingerprint, the same counts and the same change feed,
and every failing operation must fail alike, leaving the store as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import ingest

from conftest import file_state, staging_leftovers

FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
STRESS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BUFFER = 5  # rows: an input of more is staged


def rows(keys, tag: str = "a", *, extra: bool = False) -> pa.Table:
    keys = list(keys)
    table = pa.table({
        "k": pa.array(keys, pa.int64()),
        "x": pa.array([None if k % 7 == 3 else k * 10 for k in keys], pa.int64()),
        "s": pa.array([f"{tag}{k}" for k in keys]),
    })
    return table.append_column("y", pa.array([k / 4 for k in keys], pa.float64())) if extra else table


def batches(table: pa.Table) -> pa.RecordBatchReader:
    """A stream of `table`'s rows, 3 rows a batch."""
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3))


def _input(op: tuple) -> pa.Table:
    """The input of one generated write, as an Arrow table (some of them bad at their end)."""
    _, start, n, tag, extra, flaw = op
    table = rows(range(start, start + n), tag, extra=extra)
    if flaw == "duplicate" and n:
        table = pa.concat_tables([table, table.slice(0, 1)])
    elif flaw == "null key":
        table = pa.concat_tables([table, pa.table({name: pa.nulls(1, f.type) for name, f in zip(table.column_names, table.schema)})])
    elif flaw == "bad type":  # a row whose x is text (for an empty write, the whole input)
        one = table.slice(0, 1) if n else rows(range(start, start + 1), tag, extra=extra)
        bad = one.set_column(1, "x", pa.array(["not a number"]))
        table = pa.concat_tables([table.cast(bad.schema), bad])
    return table


write = st.tuples(
    st.sampled_from(["upsert", "overwrite"]), st.integers(0, 30), st.integers(0, 14), st.sampled_from(["a", "b"]),
    st.booleans(), st.sampled_from([None, None, None, "duplicate", "null key", "bad type"]),
)
other = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 8)),
    st.tuples(st.just("update"), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, 4)),
)


def apply(t: logstore.Table, op: tuple, *, streamed: bool, state: dict) -> str | None:
    """Apply one operation; the name of the error it raised, if any."""
    try:
        if op[0] in ("upsert", "overwrite"):
            data = _input(op)
            getattr(t, op[0])(batches(data) if streamed else data, schema_mode="merge" if op[4] else None)
        elif op[0] == "append":
            start = state.setdefault("next", 100)
            state["next"] = start + op[1]
            t.append(rows(range(start, start + op[1])), schema_mode="merge")
        elif op[0] == "update":
            t.update({"x": "x + 1"}, f"k % 4 = {op[1]}")
        else:
            t.delete(f"k % 5 = {op[1]}")
    except logstore.LogstoreError as e:
        return type(e).__name__
    return None


def versions(t: logstore.Table) -> list:
    """Everything a version is: its rows in row order, fingerprint, counts and change feed (with row ids)."""
    got = []
    for v in range(t.version + 1):
        info = t.commit_info(v)
        feed = t.changes(v, v).drop_columns(["_timestamp"]).sort_by([("_row_id", "ascending"), ("_change_type", "ascending")])
        got.append((
            v, t.read(version=v).to_pylist(), t.fingerprint(version=v), info.operation,
            info.rows_inserted, info.rows_updated, info.rows_deleted, info.num_rows, feed.to_pylist(),
        ))
    return got


def check_history(root, ops, *, key: bool) -> None:
    """Run `ops` in memory and streamed; the two stores' versions must be the same (module docstring)."""
    memory = logstore.init(root / "memory")
    streamed = logstore.init(root / "streamed")
    tables = [s.create_table("t", rows(range(20)), key="k" if key else None) for s in (memory, streamed)]
    states: list[dict] = [{}, {}]
    for op in ops:
        before = file_state(streamed.path)
        errors = [apply(tables[0], op, streamed=False, state=states[0]), apply(tables[1], op, streamed=True, state=states[1])]
        assert errors[0] == errors[1], (op, errors)
        if errors[1] is not None:
            assert file_state(streamed.path) == before, op  # a failed write leaves the store exactly as it was
    assert staging_leftovers(streamed.path) == []
    assert versions(tables[0]) == versions(tables[1])
    assert tables[1].verify(full=True).problems == []


@pytest.fixture
def small_buffer(monkeypatch):
    monkeypatch.setattr(ingest, "BUFFER_ROWS", BUFFER)
    monkeypatch.setattr("logstore.ingest.ROW_GROUP_ROWS", 4)


@FAST
@given(st.lists(st.one_of(write, other), min_size=1, max_size=7), st.booleans())
def test_streamed_upsert_and_overwrite_equal_the_in_memory_ones(tmp_path_factory, small_buffer, ops, key):
    check_history(tmp_path_factory.mktemp("h"), ops, key=key)


@pytest.mark.stress
@STRESS
@given(st.lists(st.one_of(write, other), min_size=1, max_size=12), st.booleans())
def test_streamed_upsert_and_overwrite_equal_the_in_memory_ones_stress(tmp_path_factory, small_buffer, ops, key):
    check_history(tmp_path_factory.mktemp("h"), ops, key=key)


def generated(start: int, stop: int, tag: str = "g", step: int = 300):
    for i in range(start, stop, step):
        yield rows(range(i, min(i + step, stop)), tag).to_batches()[0]


def test_every_input_kind_is_staged_and_written_as_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "BUFFER_ROWS", 1000)
    monkeypatch.setattr("logstore.ingest.ROW_GROUP_ROWS", 700)
    rewrites = []
    real = ingest.rewrite
    monkeypatch.setattr(ingest, "rewrite", lambda *a, **k: rewrites.append(a[2]) or real(*a, **k))
    pq.write_table(rows(range(1000, 4000), "p"), tmp_path / "p1.parquet", row_group_size=500)
    pq.write_table(rows(range(4000, 5000), "q"), tmp_path / "p2.parquet", row_group_size=500)
    writes = [
        ("upsert", lambda: generated(0, 3000)),
        ("upsert", lambda: str(tmp_path / "p*.parquet")),
        ("overwrite", lambda: pa.RecordBatchReader.from_batches(rows([0]).schema, generated(2000, 4500, "o"))),
        ("upsert", lambda: __import__("duckdb").sql("SELECT range AS k, range * 10 AS x, 'd' || range AS s FROM range(4000, 6000)")),
        ("overwrite", lambda: str(tmp_path / "p1.parquet")),
    ]
    memory = logstore.init(tmp_path / "m").create_table("t", rows(range(100)), key="k")
    streamed = logstore.init(tmp_path / "s").create_table("t", rows(range(100)), key="k")
    for name, data in writes:
        getattr(memory, name)(_read_all(data()))
        getattr(streamed, name)(data())
    assert rewrites == [name.upper() for name, _ in writes]  # every write took the staged path
    assert versions(memory) == versions(streamed)
    third, fifth = streamed.commit_info(3), streamed.commit_info(5)
    assert (third.rows_inserted, third.rows_updated, third.rows_deleted) == (0, 2500, 2500)
    assert (fifth.rows_inserted, fifth.rows_updated, fifth.rows_deleted) == (1000, 2000, 2000)
    assert streamed.verify(full=True).problems == [] and staging_leftovers(streamed._store.path) == []


def _read_all(data) -> pa.Table:
    from logstore.inputs import to_reader

    return to_reader(data).read_all()


KILLED_CHILD = textwrap.dedent("""
    import sys
    import logstore
    from logstore import ingest
    sys.path.insert(0, sys.argv[2])
    from test_stream_rewrite import generated
    ingest.BUFFER_ROWS = 1000
    ingest.ROW_GROUP_ROWS = 700

    def source():
        for i, batch in enumerate(generated(0, 60000)):
            print("batch", i, flush=True)
            yield batch
        print("end", flush=True)

    getattr(logstore.open(sys.argv[1]).table("t"), sys.argv[3])(source())
    print("done", flush=True)
""")


@pytest.mark.parametrize(("operation", "kill_after", "delay"), [("upsert", "batch 3", 0), ("upsert", "end", 0.05), ("overwrite", "end", 0.2)])
def test_a_killed_streamed_write_leaves_no_version_and_no_referenced_file(tmp_path, operation, kill_after, delay):
    store = logstore.init(tmp_path / "store")
    t = store.create_table("t", rows(range(50000)), key="k")
    before = t.read()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, store.path, os.path.dirname(__file__), operation], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == kill_after:
            break
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    t = logstore.open(store.path).table("t")
    if t.version == 0:  # killed before its commit: nothing of it is visible
        assert t.read().equals(before)
    else:  # it committed before the kill: the whole write, nothing less
        assert t.version == 1 and t.read().sort_by("k").equals(rows(range(60000), "g"))  # upsert or overwrite alike
    report = t.verify(full=True)
    assert report.problems == [] and report.unreferenced == []
    t.upsert(generated(0, 10))  # the table takes writes as before
    assert t.verify(full=True).problems == []


def test_a_streamed_upsert_that_loses_a_race_is_computed_again_on_the_new_head(store, monkeypatch):
    monkeypatch.setattr(ingest, "BUFFER_ROWS", 1000)
    t = store.create_table("t", rows(range(10)), key="k")
    other = store.table("t")
    from logstore import commit as commits

    real = commits._publish
    raced = []

    def publish(files, operation, head, changes, info):
        if not raced and getattr(changes, "staged", None):
            raced.append(True)
            other.upsert(rows(range(5, 3000), "w"))  # another writer wins this version, with some of the same keys
        return real(files, operation, head, changes, info)

    monkeypatch.setattr(commits, "_publish", publish)
    t.upsert(generated(2000, 4000))
    assert t.version == 2 and t.commit_info(2).rows_updated == 1000 and t.commit_info(2).rows_inserted == 1000
    expected = pa.concat_tables([rows(range(5), "a"), rows(range(5, 2000), "w"), rows(range(2000, 4000), "g")])
    assert t.read().sort_by("k").equals(expected)
    assert t.verify(full=True).problems == [] and t.verify(full=True).unreferenced == []
    assert staging_leftovers(store.path) == []
