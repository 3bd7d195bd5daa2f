"""Vacuum removes the files compactions replaced (logstore/vacuum.py, compaction.py); every version reads the same.

Compaction blocks are shrunk to FANOUT 3 so a few dozen small commits make compactions of levels 1 to 3 (a level-2
block replaces level-1 compacted files). Age is faked with os.utime, as vacuum judges age by modification time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import warnings

import pytest

import logstore
import logstore.storage
from logstore import compaction, integrity, testing

from conftest import file_state, people

START = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
PROPS = {"snapshot_fraction": 1000.0, "snapshot_commits": 100_000}  # no snapshots: reads go through the change log


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(compaction, "FANOUT", 3)
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "1")


def history(store, commits: int):
    """Small commits of every kind (automatic compaction after each completed block), tags every 7 versions."""
    t = store.create_table("t", people(range(4)), key="id", timestamp=START, properties=PROPS)
    for v in range(1, commits + 1):
        at = START + dt.timedelta(hours=v)
        kind = v % 5
        if kind in (0, 1):
            t.append(people([100 + v, 200 + v]), timestamp=at)
        elif kind == 2:
            t.update(set={"score": f"score + {v}"}, where=f"id % 3 = {v % 3}", timestamp=at)
        elif kind == 3:
            t.upsert(people([100 + v - 2, 300 + v], scores=[-v, v]), timestamp=at)
        else:
            t.delete(where=f"id = {100 + v - 3} OR id = {v % 4}", timestamp=at)
        if v % 7 == 0:
            t.tag(f"v{v}")
    return t


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A table of 21 versions: complete level-1 blocks 0..17 and level-2 blocks 0..8 and 9..17; 18..20 in none."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compaction, "FANOUT", 3)
        patch.setenv("LOGSTORE_AUTO_COMPACT", "1")
        patch.setattr(logstore.storage, "_fsync", lambda path: None)
        root = tmp_path_factory.mktemp("template") / "store"
        history(logstore.init(root), 20)
    return root


@pytest.fixture
def built(template, tmp_path, small_blocks, no_fsync):
    """A copy of the template store (modification times kept)."""
    shutil.copytree(template, tmp_path / "store")
    return logstore.open(tmp_path / "store")


def fresh(store):
    integrity.forget()
    compaction._cache.clear()
    return logstore.open(store.path).table("t")


def table_dir(store) -> str:
    return os.path.join(store.path, "tables", "t")


def records(store) -> dict[tuple[int, int], compaction.CompactionRecord]:
    return compaction.scan(testing.storage(fresh(store)), "tables/t").records


def replaced_paths(store) -> set[str]:
    return {p for r in records(store).values() for p in r.replaces}


def file_count(store) -> int:
    return sum(len(files) for _, _, files in os.walk(table_dir(store)))


def everything(t) -> dict:
    """What every reader sees: each version by version, timestamp and tag, the whole change feed and diffs."""
    head = t.version
    return {
        "versions": [t.read(version=v).to_pylist() for v in range(head + 1)],
        "as_of": [t.read(as_of=START + dt.timedelta(hours=v, minutes=30)).to_pylist() for v in range(head + 1)],
        "tags": {name: t.read(tag=name).to_pylist() for name in sorted(t.tags())},
        "changes": t.changes(0, head).to_pylist(),
        "changes_mid": t.changes(head // 3, head - 2).to_pylist(),
        "diff": t.diff(0, head).to_pylist(),
        "diff_back": t.diff(head - 1, 2).to_pylist(),
        "sql": testing.store(t).sql("SELECT count(*), sum(score) FROM t AS OF VERSION 4").fetchall(),
    }


def _damage(store, first: int, last: int) -> None:
    """Edit the compaction record of first..last: valid JSON whose checksum no longer matches."""
    path = os.path.join(table_dir(store), compaction.COMPACTION_DIR, compaction.record_name(first, last))
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace('"rows": ', '"rows": 1', 1))


def versions(t) -> list:
    return [t.read(version=v).to_pylist() for v in range(t.version + 1)]


def age(store, seconds: float, *, skip=()) -> None:
    """Make every file of the table `seconds` old, except those in `skip` (relative to the table directory)."""
    past = time.time() - seconds
    for dirpath, _, files in os.walk(table_dir(store)):
        for name in files:
            full = os.path.join(dirpath, name)
            if os.path.relpath(full, table_dir(store)) not in skip:
                os.utime(full, (past, past))


def test_vacuum_removes_replaced_files_and_every_version_reads_the_same(store, no_fsync, small_blocks):
    t = history(store, 27)
    blocks = records(store)
    assert max(r.level for r in blocks.values()) == 3  # levels 1..3: level 2 and 3 replace compacted files
    replaced = replaced_paths(store)
    assert any(p.startswith("compacted/") for p in replaced) and any(p.startswith("data/") for p in replaced)
    assert all(os.path.exists(os.path.join(table_dir(store), p)) for p in replaced)
    before = everything(t)
    count, size = file_count(store), t.info().bytes_on_disk

    state = file_state(store.path)
    dry = fresh(store).vacuum(older_than=0)
    assert file_state(store.path) == state, "a dry run changed files"
    assert {f"tables/t/{p}" for p in replaced} <= set(dry.paths)
    assert all(r.bytes == os.path.getsize(os.path.join(store.path, r.path)) > 0 for r in dry.removals)
    assert any("compacted file replaced" in r.reason for r in dry.removals)

    done = fresh(store).vacuum(dry_run=False, older_than=0)
    assert done.paths == dry.paths and done.bytes == dry.bytes
    assert not any(os.path.exists(os.path.join(table_dir(store), p)) for p in replaced)
    assert file_count(store) == count - len(replaced)
    t = fresh(store)
    assert t.info().bytes_on_disk == size - done.bytes
    assert everything(t) == before

    report = fresh(store).verify(full=True)  # every version's content against its fingerprint
    assert report.ok and report.versions_checked == t.version + 1 and report.unreferenced == [], report.problems
    assert fresh(store).vacuum(older_than=0).removals == []  # nothing left to reclaim

    from click.testing import CliRunner

    from logstore_cli.main import cli

    result = CliRunner().invoke(cli, ["--store", str(store.path), "verify", "t", "--all-versions"])
    assert result.exit_code == 0 and "OK" in result.output, result.output


def test_replaced_files_stay_while_their_compaction_record_is_young(built):
    t = built.table("t")
    before = versions(t)
    young = {(9, 17), (18, 20)}  # made "just now": level 2 over level-1 blocks, and a level-1 block of originals
    kept = {f"tables/t/{p}" for b in young for p in records(built)[b].replaces}
    age(built, 7200, skip={os.path.join(compaction.COMPACTION_DIR, compaction.record_name(*b)) for b in young})
    done = fresh(built).vacuum(dry_run=False, older_than=dt.timedelta(hours=1))
    assert all(os.path.exists(os.path.join(built.path, p)) for p in kept)
    assert kept <= set(done.too_young) and not kept & set(done.paths)
    assert any(p.startswith("tables/t/data/") for p in done.paths)  # the old records' originals went
    assert versions(fresh(built)) == before

    age(built, 7200)  # now those records are old as well: what they replaced goes
    done = fresh(built).vacuum(dry_run=False, older_than=dt.timedelta(hours=1))
    assert kept <= set(done.paths)
    assert versions(fresh(built)) == before
    assert fresh(built).verify(full=True).ok


def test_nothing_a_damaged_compaction_record_covers_is_removed(built):
    t = built.table("t")
    before = versions(t)
    blocks = records(built)
    assert (9, 17) in blocks and (0, 8) in blocks and (0, 26) not in blocks  # 9..17 stands for its versions
    covered = {p for (first, last), r in blocks.items() if 9 <= first and last <= 17 for p in r.replaces}
    covered |= {f.path for v in range(9, 18) for f in testing.log(t).read(v).files}
    _damage(built, 9, 17)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        done = fresh(built).vacuum(dry_run=False, older_than=0)
        assert any(p.startswith("tables/t/data/00000000000000000000-") for p in done.paths)  # 0..8 is reclaimed
        assert not {f"tables/t/{p}" for p in covered} & set(done.paths)
        assert all(os.path.exists(os.path.join(table_dir(built), p)) for p in covered)
        assert versions(fresh(built)) == before  # readers fall back to the level-1 blocks of 9..17
        report = fresh(built).verify(full=True)
    assert [(p.kind, p.path) for p in report.problems] == [("malformed", f"tables/t/_compactions/{compaction.record_name(9, 17)}")]
    assert report.versions_checked == t.version + 1


def test_a_file_readers_use_stays_whatever_a_record_replaces(built):
    """An old record no reader uses (a block of no level) lists in `replaces` files readers use (those standing for
    0..8, the carried-over file of 18..20, version 21's own file) and the level-1 files of 9..11, whose level-2
    block is still young: vacuum keeps them all."""
    t = built.table("t")
    t.append(people([900]), timestamp=START + dt.timedelta(hours=21))  # version 21: in no complete block yet
    before = versions(t)
    blocks = records(built)
    kept = [cf.file.path for b in ((0, 8), (18, 20), (9, 11)) for cf in blocks[b].files] + [testing.log(t).read(21).files[0].path]
    odd = compaction.CompactionRecord(1, 1, 0, (), tuple(kept), "2022-01-01T00:00:00.000000Z")
    with open(os.path.join(table_dir(built), compaction.COMPACTION_DIR, compaction.record_name(1, 1)), "wb") as f:
        f.write(odd.encode())
    age(built, 7200, skip={os.path.join(compaction.COMPACTION_DIR, compaction.record_name(9, 17))})
    done = fresh(built).vacuum(dry_run=False, older_than=dt.timedelta(hours=1))
    assert done.removals and not {f"tables/t/{p}" for p in kept} & set(done.paths)
    assert all(os.path.exists(os.path.join(table_dir(built), p)) for p in kept)
    assert versions(fresh(built)) == before and fresh(built).verify(full=True).ok


def test_a_record_named_for_no_block_keeps_every_replaced_file(built):
    replaced = replaced_paths(built)
    junk = os.path.join(table_dir(built), compaction.COMPACTION_DIR, "garbage.json")
    with open(junk, "w") as f:
        json.dump({"first": 0}, f)
    done = fresh(built).vacuum(dry_run=False, older_than=0)
    assert done.removals == []
    assert all(os.path.exists(os.path.join(table_dir(built), p)) for p in replaced)


def test_verify_reports_a_missing_file_nothing_stands_in_for(built):
    t = built.table("t")
    t.append(people([900]), timestamp=START + dt.timedelta(hours=21))  # version 21: in no complete block yet
    fresh(built).vacuum(dry_run=False, older_than=0)
    assert fresh(built).verify(full=True).ok
    tail = testing.log(t).read(21).files[0].path
    os.unlink(os.path.join(table_dir(built), tail))
    report = fresh(built).verify()
    assert [(p.kind, p.path, p.version) for p in report.problems] == [("missing", f"tables/t/{tail}", 21)]

    # a compacted file of the block standing for versions 9..17 goes: the originals are gone too, all reported
    gone = records(built)[(9, 17)].files[0].file.path
    os.unlink(os.path.join(table_dir(built), gone))
    report = fresh(built).verify(12)
    found = {(p.kind, p.path) for p in report.problems}
    assert ("missing", f"tables/t/{gone}") in found
    assert ("missing", f"tables/t/{testing.log(t).read(12).files[0].path}") in found
    assert all(p.version is not None and 9 <= p.version for p in report.problems)

    # the record standing for versions 0..8 is damaged after vacuum: what it stood in for is gone, and reported
    _damage(built, 0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = fresh(built).verify(8)
    kinds = {(p.kind, p.version) for p in report.problems}
    assert (("malformed", None) in kinds) and any(k == "missing" and v is not None and v <= 8 for k, v in kinds)


def test_a_fresh_table_plans_through_blocks_past_the_version(built):
    """A Table that has not looked up its head yet still reads early versions through the blocks that replaced
    their files (compaction.cover finds the head itself)."""
    t = built.table("t")
    expected = [t.read(version=v).to_pylist() for v in range(3)]
    fresh(built).vacuum(dry_run=False, older_than=0)
    for v in range(3):
        other = fresh(built)
        assert testing.log(other).known_head is None
        plan = testing.plan(other, v)
        assert plan.inserts + plan.changes and all(os.path.exists(s.url) for s in plan.inserts + plan.changes)
        assert fresh(built).read(version=v).to_pylist() == expected[v]
