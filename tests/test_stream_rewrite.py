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
    elif flaw == "bad type":
        bad = table.slice(0, 1).set_column(1, "x", pa.array(["not a number"]))
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
