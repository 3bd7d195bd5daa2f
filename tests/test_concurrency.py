"""Several processes writing one table at once: nothing acknowledged is lost, no version skipped or duplicated."""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

import logstore
from logstore import testing

COUNTER = -1  # the p of the one row every update increments


def _worker(path: str, proc: int, commits: int, start, results) -> None:
    """Alternate appends and updates; report every commit that was acknowledged (and any error)."""
    acked, error = [], None
    try:
        t = logstore.open(path).table("t")
        start.wait(30)
        for i in range(commits):
            message = f"p{proc}-c{i}"
            if i % 3 == 2:
                c = t.update(set={"hits": "hits + 1"}, where=f"p = {COUNTER}", message=message, author=f"proc{proc}")
                kind = "update"
            else:
                rows = pa.table({"p": pa.array([proc, proc], pa.int64()), "i": pa.array([i, i], pa.int64()), "hits": pa.array([0, 0], pa.int64())})
                c = t.append(rows, message=message, author=f"proc{proc}")
                kind = "append"
            acked.append((message, kind, c.version))
    except Exception:  # reported to the parent, which fails the test
        error = traceback.format_exc()
    results.put((proc, acked, error))


def run_writers(path: Path, procs: int, commits: int) -> None:
    store = logstore.init(path)
    schema = pa.schema([("p", pa.int64()), ("i", pa.int64()), ("hits", pa.int64())])
    store.create_table("t", pa.Table.from_pylist([{"p": COUNTER, "i": 0, "hits": 0}], schema=schema), message="create")

    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(path), p, commits, start, results)) for p in range(procs)]
    for w in workers:
        w.start()
    start.set()
    reports = [results.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    errors = [e for _p, _a, e in reports if e]
    assert not errors, "\n".join(errors)

    acked = [a for _p, acks, _e in reports for a in acks]
    assert len(acked) == procs * commits

    t = logstore.open(path).table("t")
    history = t.history()
    # versions contiguous 0..N, newest first, one per acknowledged commit plus the creation
    assert [c.version for c in history] == list(range(len(acked), -1, -1))
    assert sorted(int(n[:-5]) for n in os.listdir(path / "tables" / "t" / "_log") if n.endswith(".json")) == list(range(len(acked) + 1))
    timestamps = [c.timestamp for c in reversed(history)]
    assert all(a < b for a, b in zip(timestamps, timestamps[1:]))
    # every acknowledged commit is present, exactly once, at the version it was acknowledged with
    by_message = {c.message: c for c in history}
    assert Counter(c.message for c in history).most_common(1)[0][1] == 1
    for message, kind, version in acked:
        c = by_message[message]
        assert c.version == version
        assert c.operation == ("UPDATE" if kind == "update" else "APPEND")
    # row counts exact, and no update was lost (each was re-evaluated against the head it committed on)
    appends = sum(1 for _m, kind, _v in acked if kind == "append")
    updates = len(acked) - appends
    final = t.read()
    assert final.num_rows == 1 + 2 * appends == history[0].num_rows
    assert final.filter(pa.compute.equal(final.column("p"), COUNTER)).column("hits").to_pylist() == [updates]
    for proc in range(procs):
        mine = sorted(r["i"] for r in final.to_pylist() if r["p"] == proc)
        assert mine == sorted(2 * [i for i in range(commits) if i % 3 != 2])
    # every version reads with the row count its commit recorded
    for c in history:
        assert t.read(version=c.version).num_rows == c.num_rows
    staging = path / "_staging"
    assert not staging.exists() or os.listdir(staging) == []
    # no orphaned change files: every data file belongs to a commit
    referenced = {f.path for v in range(t.version + 1) for f in testing.log(t).read(v).files}
    on_disk = {f"data/{n}" for n in os.listdir(path / "tables" / "t" / "data")}
    assert on_disk == referenced


def test_concurrent_appends_and_updates(tmp_path):
    run_writers(tmp_path / "store", procs=4, commits=15)


@pytest.mark.stress
def test_concurrent_appends_and_updates_stress(tmp_path):
    run_writers(tmp_path / "store", procs=8, commits=50)
