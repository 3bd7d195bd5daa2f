"""Concurrent writers with mixed commits plus readers reading all the while, checked by fingerprints and counts.

Each writer appends, updates, deletes and upserts only its own rows (column w), so the final rows of each writer
are known exactly whatever the interleaving. Readers read random versions while the writers run and check every
read against its commit record: row count always, content fingerprint on every other read. At the end: versions
contiguous with exactly one per acknowledged commit, full verify passes, every writer's rows exact.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import traceback

import pyarrow as pa
import pytest

import logstore
from logstore import fingerprint, testing

SCHEMA = pa.schema([("id", pa.int64()), ("w", pa.int64()), ("x", pa.int64())])


def _ids(w: int, i: int) -> list[int]:
    return [w * 1_000_000 + i * 10 + j for j in range(3)]


def apply(state: dict, w: int, i: int) -> None:
    """Model of writer w's commit i on its own rows: state is {id: x}."""
    kind = i % 5
    if kind in (0, 1):
        for k in _ids(w, i):
            state[k] = i
    elif kind == 2:
        for k in state:
            if k % 2 == 0:
                state[k] += 1
    elif kind == 3:
        for k in [k for k in state if k % 3 == 0 and k < _ids(w, i)[0] - 20]:
            del state[k]
    else:
        for k in (_ids(w, i - 4)[1], _ids(w, i)[2] + 5):
            state[k] = -i


def commit(table, w: int, i: int):
    kind = i % 5
    if kind in (0, 1):
        return table.append(pa.Table.from_pylist([{"id": k, "w": w, "x": i} for k in _ids(w, i)], schema=SCHEMA))
    if kind == 2:
        return table.update({"x": "x + 1"}, f"w = {w} AND id % 2 = 0")
    if kind == 3:
        return table.delete(f"w = {w} AND id % 3 = 0 AND id < {_ids(w, i)[0] - 20}")
    rows = [{"id": k, "w": w, "x": -i} for k in (_ids(w, i - 4)[1], _ids(w, i)[2] + 5)]
    return table.upsert(pa.Table.from_pylist(rows, schema=SCHEMA))


def _writer(path: str, w: int, commits: int, start, results) -> None:
    acked, error = [], None
    try:
        t = logstore.open(path).table("t")
        start.wait(60)
        for i in range(commits):
            acked.append(commit(t, w, i).version)
    except BaseException:  # noqa: BLE001 - reported to the parent
        error = traceback.format_exc()
    results.put(("writer", w, acked, error))


def _reader(path: str, r: int, start, stop, results) -> None:
    reads, fingerprints, error = 0, 0, None
    rng = random.Random(r)
    try:
        t = logstore.open(path).table("t")
        con = testing.connection(testing.store(t))
        start.wait(60)
        while not stop.is_set() or reads < 3:
            head = t.version
            v = rng.randint(0, head)
            record = testing.log(t).read(v)
            rows = t.read(version=v)
            assert rows.num_rows == record.commit.num_rows, f"version {v}: {rows.num_rows} rows, record says {record.commit.num_rows}"
            reads += 1
            if reads % 2 == 0:
                assert fingerprint.encode(fingerprint.of_plan(con, testing.plan(t, v))) == record.fingerprint, f"version {v}: fingerprint"
                fingerprints += 1
    except BaseException:  # noqa: BLE001
        error = traceback.format_exc()
    results.put(("reader", r, (reads, fingerprints), error))


def run(tmp_path, writers: int, commits: int, readers: int) -> dict:
    path = str(tmp_path / "store")
    store = logstore.init(path)
    store.create_table("t", SCHEMA.empty_table(), key="id", properties={"snapshot_commits": 25})
    ctx = mp.get_context("spawn")
    start, stop, results = ctx.Barrier(writers + readers), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, w, commits, start, results)) for w in range(writers)]
    procs += [ctx.Process(target=_reader, args=(path, r, start, stop, results)) for r in range(readers)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=1800) for _ in range(writers)]
    stop.set()
    outcomes += [results.get(timeout=600) for _ in range(readers)]
    for p in procs:
        p.join(60)
    errors = [o for o in outcomes if o[3]]
    assert not errors, "\n".join(f"{kind} {n}:\n{err}" for kind, n, _, err in errors)

    t = logstore.open(path).table("t")
    acked = sorted(v for kind, _, vs, _ in outcomes if kind == "writer" for v in vs)
    assert acked == list(range(1, writers * commits + 1)), "acknowledged versions are not exactly 1..N, each once"
    assert testing.log(t).versions() == list(range(writers * commits + 1))
    report = t.verify(full=True)
    assert report.ok, report.problems
    expected = {}
    for w in range(writers):
        state = {}
        for i in range(commits):
            apply(state, w, i)
        expected.update({k: (w, x) for k, x in state.items()})
    got = {r["id"]: (r["w"], r["x"]) for r in t.read().to_pylist()}
    assert got == expected
    assert t.read().num_rows == t.commit_info().num_rows == len(expected)
    reads = sum(o[2][0] for o in outcomes if o[0] == "reader")
    fps = sum(o[2][1] for o in outcomes if o[0] == "reader")
    stats = {"writers": writers, "commits": writers * commits, "reads": reads, "fingerprints_checked_by_readers": fps, "versions_verified": report.versions_checked}
    print(f"[concurrency] {stats}")
    return stats


def test_concurrent_mixed_writers_and_readers(tmp_path):
    run(tmp_path, writers=2, commits=10, readers=1)


@pytest.mark.stress
def test_concurrent_mixed_writers_and_readers_stress(tmp_path):
    run(tmp_path, writers=4, commits=100, readers=2)
