"""Damage each kind of file in turn (flip a byte, truncate, delete): the read or verify names it, never wrong rows.

Change files and commit records are primary data: a read that needs a damaged one raises CorruptionError naming
the file and version. Snapshots are derived: a damaged one is skipped with a RuntimeWarning and the read is still
right; verify reports it. Whatever the damage, every version either reads exactly as before or raises
CorruptionError: never other rows, never a crash.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pytest

import logstore
from logstore import compaction, integrity, testing, vacuum
from logstore.errors import CorruptionError, LogstoreError

from conftest import file_state


def people(ids, x=0):
    return pa.table({"id": pa.array(ids, pa.int64()), "x": pa.array([x + i for i in ids], pa.int64())})


@pytest.fixture
def table(tmp_path):
    """Versions 0..5; a snapshot of version 2; tag 'v3' on version 3."""
    store = logstore.init(tmp_path / "s")
    t = store.create_table("t", people(range(5)), key="id")
    t.append(people([5, 6]))  # 1
    t.update({"x": "x + 100"}, "id < 3")  # 2
    t.snapshot()
    t.delete("id = 4")  # 3
    t.tag("v3", 3)
    t.upsert(people([1, 9], x=7))  # 4
    t.append(people([10]))  # 5
    return t


def _root(t) -> Path:
    return Path(testing.storage(t).root)


def _expected(t):
    return {v: t.read(version=v).to_pylist() for v in range(t.version + 1)}


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "flip":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "delete":
        path.unlink()
    else:  # a plausible edit: same length, still valid JSON, one digit changed
        text = data.decode()
        i = text.index('"num_rows": ') + len('"num_rows": ')
        path.write_bytes((text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :]).encode())


def _reads_right_or_refuses(t, expected, name: str) -> list[CorruptionError]:
    """Read every version with a fresh store: each read is exactly right or a CorruptionError naming `name`."""
    integrity.forget()
    fresh = logstore.open(_root(t)).table("t")
    errors = []
    for v, rows in expected.items():
        try:
            got = fresh.read(version=v).to_pylist()
        except CorruptionError as e:
            assert name in e.path or name in str(e), f"version {v}: error does not name {name}: {e}"
            errors.append(e)
            continue
        assert got == rows, f"version {v} read wrong rows after damage to {name}"
    return errors


def _change_file(t, version: int) -> str:
    (f,) = testing.log(t).read(version).files
    return f"tables/t/{f.path}"


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
@pytest.mark.parametrize("version", [1, 3, 4])
def test_damaged_change_file_is_named(table, how, version):
    expected = _expected(table)
    path = _change_file(table, version)
    _damage(_root(table) / path, how)
    errors = _reads_right_or_refuses(table, expected, path)
    assert errors, "no read noticed the damage"
    assert any(e.version == version for e in errors)
    # the version that added the file cannot be read; the snapshot at 2 still serves versions 2.. when v <= 2
    with pytest.raises(CorruptionError, match=Path(path).name):
        logstore.open(_root(table)).table("t").read(version=version)
    report = logstore.open(_root(table)).table("t").verify()
    assert not report.ok
    assert any(p.path == path and p.version == version for p in report.problems), report.problems


def test_change_file_altered_after_first_use_in_process(table):
    """The checksum cache is keyed by size, inode, mtime and ctime: an in-place edit is hashed again."""
    expected = table.read(version=4).to_pylist()
    assert table.read(version=4).to_pylist() == expected  # checked and cached
    path = _change_file(table, 4)
    _damage(_root(table) / path, "flip")
    with pytest.raises(CorruptionError, match=Path(path).name):
        table.read(version=4)


@pytest.mark.parametrize("how", ["flip", "truncate", "delete", "edit"])
def test_damaged_commit_record_is_named(table, how):
    expected = _expected(table)
    path = "tables/t/_log/00000000000000000003.json"
    _damage(_root(table) / path, how)
    errors = _reads_right_or_refuses(table, expected, path)
    assert any(e.version == 3 for e in errors)
    report = logstore.open(_root(table)).table("t").verify()
    assert any(p.path == path and p.version == 3 for p in report.problems), report.problems
    with pytest.raises(CorruptionError):
        logstore.open(_root(table)).table("t").vacuum(older_than=0)  # refuses: cannot know what it references


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
def test_damaged_snapshot_file_is_skipped_and_reported(table, how):
    expected = _expected(table)
    (name,) = os.listdir(_root(table) / "tables/t/snapshots")
    path = f"tables/t/snapshots/{name}"
    _damage(_root(table) / path, how)
    integrity.forget()
    fresh = logstore.open(_root(table)).table("t")
    with pytest.warns(RuntimeWarning, match="snapshot"):
        assert fresh.read(version=2).to_pylist() == expected[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert _reads_right_or_refuses(table, expected, path) == []
    report = fresh.verify()
    assert any(p.path == path and p.version == 2 for p in report.problems), report.problems


@pytest.mark.parametrize("how", ["flip", "truncate", "edit_fingerprint"])
def test_damaged_snapshot_record_is_skipped_and_reported(table, how):
    expected = _expected(table)
    path = "tables/t/_snapshots/00000000000000000002.json"
    full = _root(table) / path
    if how == "edit_fingerprint":
        obj = json.loads(full.read_text())
        obj["fingerprint"] = "0" * 16
        full.write_text(json.dumps(obj))  # valid JSON, wrong content: the record checksum catches it
    else:
        _damage(full, how)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert _reads_right_or_refuses(table, expected, path) == []
    report = logstore.open(_root(table)).table("t").verify()
    assert any(p.path == path for p in report.problems), report.problems


def test_snapshot_with_wrong_content_but_consistent_record_is_caught_by_full_verify(table, tmp_path):
    """A snapshot written wrong (record and checksum match the bad file): full verify compares fingerprints."""
    import duckdb

    from logstore import snapshot as snapshot_module

    rec = snapshot_module.read_record(testing.storage(table), testing.prefix(table), 2)
    full = _root(table) / "tables/t" / rec.path
    bad = tmp_path / "bad.parquet"
    duckdb.connect().execute(f"COPY (SELECT _row_id, id, x + 1 AS x FROM read_parquet('{full}')) TO '{bad}' (FORMAT parquet)")
    full.unlink()
    full.write_bytes(bad.read_bytes())
    obj = json.loads((_root(table) / "tables/t/_snapshots/00000000000000000002.json").read_text())
    obj["size"], obj["sha256"] = full.stat().st_size, integrity.hashlib.sha256(full.read_bytes()).hexdigest()
    (_root(table) / "tables/t/_snapshots/00000000000000000002.json").write_text(json.dumps(integrity.seal(obj)))
    report = logstore.open(_root(table)).table("t").verify(full=True)
    assert any(p.kind == "fingerprint" and p.path.endswith(rec.path) for p in report.problems), report.problems


def test_damaged_tag_is_named(table):
    path = _root(table) / "tables/t/_tags/v3.json"
    _damage(path, "truncate")
    with pytest.raises(CorruptionError, match="v3.json"):
        logstore.open(_root(table)).table("t").read(tag="v3")
    report = logstore.open(_root(table)).table("t").verify()
    assert any(p.path.endswith("_tags/v3.json") for p in report.problems)


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
def test_damaged_store_marker(table, how):
    _damage(_root(table) / "logstore.json", how)
    with pytest.raises(LogstoreError):
        logstore.open(_root(table))


def test_verify_passes_on_an_intact_table_and_counts(table):
    report = table.verify(full=True)
    assert report.ok, report.problems
    assert report.records_checked == 6 and report.versions_checked == 6 and report.snapshots_checked == 1
    assert report.files_checked == 7  # six change files and one snapshot file
    assert report.unreferenced == []


def test_vacuum_keeps_every_version_and_tag_readable(table):
    expected = _expected(table)
    for _ in range(3):
        table.append(people([len(expected) * 10 + _]))
        table.snapshot()
    expected = _expected(table)
    junk = _root(table) / "tables/t/data/00000000000000000001-deadbeef.parquet"  # version 1's record lists others
    junk.write_bytes(b"leftover")
    # a file of a version above the head and a staging file may be an in-flight writer's: kept while young,
    # whatever older_than says, and removed once older than vacuum.IN_FLIGHT_GRACE
    ahead = _root(table) / "tables/t/data/00000000000000000099-feedbeef.parquet"
    ahead.write_bytes(b"in flight")
    (_root(table) / "_staging").mkdir(exist_ok=True)
    (_root(table) / "_staging/stale").write_bytes(b"x" * 10)
    young = table.vacuum(dry_run=True)  # default: 1 hour minimum age, so nothing this new goes
    assert young.removals == [] and young.too_young
    in_flight = table.vacuum(older_than=0)
    assert "tables/t/data/00000000000000000001-deadbeef.parquet" in in_flight.paths
    assert {"tables/t/data/00000000000000000099-feedbeef.parquet", "_staging/stale"} <= set(in_flight.too_young)
    old = time.time() - vacuum.IN_FLIGHT_GRACE - 60
    for path in (ahead, _root(table) / "_staging/stale"):
        os.utime(path, (old, old))
    before = file_state(_root(table))
    dry = table.vacuum(older_than=0)
    assert file_state(_root(table)) == before, "a dry run changed files"
    assert "tables/t/data/00000000000000000099-feedbeef.parquet" in dry.paths and "_staging/stale" in dry.paths
    assert dry.bytes == sum(r.bytes for r in dry.removals) > 0
    done = table.vacuum(dry_run=False, older_than=0)
    assert done.paths == dry.paths
    assert not junk.exists() and not ahead.exists()
    assert set(table.snapshots()) == {2, table.version}  # the newest, and the newest at or below tag v3
    integrity.forget()
    fresh = logstore.open(_root(table)).table("t")
    assert {v: fresh.read(version=v).to_pylist() for v in expected} == expected
    assert fresh.read(tag="v3").to_pylist() == expected[3]
    assert fresh.verify(full=True).ok
    assert fresh.vacuum(older_than=0).removals == []


# --- bad input: refused with a LogstoreError, nothing written ---------------------------------------------------


def test_bad_input_is_refused_and_writes_nothing(table, tmp_path):
    root = _root(table)
    before = file_state(root)
    not_a_store = tmp_path / "plain"
    not_a_store.mkdir()
    (not_a_store / "logstore.json").write_text('{"format": "something else"}')
    with pytest.raises(LogstoreError):
        logstore.open(not_a_store)
    with pytest.raises(LogstoreError):
        logstore.open(tmp_path / "nowhere")
    store = logstore.open(root)
    for name in ("../escape", "a/b", "..", "x/../../y", "/abs"):
        with pytest.raises(LogstoreError):
            store.create_table(name, people([1]))
        with pytest.raises(LogstoreError):
            store.table(name)
    target = tmp_path / "written.csv"
    for where in ("1=1; DROP TABLE x", "id = 1; COPY (SELECT 1) TO 'x.csv'", f"id IN (SELECT 1 FROM read_csv('{target}'))"):
        with pytest.raises(LogstoreError):
            table.delete(where)
        with pytest.raises(LogstoreError):
            table.read(where=where)
    for expression in (f"(COPY (SELECT 1) TO '{target}')", f"x + (SELECT count(*) FROM read_parquet('{target}'))", "write_csv(1)"):
        with pytest.raises(LogstoreError):
            table.update({"x": expression})
    assert not target.exists()
    assert file_state(root) == before
    assert not (tmp_path / "escape").exists()


# --- the CLI ------------------------------------------------------------------------------------------------


def test_cli_verify_and_vacuum(table):
    from click.testing import CliRunner

    from logstore_cli.main import cli

    root = str(_root(table))
    runner = CliRunner()
    ok = runner.invoke(cli, ["--store", root, "verify", "t", "--all-versions"])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    junk = _root(table) / "tables/t/data/junk.parquet"
    junk.write_bytes(b"leftover")
    dry = runner.invoke(cli, ["--store", root, "vacuum", "--older-than", "0"])
    assert dry.exit_code == 0 and "junk.parquet" in dry.output and junk.exists()
    young = runner.invoke(cli, ["--store", root, "vacuum", "t"])  # default minimum age 1h: nothing goes
    assert young.exit_code == 0 and "junk.parquet" not in young.output
    done = runner.invoke(cli, ["--store", root, "vacuum", "t", "--older-than", "0s", "--apply"])
    assert done.exit_code == 0 and not junk.exists()
    path = _change_file(table, 4)
    _damage(_root(table) / path, "flip")
    bad = runner.invoke(cli, ["--store", root, "verify", "-f", "json"])
    assert bad.exit_code == 1
    problems = json.loads(bad.output)["problems"]
    assert [(p["path"], p["version"], p["kind"]) for p in problems] == [(path, 4, "checksum")]
    assert runner.invoke(cli, ["--store", root, "vacuum", "--older-than", "soon"]).exit_code != 0


def test_tag_edited_to_another_version_is_caught(table):
    path = _root(table) / "tables/t/_tags/v3.json"
    obj = json.loads(path.read_text())
    obj["version"] = 2  # valid JSON, plausible value: the record checksum catches it
    path.write_text(json.dumps(obj))
    with pytest.raises(CorruptionError, match="v3.json"):
        logstore.open(_root(table)).table("t").read(tag="v3")


def test_vacuum_and_verify_with_compactions(tmp_path):
    """Compacted files listed by a compaction record are checked by verify and kept by vacuum; leftovers and the
    change files the compaction replaced go."""
    store = logstore.init(tmp_path / "c")
    t = store.create_table("t", people([0]), key="id")
    for i in range(1, 13):
        t.append(people([i]))
    expected = _expected(t)
    root = _root(t)
    compacted = root / "tables/t/compacted"
    if not compacted.exists():
        pytest.skip("no automatic compaction in this build")
    junk = compacted / "00000000000000000000-00000000000000000009-leftover.parquet"
    junk.write_bytes(b"leftover")
    report = t.verify(full=True)
    assert report.ok and report.unreferenced == [str(junk.relative_to(root))], (report.problems, report.unreferenced)
    done = t.vacuum(dry_run=False, older_than=0)
    replaced = [f"tables/t/{p}" for p in compaction.load(testing.storage(t), testing.prefix(t), 0, 9).replaces]
    assert sorted(done.paths) == sorted([str(junk.relative_to(root))] + replaced)
    integrity.forget()
    fresh = logstore.open(root).table("t")
    assert _expected(fresh) == expected and fresh.verify(full=True).ok
    listed = sorted(p for p in compacted.iterdir())[0]
    _damage(listed, "truncate")
    report = logstore.open(root).table("t").verify()
    assert any(p.path == str(listed.relative_to(root)) for p in report.problems), report.problems
