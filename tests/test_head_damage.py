"""Reliability round 2, lost or bricked tables (issue 10, items 1-3): vacuum racing a writer, the newest commit
record deleted, the newest commit record damaged, and repair()."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

import logstore
from logstore import integrity, testing, vacuum
from logstore import log as log_module
from logstore.errors import CorruptionError, DamagedHeadError, HeadMissingError, HeadUnreadableError, RepairError
from logstore_cli.main import cli

from conftest import age_files


def rows(ids, x=0):
    return pa.table({"id": pa.array(ids, pa.int64()), "x": pa.array([x + i for i in ids], pa.int64())})


@pytest.fixture
def table(tmp_path):
    """Versions 0..4 of a keyed table, a snapshot of version 2, tag 'two' on version 2."""
    store = logstore.init(tmp_path / "s")
    t = store.create_table("t", rows(range(4)), key="id")
    t.append(rows([4, 5]))  # 1
    t.update({"x": "x + 100"}, "id < 2")  # 2
    t.snapshot()
    t.tag("two", 2)
    t.delete("id = 3")  # 3
    t.upsert(rows([1, 9], x=7))  # 4
    return t


def _root(t) -> Path:
    return Path(testing.storage(t).root)


def _record(t, v) -> Path:
    return _root(t) / "tables/t/_log" / log_module.log_name(v)


def _reads(t):
    return {v: t.read(version=v).to_pylist() for v in range(testing.log(t).head_version() + 1)}


def _fresh(t):
    integrity.forget()
    return logstore.open(_root(t)).table("t")


# --- 1. vacuum racing a writer ----------------------------------------------------------------------------------


def test_vacuum_between_a_writers_change_file_and_its_record_keeps_the_file(table, monkeypatch):
    """The writer has published data/<v>-*.parquet and not yet its commit record when vacuum runs (older_than=0)."""
    publish = log_module.Log.publish
    reports = []

    def vacuum_first(self, record):
        reports.append(table.vacuum(dry_run=False, older_than=0))
        return publish(self, record)

    monkeypatch.setattr(log_module.Log, "publish", vacuum_first)
    committed = table.append(rows([50]))
    monkeypatch.setattr(log_module.Log, "publish", publish)
    written = [f.path for f in testing.log(table).read(committed.version).files]
    assert written and all(f"tables/t/{p}" in reports[0].too_young for p in written)
    fresh = _fresh(table)
    assert [r["id"] for r in fresh.read(version=committed.version).to_pylist()][-1] == 50
    fresh.append(rows([51]))  # later writes work
    assert fresh.verify(full=True).ok


def test_a_stale_in_flight_file_goes_once_its_version_is_committed_without_it(table):
    ahead = _root(table) / f"tables/t/data/{table.version + 1:020d}-0123abcd.parquet"
    ahead.write_bytes(b"a crashed writer's file")
    assert f"tables/t/data/{ahead.name}" in table.vacuum(older_than=0).too_young
    table.append(rows([60]))  # version head+1 is now committed, and its record does not list the file
    assert f"tables/t/data/{ahead.name}" in table.vacuum(older_than=0).paths


def test_a_writer_past_its_publish_window_gives_the_attempt_up(table, monkeypatch):
    """Vacuum's in-flight protection relies on writers publishing within PUBLISH_WINDOW of writing their file."""
    from logstore import commit as commit_module

    clock = iter([0.0, commit_module.PUBLISH_WINDOW + 1] + [1e6 + i for i in range(0, 1000, 1)])
    real = time.monotonic
    calls = {"n": 0}

    def slow_first_attempt():
        calls["n"] += 1
        if calls["n"] <= 2:
            return next(clock)
        return real()

    monkeypatch.setattr(commit_module.time, "monotonic", slow_first_attempt)
    before = table.version
    table.append(rows([70]))
    assert table.version == before + 1
    data = {p.name for p in (_root(table) / "tables/t/data").iterdir()}
    referenced = {Path(f.path).name for v in range(table.version + 1) for f in testing.log(table).read(v).files}
    assert data == referenced  # the abandoned attempt removed its own file


@pytest.mark.stress
def test_vacuum_looping_against_a_writer_loses_nothing(tmp_path):
    _race(tmp_path, commits=300)


def test_vacuum_looping_against_a_writer_short(tmp_path):
    _race(tmp_path, commits=25)


_WRITER = """
import sys, pyarrow as pa, logstore
t = logstore.open(sys.argv[1]).table("t")
for i in range(int(sys.argv[2])):
    c = t.append(pa.table({"id": pa.array([1000 + i], pa.int64()), "x": pa.array([i], pa.int64())}))
    print(c.version, flush=True)
"""


def _race(tmp_path, commits: int) -> None:
    store = logstore.init(tmp_path / "s")
    store.create_table("t", rows(range(3)), key="id")
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "s"), str(commits)], stdout=subprocess.PIPE, text=True)
    vacuums = 0
    while writer.poll() is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                logstore.open(tmp_path / "s").table("t").vacuum(dry_run=False, older_than=0)
                vacuums += 1
            except CorruptionError:
                pass  # a record being read while published: vacuum refuses, which is allowed
    acknowledged = [int(line) for line in writer.stdout.read().split()]
    assert writer.returncode == 0 and len(acknowledged) == commits and vacuums > 0
    fresh = logstore.open(tmp_path / "s").table("t")
    assert fresh.version == commits
    for v in acknowledged:
        assert fresh.read(version=v).column("id").to_pylist()[-1] == 1000 + v - 1
    assert fresh.verify(full=True).ok
    print(f"[race] {commits} commits acknowledged and read back, {vacuums} vacuum(dry_run=False, older_than=0) runs beside them")


# --- 2. the newest commit record deleted --------------------------------------------------------------------------


def test_a_deleted_newest_record_is_detected_and_its_files_kept(table):
    expected = _reads(table)
    newest_files = [f.path for f in testing.log(table).read(4).files]
    _record(table, 4).unlink()
    t = _fresh(table)
    with pytest.raises(HeadMissingError, match="head hint says version 4"):
        t.version
    with pytest.raises(HeadMissingError):
        t.read()
    with pytest.raises(HeadMissingError):
        t.append(rows([77]))
    assert t.read(version=3).to_pylist() == expected[3]  # older versions still read by number
    assert t.read(tag="two").to_pylist() == expected[2]
    report = t.verify(full=True)
    assert [p.kind for p in report.problems] == ["lost"] and report.problems[0].version == 4
    with pytest.raises(HeadMissingError):
        t.vacuum(older_than=0)  # never proposes the lost version's files as unreferenced
    assert all((_root(t) / "tables/t" / p).exists() for p in newest_files)
    result = CliRunner().invoke(cli, ["--store", str(_root(t)), "verify", "t"])
    assert result.exit_code == 1 and "lost" in result.output


def test_repair_accepts_a_lost_newest_record_and_quarantines_its_files(table):
    expected = _reads(table)
    newest_files = [f.path for f in testing.log(table).read(4).files]
    _record(table, 4).unlink()
    t = _fresh(table)
    report = t.repair()
    assert report.head_before == 4 and report.head_after == 3
    quarantined = {m.source for m in report.moves}
    assert set(newest_files) <= quarantined
    for m in report.moves:
        assert (_root(t) / "tables/t" / m.target).exists() and not (_root(t) / "tables/t" / m.source).exists()
    record = json.loads((_root(t) / "tables/t" / report.record).read_text())
    assert record["head_before"] == 4 and record["head_after"] == 3 and len(record["moved"]) == len(report.moves)
    t = _fresh(t)
    assert t.version == 3 and t.verify(full=True).ok
    t.append(rows([88]))
    assert t.version == 4 and t.read().column("id").to_pylist()[-1] == 88
    assert {v: t.read(version=v).to_pylist() for v in range(4)} == {v: expected[v] for v in range(4)}
    assert t.verify(full=True).ok and t.repair().repaired is False


# --- 3. a damaged newest commit record ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "flip", "empty", "other-version"])
def test_a_damaged_newest_record_leaves_older_versions_readable_and_refuses_writes(table, damage):
    expected = _reads(table)
    path = _record(table, 4)
    if damage == "garbage":
        path.write_bytes(b"not json")
    elif damage == "flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20
        path.write_bytes(bytes(data))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(_record(table, 3).read_bytes())
    t = _fresh(table)
    for v in range(4):
        assert t.read(version=v).to_pylist() == expected[v]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = t.history()
    assert [c.version for c in history] == [3, 2, 1, 0] and any("00000000000000000004.json" in str(w.message) for w in caught)
    with pytest.raises(DamagedHeadError, match="repair") as raised:
        t.append(rows([77]))
    assert "00000000000000000004.json" in str(raised.value)
    with pytest.raises(CorruptionError):
        t.read()  # the latest version is the damaged one
    assert not t.verify().ok


def test_repair_quarantines_a_damaged_newest_record_and_the_table_continues(table):
    expected = _reads(table)
    damaged = _record(table, 4).read_bytes()[:-40]
    _record(table, 4).write_bytes(damaged)
    table.tag("four", 4)  # a tag of the damaged version (made before the damage was noticed)
    t = _fresh(table)
    result = CliRunner().invoke(cli, ["--store", str(_root(t)), "repair", "t"])
    assert result.exit_code == 0, result.output
    assert "head 4 -> 3" in result.output
    quarantine = list((_root(t) / "tables/t/_quarantine").rglob("00000000000000000004.json"))
    assert [p.read_bytes() for p in quarantine if "_log" in p.parts] == [damaged]  # kept, byte for byte
    t = _fresh(t)
    assert "four" not in t.tags() and t.tags()["two"] == 2
    t.upsert(rows([1], x=1000))
    assert t.version == 4
    assert t.read().to_pylist() == [{"id": r["id"], "x": 1001 if r["id"] == 1 else r["x"]} for r in expected[3]]
    assert t.verify(full=True).ok
    age_files(_root(t), vacuum.IN_FLIGHT_GRACE + 60)
    t.vacuum(dry_run=False, older_than=0)
    assert list((_root(t) / "tables/t/_quarantine").rglob("*.json"))  # vacuum never touches the quarantine
    assert _fresh(t).verify(full=True).ok


def test_repair_refuses_damage_below_an_intact_record(table):
    _record(table, 2).write_bytes(b"{}")
    t = _fresh(table)
    before = sorted(p for p in _root(t).rglob("*") if p.is_file())
    with pytest.raises(RepairError, match="version 2"):
        t.repair()
    assert sorted(p for p in _root(t).rglob("*") if p.is_file()) == before


def test_repair_of_an_intact_table_does_nothing(table):
    before = sorted(p for p in _root(table).rglob("*") if p.is_file())
    report = table.repair()
    assert not report.repaired and report.head_after == 4
    assert sorted(p for p in _root(table).rglob("*") if p.is_file()) == before


def test_a_snapshot_above_the_repaired_head_is_never_read_for_the_new_version(table):
    table.snapshot()  # a snapshot of version 4
    _record(table, 4).write_bytes(b"damaged")
    t = _fresh(table)
    snapshot_file = json.loads((_root(t) / f"tables/t/_snapshots/{4:020d}.json").read_text())["path"]
    moved = {m.source for m in t.repair().moves}
    assert {f"_snapshots/{4:020d}.json", snapshot_file} <= moved  # the record and its file
    t = _fresh(t)
    assert 4 not in t.snapshots()
    t.append(rows([99]))  # the new version 4
    assert t.read().column("id").to_pylist()[-1] == 99
    assert t.verify(full=True).ok


def test_the_head_hint_of_another_table_is_ignored(table, tmp_path):
    other = logstore.init(tmp_path / "o").create_table("t", rows(range(2)), key="id")
    for i in range(8):
        other.append(rows([100 + i]))
    (_root(table) / "tables/t/_head.json").write_bytes((Path(testing.storage(other).root) / "tables/t/_head.json").read_bytes())
    t = _fresh(table)
    assert t.version == 4
    assert [p.kind for p in t.verify().problems] == ["hint"]  # reported, and ignored by readers
    t.append(rows([90]))  # the next commit rewrites it
    assert t.version == 5 and t.verify().ok


# --- a missing change file of the latest version never blocks writes for good -------------------------------------


def test_a_missing_change_file_of_the_latest_version_is_overcome_by_restore(table):
    expected = _reads(table)
    for f in testing.log(table).read(4).files:
        (_root(table) / "tables/t" / f.path).unlink()
    for v in table.snapshots():
        if v > 2:  # snapshots above version 3 would stand in for the file
            (_root(table) / f"tables/t/_snapshots/{v:020d}.json").unlink()
    t = _fresh(table)
    with pytest.raises(HeadUnreadableError, match="restore"):
        t.append(rows([77]))
    result = CliRunner().invoke(cli, ["--store", str(_root(t)), "restore", "t", "--version", "3"])
    assert result.exit_code == 0, result.output
    t = _fresh(t)
    by_id = sorted(expected[3], key=lambda r: r["id"])  # the reset wrote every row: row-id order (= id order here)
    assert t.version == 5 and t.read().to_pylist() == by_id
    assert t.history()[0].parameters == {"version": 3, "reset": True}
    assert t.history()[0].num_rows == len(expected[3])
    t.append(rows([78]))
    t.delete("id = 0")
    assert [r["id"] for r in t.read().to_pylist()] == [r["id"] for r in by_id if r["id"] != 0] + [78]
    report = t.verify(full=True)
    assert {(p.kind, p.version) for p in report.problems} == {("missing", 4)}  # version 4 itself stays lost
    assert all(t.read(version=v).to_pylist() == expected[v] for v in range(4))
    t.snapshot()  # a newer snapshot: the reset's snapshot is still the only way to read versions 5 and 6
    age_files(_root(t), vacuum.IN_FLIGHT_GRACE + 60)
    t.vacuum(dry_run=False, older_than=0)
    t = _fresh(t)
    assert t.read(version=5).to_pylist() == by_id
    assert [r["id"] for r in t.read(version=6).to_pylist()][-1] == 78
