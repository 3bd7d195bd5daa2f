"""Compaction from the tables this process wrote (logstore/recent.py) and the commit's fingerprint computed beside
its change file (commit.py): the same bytes and versions as without them, and nothing left behind on failure."""

from __future__ import annotations

import datetime as dt
import decimal
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import logstore
from logstore import commit, compaction, fingerprint, recent, testing

from conftest import people

START = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def blocks_of_three(monkeypatch):
    monkeypatch.setattr(compaction, "FANOUT", 3)
    recent.forget()
    yield
    recent.forget()


def typed(ids, *, lists: bool = False) -> pa.Table:
    """Rows of many column types (a struct among them; with `lists`, also a list column, whose element field DuckDB
    names "l" and a Parquet round trip "element", so its change files are never served from memory)."""
    ids = list(ids)
    columns = {
        "id": pa.array(ids, pa.int64()),
        "small": pa.array([i % 100 for i in ids], pa.int8()),
        "unsigned": pa.array([i * 3 for i in ids], pa.uint32()),
        "ratio": pa.array([i / 7 for i in ids], pa.float32()),
        "price": pa.array([decimal.Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
        "name": pa.array([f"name {i}" if i % 4 else None for i in ids], pa.string()),
        "blob": pa.array([bytes([i % 256]) * 3 for i in ids], pa.binary()),
        "flag": pa.array([i % 2 == 0 for i in ids], pa.bool_()),
        "day": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in ids], pa.date32()),
        "at": pa.array([START + dt.timedelta(seconds=i) for i in ids], pa.timestamp("us", tz="UTC")),
        "point": pa.array([{"x": i, "y": str(i)} for i in ids], pa.struct([("x", pa.int64()), ("y", pa.string())])),
    }
    if lists:
        columns["tags"] = pa.array([[i, i + 1] for i in ids], pa.list_(pa.int64()))
    return pa.table(columns)


def history(store, name: str, *, lists: bool = False) -> logstore.Table:
    """Nine versions of appends, updates and deletes: blocks 0-2, 3-5, 6-8 and 0-8 are compacted as their commits
    finish."""
    t = store.create_table(name, typed(range(10), lists=lists), key="id", timestamp=START)
    moments = (START + dt.timedelta(hours=h) for h in range(1, 100))
    t.append(typed(range(10, 14), lists=lists), timestamp=next(moments))
    t.update(set={"name": "'changed'", "ratio": "ratio * 2"}, where="id % 3 = 0", timestamp=next(moments))
    t.append(typed(range(14, 16), lists=lists), timestamp=next(moments))
    t.delete(where="id % 5 = 1", timestamp=next(moments))
    t.append(typed(range(16, 20), lists=lists), timestamp=next(moments))
    t.update(set={"small": "small + 1"}, where="id > 12", timestamp=next(moments))
    t.append(typed(range(20, 23), lists=lists), timestamp=next(moments))
    t.delete(where="id % 4 = 2", timestamp=next(moments))  # v8 completes 6..8 and the level-2 block 0..8,
    return t  # which merges three inserts-only files and three others at once


def compacted_files(t) -> list[tuple[int, int, bool, str, int]]:
    """(first, last, inserts_only, sha256, rows) of every compacted file written, in block and record order: the
    merged files of a block are listed inserts-only first, whichever finished first (they are written at once)."""
    storage, prefix = testing.storage(t), testing.prefix(t)
    found = []
    for size in (3, 9):
        for first in range(0, t.version + 1, size):
            record = compaction.load(storage, prefix, first, first + size - 1)
            if record is not None:
                made = [f for f in record.files if f.file.path.startswith(compaction.COMPACTED_DATA_DIR)]
                found += [(first, first + size - 1, f.file.inserts_only, f.file.sha256, f.file.rows) for f in made]
    return found


@pytest.mark.parametrize("lists", [False, True])
def test_compaction_from_memory_writes_the_bytes_a_read_would(tmp_path, monkeypatch, lists):
    """Each compacted file is byte for byte the file a compaction that read its inputs from disk writes, for every
    column type; the written tables were what it merged, except those whose list column does not read back the same
    (DuckDB's element name "l"), read from disk instead."""
    recalled = []
    real_recall = recent.recall
    monkeypatch.setattr(recent, "recall", lambda *a: recalled.append(real_recall(*a)) or recalled[-1])
    with_memory = history(logstore.init(tmp_path / "a"), "t", lists=lists)
    served = [r for r in recalled if r is not None]
    assert len(recalled) >= 4 and len(served) >= 2
    if lists:  # change files (element "l") come from disk; only compacted files, written from what was read, are served
        assert all(r.schema.field("tags").type.value_field.name == "element" for r in served)
        assert any(r is None for r in recalled)

    recent.forget()
    monkeypatch.setattr(recent, "remember", lambda *a, **k: None)
    from_disk = history(logstore.init(tmp_path / "b"), "t", lists=lists)

    made = compacted_files(with_memory)
    assert len(made) >= 2 and made == compacted_files(from_disk)
    blocks = {(m[0], m[1]) for m in made}
    assert (0, 8) in blocks and [m[2] for m in made if m[:2] == (0, 8)] == [True, False]  # both merged, listed in that order
    for block in blocks:
        kinds = [m[2] for m in made if m[:2] == block]
        assert kinds == sorted(kinds, reverse=True)
    for v in range(with_memory.version + 1):
        assert with_memory.read(version=v).equals(from_disk.read(version=v))


def test_a_schema_that_does_not_read_back_the_same_is_not_kept():
    """A table whose Parquet round trip changes a type (date64 reads back as date32) is never served from memory."""
    table = pa.table({"_row_id": pa.array([0], pa.int64()), "d": pa.array([dt.date(2020, 1, 1)], pa.date64())})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    recent.remember("somewhere", "x.parquet", "00", table, sink.getvalue())
    assert recent.recall("somewhere", "x.parquet", "00") is None
    kept = table.set_column(1, "d", pa.array([dt.date(2020, 1, 1)], pa.date32()))
    sink = pa.BufferOutputStream()
    pq.write_table(kept, sink)
    recent.remember("somewhere", "x.parquet", "00", kept, sink.getvalue())
    assert recent.recall("somewhere", "x.parquet", "00") is kept
    assert recent.recall("somewhere", "x.parquet", "01") is None  # another digest: another file


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(recent, "MAX_BYTES", 4 * typed(range(100)).nbytes)
    for i in range(10):
        table = typed(range(100))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        recent.remember("s", f"{i}.parquet", "00", table, sink.getvalue())
    held = [i for i in range(10) if recent.recall("s", f"{i}.parquet", "00") is not None]
    assert held == [6, 7, 8, 9]


def _files_under(root) -> set[str]:
    return {os.path.join(d, n) for d, _, names in os.walk(root) for n in names}


@pytest.mark.parametrize("operation", ["update", "append"])
@pytest.mark.parametrize("failing", ["fingerprint", "change file"])
def test_a_failed_commit_leaves_no_file(store, monkeypatch, failing, operation):
    """The fingerprint (on a worker thread) or the change file write fails: the commit raises that error, the store
    holds exactly the files it held, and the next commit works (the head's connection was left free)."""
    t = store.create_table("t", people(range(3)), key="id", timestamp=START)
    before = _files_under(store.path)
    version = t.version
    if failing == "fingerprint":
        real = fingerprint.advance
        monkeypatch.setattr(fingerprint, "advance", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom in fingerprint")))
    else:
        real = commit.write_parquet
        monkeypatch.setattr(commit, "write_parquet", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises((RuntimeError, OSError), match="boom in fingerprint|disk full"):
        if operation == "update":
            t.update(set={"score": "score + 1"}, where="id = 1", timestamp=START + dt.timedelta(hours=1))
        else:
            t.append(people([7]), timestamp=START + dt.timedelta(hours=1))
    assert _files_under(store.path) == before
    assert logstore.open(store.path).table("t").version == version
    monkeypatch.setattr(fingerprint if failing == "fingerprint" else commit, "advance" if failing == "fingerprint" else "write_parquet", real)
    t.update(set={"score": "score + 1"}, where="id = 1", timestamp=START + dt.timedelta(hours=2))
    assert {r["id"]: r["score"] for r in t.read().to_pylist()} == {0: 0.0, 1: 1.5, 2: 1.0}
    assert logstore.open(store.path).table("t").verify().ok


def test_a_merge_too_big_for_memory_writes_the_same_bytes(tmp_path, monkeypatch):
    """A block whose inputs exceed IN_MEMORY_BYTES is encoded through a staging file and hashed from it: the same
    compacted files as the in-memory path."""
    in_memory = compacted_files(history(logstore.init(tmp_path / "a"), "t"))
    monkeypatch.setattr(compaction, "IN_MEMORY_BYTES", 0)
    through_staging = compacted_files(history(logstore.init(tmp_path / "b"), "t"))
    assert len(in_memory) >= 2 and through_staging == in_memory
