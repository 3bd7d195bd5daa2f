"""The merge of a level-1 block started beside the commit that completes it (logstore/premerge.py), and the choice
of dictionary columns (commit.dictionary_columns): the same compacted bytes and versions as without them, and a
premerge of other rows or files is never taken."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_compaction_recent import START, compacted_files, history, typed

import logstore
from logstore import commit, compaction, premerge, recent, testing


@pytest.fixture(autouse=True)
def blocks_of_three(monkeypatch):
    monkeypatch.setattr(compaction, "FANOUT", 3)
    recent.forget()
    yield
    recent.forget()


@pytest.fixture
def taken(monkeypatch) -> list:
    """What premerge.take gave each compaction it was asked by (None: the compaction merged as before)."""
    results: list = []
    real = premerge.take
    monkeypatch.setattr(premerge, "take", lambda *a: results.append(real(*a)) or results[-1])
    return results


def without_premerge(monkeypatch, path) -> logstore.Table:
    with monkeypatch.context() as m:
        m.setattr(premerge, "start", lambda *a, **k: None)
        recent.forget()
        return history(logstore.init(path), "t")


@pytest.mark.parametrize("lists", [False, True])
def test_premerged_blocks_are_the_bytes_of_a_merge_after_the_commit(tmp_path, monkeypatch, taken, lists):
    """Every level-1 block of the history is compacted from a premerge (of the completing commit's kind) where its
    change files are served from memory, and every compacted file is byte for byte the one written without it."""
    premerged = history(logstore.init(tmp_path / "a"), "t", lists=lists)
    used = [r for r in taken if r is not None]
    if lists:  # the change files do not read back the same (recent.py), so no premerge is recognised: merged as before
        assert not used
    else:
        # blocks 3..5 (appends 3 and 5, completed by the append) and 6..8 (update 6, delete 8); in block 0..2 the
        # completing update is alone of its kind, so only the inserts merge; the level-2 block 0..8 is not premerged
        assert len(used) == 2
    with monkeypatch.context() as m:
        m.setattr(premerge, "start", lambda *a, **k: None)
        recent.forget()
        plain = history(logstore.init(tmp_path / "b"), "t", lists=lists)
    made = compacted_files(premerged)
    assert len(made) >= 4 and made == compacted_files(plain)
    for v in range(premerged.version + 1):
        assert premerged.read(version=v).equals(plain.read(version=v))
    assert premerged.verify().ok


def test_a_premerge_of_other_rows_or_files_is_not_taken(tmp_path):
    """take() gives a premerge only to a group of exactly its inputs: the same earlier files and, last, the file
    whose written table is the one it merged."""
    t = logstore.init(tmp_path).create_table("t", typed(range(4)), timestamp=START)
    t.append(typed(range(4, 6)), timestamp=START + dt.timedelta(hours=1))
    files, storage, prefix = testing.files(t), testing.storage(t), testing.prefix(t)
    rows = typed(range(6, 8))
    stored = pa.table({"_row_id": pa.array([6, 7], pa.int64()), "_op": pa.array(["I", "I"]), "_version": pa.array([2, 2], pa.int64()), **{n: rows.column(n) for n in rows.column_names}})
    premerge.start(files, 2, stored, inserts_only=True)
    group = [compaction.CompactedFile(f, frozenset()) for v in (0, 1) for f in testing.log(t).read(v).files]
    own = commit.write_change_file(files, 2, stored.drop_columns(["_version"]), inserts_only=True)
    other = commit.write_change_file(files, 2, stored.drop_columns(["_version"]), inserts_only=True)  # equal rows, another table
    ours = compaction.CompactedFile(own, frozenset())
    assert premerge.take(storage, prefix, group[1:] + [ours]) is None  # not the earlier files it merged
    assert premerge.take(storage, prefix, group + [compaction.CompactedFile(other, frozenset())]) is None
    assert premerge.take(storage, prefix, group[:1] + [ours]) is None
    assert recent.recall(storage.location, prefix + "/" + own.path, own.sha256) is not stored  # write_change_file adds _version: another table
    premerge.discard(files)


def test_a_premerge_whose_commit_lost_its_race_is_dropped(tmp_path, monkeypatch, taken):
    """The commit completing a block loses its race once (another writer's record, as far as it can tell): its
    premerge is discarded, the retry starts another, and the block is compacted from that one, as without it."""
    real_publish = type(testing.log(logstore.init(tmp_path / "x").create_table("x", typed(range(2)), timestamp=START))).publish
    lost = []

    def publish(log, record):
        if record.version == 2 and not lost:
            lost.append(record.version)
            return False
        return real_publish(log, record)

    monkeypatch.setattr(type(testing.log(logstore.open(tmp_path / "x").table("x"))), "publish", publish)
    t = logstore.init(tmp_path / "a").create_table("t", typed(range(4)), timestamp=START)
    t.append(typed(range(4, 6)), timestamp=START + dt.timedelta(hours=1))
    t.append(typed(range(6, 8)), timestamp=START + dt.timedelta(hours=2))
    assert lost == [2] and [r is not None for r in taken] == [True]
    monkeypatch.setattr(type(testing.log(t)), "publish", real_publish)
    with monkeypatch.context() as m:
        m.setattr(premerge, "start", lambda *a, **k: None)
        u = logstore.init(tmp_path / "b").create_table("t", typed(range(4)), timestamp=START)
        u.append(typed(range(4, 6)), timestamp=START + dt.timedelta(hours=1))
        u.append(typed(range(6, 8)), timestamp=START + dt.timedelta(hours=2))
    assert compacted_files(t) == compacted_files(u) and len(compacted_files(t)) == 1


def test_a_failing_premerge_leaves_the_compaction_to_merge(tmp_path, monkeypatch, taken):
    """The worker's merge fails: the commit is unaffected and the compaction merges the files itself."""
    with monkeypatch.context() as m:
        m.setattr(premerge, "_merge", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom in premerge")))
        failed = history(logstore.init(tmp_path / "a"), "t")
    assert taken and all(r is None for r in taken)
    assert compacted_files(failed) == compacted_files(without_premerge(monkeypatch, tmp_path / "b"))


def test_dictionary_columns_skip_columns_of_distinct_values():
    n = 20_000
    rng = np.random.default_rng(7)
    rows = pa.table({
        "_row_id": pa.array(np.arange(n), pa.int64()),
        "_op": pa.array(["I"] * n),
        "kind": pa.array(rng.choice(["a", "b", "c"], n)),
        "code": pa.array(rng.integers(0, 1500, n)),  # 1,500 values: a 12 KB dictionary, kept
        "id": pa.array(np.arange(n)),
        "text": pa.array([f"row {i} of many" for i in range(n)]),
        "score": pa.array(rng.random(n)),
        "tags": pa.array([[i % 3] for i in range(n)]),
    })
    assert commit.dictionary_columns(rows) == ["_op", "kind", "code", "tags"]
    assert commit.dictionary_columns(rows.slice(0, commit.DICTIONARY_RULE_ROWS - 1)) == rows.column_names[1:]
    data = commit.encode_parquet(rows)
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0)
    dictionary = {meta.column(i).path_in_schema.split(".")[0] for i in range(meta.num_columns) if meta.column(i).has_dictionary_page}
    assert {"_op", "kind", "code"} <= dictionary and not dictionary & {"_row_id", "id", "text", "score"}
    assert pq.read_table(pa.BufferReader(data)).equals(rows)


def test_merges_no_compaction_took_are_bounded(tmp_path, monkeypatch):
    """Merges started for blocks no compaction then took (here: started by hand, no commit follows) are kept only
    until KEPT other tables started one."""
    monkeypatch.setattr(premerge, "KEPT", 2)
    premerge._started.clear()
    store = logstore.init(tmp_path)
    for name in ("a", "b", "c"):
        t = store.create_table(name, typed(range(4)), timestamp=START)
        t.append(typed(range(4, 6)), timestamp=START + dt.timedelta(hours=1))
        premerge.start(testing.files(t), 2, typed(range(6, 7)), inserts_only=True)
    assert [key[1].rsplit("/", 1)[-1] for key in premerge._started] == ["b", "c"]
    premerge._started.clear()
