"""Log checkpoints (logstore/checkpoint.py): head, version_at and plans agree with the plain log, damage is ignored."""

from __future__ import annotations

import datetime as dt
import os
import warnings

import pytest

import logstore
from logstore import checkpoint, testing, timestamps

from conftest import people

START = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def small_interval(monkeypatch):
    monkeypatch.setattr(checkpoint, "INTERVAL", 10)
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")


def build(store, commits: int):
    props = {"snapshot_fraction": 1000.0, "snapshot_commits": 100_000}  # no snapshots: plans replay the whole log
    t = store.create_table("t", people(range(5)), key="id", timestamp=START, properties=props)
    for v in range(1, commits + 1):
        moment = START + dt.timedelta(hours=v)
        if v % 3 == 0:
            t.update(set={"score": f"score + {v}"}, where=f"id % 4 = {v % 4}", timestamp=moment)
        elif v % 3 == 1:
            t.append(people([100 + v]), timestamp=moment)
        else:
            t.delete(where=f"id = {100 + v - 1}", timestamp=moment)
    return t


def fresh(store):
    return logstore.open(store.path).table("t")


def ckpt_dir(store):
    return os.path.join(store.path, "tables", "t", checkpoint.CHECKPOINT_DIR)


def test_checkpoints_are_written_per_segment(store, no_fsync, small_interval):
    build(store, 34)
    assert sorted(os.listdir(ckpt_dir(store))) == [checkpoint.name(s) for s in range(3)]
    t = fresh(store)
    seg = testing.log(t).segment(2)
    assert [r["version"] for r in seg.records] == list(range(20, 30))
    assert [v for v, _ in seg.timeline] == [0, 10, 20]


def test_head_and_version_at_agree_with_the_log(store, no_fsync, small_interval):
    t = build(store, 37)
    times = [testing.log(t).read(v).commit.timestamp for v in range(38)]
    for handle in (t, fresh(store)):
        assert handle.version == 37
        for v, moment in enumerate(times):
            assert handle.version_at(moment) == v
            assert handle.version_at(moment + dt.timedelta(minutes=30)) == v
            assert handle.version_at(moment - dt.timedelta(microseconds=1)) == max(v - 1, 0) if v else True
    with pytest.raises(logstore.TimestampError):
        fresh(store).version_at(START - dt.timedelta(seconds=1))


def test_head_moves_when_another_handle_commits(store, no_fsync, small_interval):
    t = build(store, 12)
    other = fresh(store)
    assert other.version == 12
    for v in range(13, 40):
        t.append(people([1000 + v]), timestamp=START + dt.timedelta(hours=v))
        assert other.version == v
    assert fresh(store).version == 39


def test_reads_through_checkpoints_are_identical(store, no_fsync, small_interval):
    t = build(store, 45)
    expected = [t.read(version=v) for v in range(46)]
    t2 = fresh(store)
    assert [t2.read(version=v) for v in reversed(range(46))] == expected[::-1]
    assert testing.log(t2)._segments  # the plans went through the checkpoints


def _garbage(p):
    with open(p, "wb") as f:
        f.write(b"\x00" * 64)


def _truncated(p):
    data = open(p, "rb").read()
    with open(p, "wb") as f:
        f.write(data[: len(data) // 2])


def _wrong_segment(p):  # a valid checkpoint of another segment under this name
    other = os.path.join(os.path.dirname(p), checkpoint.name(0))
    with open(other, "rb") as src, open(p, "wb") as f:
        f.write(src.read())


def _bad_checksum(p):
    import zstandard

    payload = zstandard.ZstdDecompressor().decompress(open(p, "rb").read())
    header, _, body = payload.partition(b"\n")
    body = body.replace(b'"num_rows":', b'"num_rows": ', 1)  # still valid JSON, different bytes
    with open(p, "wb") as f:
        f.write(zstandard.ZstdCompressor().compress(header + b"\n" + body))


@pytest.mark.parametrize("damage", [_garbage, _truncated, _wrong_segment, _bad_checksum])
def test_damaged_checkpoint_is_ignored(store, no_fsync, small_interval, damage):
    t = build(store, 33)
    expected = [t.read(version=v) for v in range(34)]
    times = [testing.log(t).read(v).commit.timestamp for v in range(34)]
    for s in (1, 2):
        damage(os.path.join(ckpt_dir(store), checkpoint.name(s)))
    checkpoint._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t2 = fresh(store)
        assert t2.version == 33
        assert [t2.version_at(m) for m in times] == list(range(34))
        assert [t2.read(version=v) for v in range(34)] == expected
    assert any("damaged log checkpoint" in str(w.message) for w in caught)
    assert checkpoint.load(testing.storage(t2), testing.prefix(t2), 1) is None


def test_missing_checkpoints_fall_back_and_compact_rewrites_them(store, no_fsync, small_interval):
    t = build(store, 25)
    for name in os.listdir(ckpt_dir(store)):
        os.unlink(os.path.join(ckpt_dir(store), name))
    t2 = fresh(store)
    assert t2.version_at(START + dt.timedelta(hours=17, minutes=1)) == 17
    t2.compact()
    assert sorted(os.listdir(ckpt_dir(store))) == [checkpoint.name(0), checkpoint.name(1)]
    assert fresh(store).version_at(START + dt.timedelta(hours=17, minutes=1)) == 17


def test_head_falls_back_to_listing_across_a_gap(store, no_fsync, small_interval):
    t = build(store, 20)
    path = os.path.join(store.path, "tables", "t", "_log", f"{16:020d}.json")
    os.unlink(path)  # damage: the probe 0, 1, 2, 4, 8, 16 would stop at 15
    assert testing.log(fresh(store)).head_version() == 20


def test_timestamps_sort_as_text():
    a = dt.datetime(2022, 1, 1, 0, 0, 0, 999, tzinfo=dt.UTC)
    b = dt.datetime(2022, 1, 1, 0, 0, 1, 0, tzinfo=dt.UTC)
    assert timestamps.encode(a) < timestamps.encode(b)
