"""Files that are intact but belong elsewhere (issue 10, items 5, 6, 8).

- A tag record copied over another tag's file, or from another table, is refused on read and reported by verify:
  tag records carry their own name and the table's id.
- A log checkpoint copied from another table (or one that disagrees with the log) is ignored with a RuntimeWarning
  and reported by verify: checkpoints carry the table's id and are checked against the log's records.
- A damaged compacted file does not block reading the versions it covers while smaller blocks or the original
  change files are still there (with a RuntimeWarning); only when nothing intact stands in is it an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tarfile
import warnings

import pytest
import zstandard

import logstore
from logstore import checkpoint, compaction, integrity, testing, vacuum
from logstore.errors import CorruptionError

from conftest import age_files, people

START = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
NO_SNAPSHOTS = {"snapshot_fraction": 1000.0, "snapshot_commits": 100_000}


@pytest.fixture
def small_interval(monkeypatch):
    monkeypatch.setattr(checkpoint, "INTERVAL", 10)
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(compaction, "FANOUT", 3)


def build(store, name: str, commits: int, *, offset=dt.timedelta(0), first_id: int = 0):
    t = store.create_table(name, people(range(first_id, first_id + 3)), key="id", timestamp=START + offset, properties=NO_SNAPSHOTS)
    for v in range(1, commits + 1):
        moment = START + offset + dt.timedelta(hours=v)
        if v % 3 == 1:
            t.append(people([first_id + 100 + v]), timestamp=moment)
        elif v % 3 == 2:
            t.update(set={"score": f"score + {v}"}, where=f"id % 2 = {v % 2}", timestamp=moment)
        else:
            t.delete(where=f"id = {first_id + 100 + v - 2}", timestamp=moment)
    return t


def fresh(store, name: str):
    return logstore.open(store.path).table(name)


def table_file(store, name: str, *parts) -> str:
    return os.path.join(store.path, "tables", name, *parts)


def problems_at(report, suffix: str) -> list:
    return [p for p in report.problems if p.path.endswith(suffix)]


# --- item 5: tags ----------------------------------------------------------------------------------------------


def test_tag_records_carry_their_name_and_the_table_id(store, no_fsync):
    t = build(store, "t", 3)
    t.tag("a", 1)
    obj = json.load(open(table_file(store, "t", "_tags", "a.json")))
    assert obj["tag"] == "a" and obj["table_id"] == testing.log(t).table_id() and obj["version"] == 1


def test_a_tag_record_copied_over_another_tag_is_refused_and_reported(store, no_fsync):
    t = build(store, "t", 4)
    t.tag("a", 1)
    t.tag("b", 3)
    shutil.copyfile(table_file(store, "t", "_tags", "a.json"), table_file(store, "t", "_tags", "b.json"))
    t = fresh(store, "t")
    assert t.read(tag="a") == t.read(version=1)
    with pytest.raises(CorruptionError, match="b.json") as caught:
        t.read(tag="b")
    assert "'a'" in caught.value.reason
    assert problems_at(t.verify(), "_tags/b.json")


def test_a_tag_record_of_another_table_is_refused_and_reported(store, no_fsync):
    t, u = build(store, "t", 4), build(store, "u", 4, first_id=1000)
    t.tag("a", 1)
    u.tag("a", 3)
    shutil.copyfile(table_file(store, "u", "_tags", "a.json"), table_file(store, "t", "_tags", "a.json"))
    t = fresh(store, "t")
    with pytest.raises(CorruptionError, match="a.json") as caught:
        t.read(tag="a")
    assert "another table" in caught.value.reason
    assert problems_at(t.verify(), "_tags/a.json")


# --- item 6: log checkpoints -----------------------------------------------------------------------------------


def test_checkpoints_carry_the_table_id(store, no_fsync, small_interval):
    t = build(store, "t", 12)
    payload = zstandard.ZstdDecompressor().decompress(open(table_file(store, "t", "_checkpoints", checkpoint.name(0)), "rb").read())
    header, _, body = payload.partition(b"\n")
    assert header.startswith(b"logstore-checkpoint 2 ")
    obj = json.loads(body)
    assert obj["format_version"] == 2 and obj["table_id"] == testing.log(t).table_id()


def test_a_checkpoint_of_another_table_is_ignored_and_reported(store, no_fsync, small_interval):
    """Table u's checkpoints copied over t's: every as_of answer stays t's own (they were wrong for most versions)."""
    t = build(store, "t", 45)
    build(store, "u", 45, offset=dt.timedelta(minutes=30), first_id=1000)
    times = [testing.log(t).read(v).commit.timestamp for v in range(46)]
    expected = [t.read(version=v) for v in range(46)]
    for s in range(4):
        shutil.copyfile(table_file(store, "u", "_checkpoints", checkpoint.name(s)), table_file(store, "t", "_checkpoints", checkpoint.name(s)))
    checkpoint._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = fresh(store, "t")
        assert [t.version_at(m + dt.timedelta(minutes=45)) for m in times] == list(range(46))
        assert [t.read(as_of=m) for m in times] == expected
        assert [t.read(version=v) for v in range(46)] == expected
    assert any("foreign log checkpoint" in str(w.message) for w in caught)
    report = t.verify(full=True)
    assert {p.path.rsplit("/", 1)[1] for p in report.problems if p.kind == "checkpoint"} == {checkpoint.name(s) for s in range(4)}


def _rewrite(path: str, change) -> None:
    """Re-encode the checkpoint at `path` after `change(body)`: intact, but saying something else."""
    payload = zstandard.ZstdDecompressor().decompress(open(path, "rb").read())
    obj = json.loads(payload.partition(b"\n")[2])
    change(obj)
    body = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    header = b"logstore-checkpoint %d %s\n" % (obj["format_version"], hashlib.sha256(body).hexdigest().encode())
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor(write_checksum=True).compress(header + body))


def _as_format_1(obj: dict) -> None:
    del obj["table_id"]
    obj["format_version"] = 1


def test_a_checkpoint_without_table_id_in_a_table_with_one_is_foreign(store, no_fsync, small_interval):
    t = build(store, "t", 12)
    _rewrite(table_file(store, "t", "_checkpoints", checkpoint.name(0)), _as_format_1)
    checkpoint._warned.clear()
    with pytest.warns(RuntimeWarning, match="foreign log checkpoint"):
        assert checkpoint.load(testing.storage(t), testing.prefix(t), 0) is None
    assert problems_at(t.verify(), checkpoint.name(0))


def test_a_checkpoint_disagreeing_with_the_log_is_ignored_or_reported(store, no_fsync, small_interval):
    """Its last record differs from _log/: ignored on load. Any other record differs: verify reports it."""
    t = build(store, "t", 25)
    path0, path1 = (table_file(store, "t", "_checkpoints", checkpoint.name(s)) for s in (0, 1))

    def edit(index):
        def change(obj):
            obj["records"][index]["message"] = "not what the log says"

        return change

    _rewrite(path1, edit(-1))
    _rewrite(path0, edit(4))
    checkpoint._warned.clear()
    with pytest.warns(RuntimeWarning, match="foreign log checkpoint .*version 19 differs"):
        assert checkpoint.load(testing.storage(t), testing.prefix(t), 1) is None
    report = t.verify()
    assert [(p.kind, p.version) for p in problems_at(report, checkpoint.name(0))] == [("checkpoint", 4)]
    assert [(p.kind, p.version) for p in problems_at(report, checkpoint.name(1))] == [("checkpoint", 19)]


def test_a_format_1_checkpoint_of_a_format_1_table_is_used(tmp_path):
    with tarfile.open(os.path.join(os.path.dirname(__file__), "data", "store_format_v1.tar.gz")) as archive:
        archive.extractall(tmp_path, filter="data")
    t = logstore.open(tmp_path / "store").table("events")
    assert testing.log(t).table_id() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seg = checkpoint.load(testing.storage(t), testing.prefix(t), 0)
    assert seg is not None and seg.table_id is None
    assert not [p for p in t.verify().problems if p.kind == "checkpoint"]


# --- item 8: damaged compacted files ---------------------------------------------------------------------------


def _compacted_files(store, name: str, first: int, last: int) -> list[str]:
    """The files the compaction of block first..last wrote (not the ones it carried over)."""
    record = compaction.load(testing.storage(fresh(store, name)), f"tables/{name}", first, last)
    written = f"{compaction.COMPACTED_DATA_DIR}/{first:020d}-{last:020d}-"
    return [table_file(store, name, f.file.path) for f in record.files if f.file.path.startswith(written)]


def _flip(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))


def _everything(t) -> list:
    return [t.read(version=v) for v in range(t.version + 1)] + [t.changes(0), t.changes(3, 7)]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "other block"])
def test_a_damaged_compacted_file_falls_back_to_the_original_files(store, no_fsync, small_blocks, monkeypatch, damage):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = build(store, "t", 10)
    t.compact()
    assert compaction.load(testing.storage(t), testing.prefix(t), 0, 8) is not None
    before = _everything(t)
    target = _compacted_files(store, "t", 0, 8)[-1]
    if damage == "flip":
        _flip(target)
    elif damage == "truncate":
        open(target, "r+b").truncate(100)
    elif damage == "delete":
        os.unlink(target)
    else:
        shutil.copyfile(table_file(store, "t", testing.log(t).read(1).files[0].path), target)
    integrity.forget()
    compaction._warned.clear()
    with pytest.warns(RuntimeWarning, match="compacted file"):
        assert _everything(fresh(store, "t")) == before


def test_a_damaged_block_falls_back_to_the_next_smaller_intact_block(store, no_fsync, small_blocks):
    """Level-2 block 0..8 damaged, the level-1 blocks it merged intact and the originals gone: read from level 1."""
    t = build(store, "t", 9)  # automatic compaction: level-1 blocks 0..2, 3..5, 6..8, then level 2 0..8 over them
    assert all(compaction.load(testing.storage(t), testing.prefix(t), *b) is not None for b in [(0, 2), (3, 5), (6, 8), (0, 8)])
    before = _everything(t)
    for b in [(0, 2), (3, 5), (6, 8)]:
        for p in compaction.load(testing.storage(t), testing.prefix(t), *b).replaces:
            os.unlink(table_file(store, "t", p))
    for p in _compacted_files(store, "t", 0, 8):
        _flip(p)
    integrity.forget()
    compaction._warned.clear()
    with pytest.warns(RuntimeWarning, match="compacted file"):
        assert _everything(fresh(store, "t")) == before
    assert problems_at(fresh(store, "t").verify(), _compacted_files(store, "t", 0, 8)[0].rsplit("/", 1)[1])


def test_a_damaged_compacted_file_whose_originals_are_gone_is_an_error(store, no_fsync, small_blocks, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = build(store, "t", 10)
    t.compact()
    record = compaction.load(testing.storage(t), testing.prefix(t), 0, 8)
    for p in record.replaces:
        os.unlink(table_file(store, "t", p))
    target = _compacted_files(store, "t", 0, 8)[-1]
    _flip(target)
    integrity.forget()
    t = fresh(store, "t")
    for v in (0, 5, 8, 10):
        with pytest.raises(CorruptionError, match=os.path.basename(target)):
            t.read(version=v)
    with pytest.raises(CorruptionError, match=os.path.basename(target)):
        t.changes(2, 4)


# --- found by the fault family (tests/test_replaced_files.py): a record copied together with its files ----------


def test_a_compaction_record_and_files_of_another_table_are_ignored(store, no_fsync, small_blocks, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t, u = build(store, "t", 10), build(store, "u", 10, first_id=1000)
    t.compact()
    u.compact()
    obj = json.load(open(table_file(store, "t", "_compactions", compaction.record_name(0, 8))))
    before = _everything(t)
    for path in _compacted_files(store, "u", 0, 8) + [table_file(store, "u", "_compactions", compaction.record_name(0, 8))]:
        shutil.copy(path, table_file(store, "t", os.path.basename(os.path.dirname(path))))
    compaction._cache.clear()
    compaction._warned.clear()
    with pytest.warns(RuntimeWarning, match="another table"):
        assert _everything(fresh(store, "t")) == before
    assert problems_at(fresh(store, "t").verify(), compaction.record_name(0, 8))
    assert obj["format_version"] == 2 and obj["table_id"] == testing.log(t).table_id()


def test_a_snapshot_record_and_file_of_another_table_are_skipped(store, no_fsync):
    props = {"snapshot_fraction": 1000.0, "snapshot_commits": 4}
    tables = []
    for name, first_id in (("t", 0), ("u", 1000)):
        t = store.create_table(name, people(range(first_id, first_id + 3)), key="id", properties=props)
        for i in range(4):
            t.append(people([first_id + 10 + i]))
        tables.append(t)
    t = tables[0]
    assert t.snapshots() == [3]
    before = [t.read(version=v) for v in range(5)]
    record = table_file(store, "u", "_snapshots", f"{3:020d}.json")
    shutil.copy(table_file(store, "u", json.load(open(record))["path"]), table_file(store, "t", "snapshots"))
    shutil.copyfile(record, table_file(store, "t", "_snapshots", f"{3:020d}.json"))
    with pytest.warns(RuntimeWarning, match="snapshot of another table"):
        assert [fresh(store, "t").read(version=v) for v in range(5)] == before
    assert [p.kind for p in problems_at(fresh(store, "t").verify(), f"_snapshots/{3:020d}.json")] == ["fingerprint"]


def test_vacuum_keeps_the_originals_a_damaged_compacted_file_falls_back_to(store, no_fsync, small_blocks, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = build(store, "t", 10)
    t.compact()
    before = _everything(t)
    _flip(_compacted_files(store, "t", 0, 8)[-1])
    integrity.forget()
    age_files(store.path, vacuum.IN_FLIGHT_GRACE + 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fresh(store, "t").vacuum(dry_run=False, older_than=0)
        assert _everything(fresh(store, "t")) == before
