"""Expiry (logstore/expiry.py): versions before a cut-off stop being readable, vacuum reclaims their files."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

import logstore
import logstore.storage

from conftest import people


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(logstore.storage, "_fsync", lambda path: None)


def _table(store, commits=15):
    t = store.create_table("t", people(range(200)), key="id", timestamp="2021-01-01")
    for i in range(1, commits + 1):
        t.update({"score": f"score + {i}"}, f"id < {20 + i}", timestamp=f"2021-01-{1 + i:02d}")
    return t


def test_expire_keep_last_reads_history_vacuum_and_verify(store):
    t = _table(store)
    t.tag("release", 4)
    expected = {v: t.read(version=v) for v in range(t.version + 1)}
    dry = t.expire(keep_last=5, dry_run=True)
    assert dry.cutoff == 11 and dry.expired == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10] and dry.kept == [4] and dry.version is None
    assert t.version == 15 and t.read(version=2).equals(expected[2])  # a dry run changes nothing
    report = t.expire(keep_last=5, message="retention")
    assert report.version == 16 and t.history()[0].operation == "EXPIRE"
    with pytest.raises(logstore.VersionExpiredError, match="versions before 11") as e:
        t.read(version=2)
    assert e.value.version == 2 and e.value.cutoff == 11 and e.value.cutoff_timestamp.startswith("2021-01-12")
    with pytest.raises(logstore.VersionExpiredError):
        t.read(as_of="2021-01-04")
    with pytest.raises(logstore.VersionExpiredError):
        store.sql("SELECT count(*) FROM t AS OF VERSION 3").fetchall()
    with pytest.raises(logstore.VersionExpiredError):
        t.restore(version=3)
    with pytest.raises(logstore.VersionExpiredError):
        t.changes(7, 12)
    with pytest.raises(logstore.VersionExpiredError):
        t.diff(0, 15)
    assert t.read(tag="release").equals(expected[4])
    for v in range(11, 16):
        assert t.read(version=v).equals(expected[v])
    assert t.read().equals(expected[15])
    marks = {c.version: c.expired for c in t.history()}
    assert [v for v, gone in marks.items() if gone] == [10, 9, 8, 7, 6, 5, 3, 2, 1, 0]
    assert t.commit_info(2).operation == "UPDATE"  # records stay: history is listed
    size = sum(f.stat().st_size for f in t._storage.root.rglob("*.parquet"))
    vacuumed = t.vacuum(dry_run=False, older_than=0)
    assert vacuumed.bytes > 0 and any("only expired versions need" in r.reason for r in vacuumed.removals)
    assert sum(f.stat().st_size for f in t._storage.root.rglob("*.parquet")) < size
    fresh = logstore.open(t._storage.root).table("t")
    assert fresh.read(tag="release").equals(expected[4])
    for v in range(11, 17):
        assert fresh.read(version=v).equals(expected[min(v, 15)])
    assert fresh.changes(12, 15).num_rows > 0
    assert fresh.verify(full=True).ok
    fresh.update({"score": "0"}, "id = 1")  # later commits, compaction and snapshots still work
    for i in range(10):
        fresh.append(people([1000 + i]))
    fresh.compact()
    assert fresh.verify(full=True).ok and fresh.read().num_rows == 210


def test_expire_before_include_tags_and_never_unexpire(store):
    t = _table(store)
    t.tag("old", 2)
    with pytest.raises(logstore.InvalidInputError, match="latest version"):
        t.expire(before=dt.datetime.now(dt.UTC))
    with pytest.raises(logstore.InvalidInputError):
        t.expire(keep_last=0)
    with pytest.raises(logstore.InvalidInputError):
        t.expire()
    report = t.expire(before="2021-01-06", keep_tags=False)
    assert report.cutoff == 5 and report.kept == [] and 2 in report.expired
    with pytest.raises(logstore.VersionExpiredError):
        t.read(tag="old")
    t.read(version=5)
    again = t.expire(keep_last=100)  # an earlier cut-off: nothing is un-expired
    assert again.cutoff == 5 and again.expired == [] and again.version is None
    with pytest.raises(logstore.VersionExpiredError):
        t.read(version=4)


def test_retention_property_applied_by_vacuum(store):
    t = store.create_table("t", people(range(10)), key="id", timestamp="2021-01-01")
    for i in range(5):
        t.append(people([100 + i]), timestamp=f"2021-02-{1 + i:02d}")
    with pytest.raises(logstore.InvalidInputError, match="retention"):
        t.set_properties(retention="ninety days")
    t.set_properties(retention="90d")
    assert t.properties["retention"] == "90d"
    t.vacuum(dry_run=True)
    assert t.history()[0].operation == "SET PROPERTIES"  # a dry run commits nothing
    t.vacuum(dry_run=False, older_than=0)
    head = t.history()[0]
    assert head.operation == "EXPIRE" and head.message == "retention 90d"
    latest_data = head.version - 2  # the set_properties commit is now: it stays readable
    with pytest.raises(logstore.VersionExpiredError):
        t.read(version=latest_data)
    assert t.read().num_rows == 15 and t.verify(full=True).ok


def test_cli_expire_and_log(tmp_path, cli_env):
    from click.testing import CliRunner

    from logstore_cli.main import cli

    store = logstore.init(tmp_path / "s")
    _table(store, commits=4)
    runner = CliRunner()
    base = ["--store", str(tmp_path / "s")]
    out = runner.invoke(cli, [*base, "expire", "t"])
    assert out.exit_code == 2 and "--keep-last" in out.output
    out = runner.invoke(cli, [*base, "expire", "t", "--keep-last", "2", "--dry-run"])
    assert out.exit_code == 0 and "would expire 3 versions before 3" in out.output
    out = runner.invoke(cli, [*base, "expire", "t", "--keep-last", "2", "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output)["version"] == 5
    out = runner.invoke(cli, [*base, "log", "t", "--format", "json"])
    assert [r["expired"] for r in json.loads(out.output)] == [False, False, False, True, True, True]
    out = runner.invoke(cli, [*base, "log", "t"])
    assert "UPDATE (expired)" in out.output
    out = runner.invoke(cli, [*base, "show", "t", "--version", "1"])
    assert out.exit_code == 1 and "has expired" in out.output and "versions before 3" in out.output


def test_cli_purge(tmp_path, cli_env):
    from click.testing import CliRunner

    from logstore_cli.main import cli

    store = logstore.init(tmp_path / "s")
    t = store.create_table("u", pa.table({"id": [1, 2], "email": ["a@x", "jane@x"]}), key="id")
    t.update({"email": "'jane@y'"}, "email = 'jane@x'")
    runner = CliRunner()
    base = ["--store", str(tmp_path / "s")]
    out = runner.invoke(cli, [*base, "purge", "u", "--where", "email LIKE 'jane%'", "--dry-run", "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output)["rows"] == 1
    out = runner.invoke(cli, [*base, "purge", "u", "--where", "nope = 1"])
    assert out.exit_code == 1 and "nope" in out.output
    out = runner.invoke(cli, [*base, "purge", "u", "--where", "email LIKE 'jane%'", "-m", "erasure"])
    assert out.exit_code == 0 and "version 2 PURGE: 1 rows" in out.output
    out = runner.invoke(cli, [*base, "purge", "u", "--where", "email LIKE 'jane%'"])
    assert out.exit_code == 0 and "nothing purged (still version 2)" in out.output
    out = runner.invoke(cli, [*base, "log", "u", "--format", "json"])
    assert "jane" not in out.output and json.loads(out.output)[0]["operation"] == "PURGE"
    assert logstore.open(tmp_path / "s").table("u").read(version=0).to_pylist() == [{"id": 1, "email": "a@x"}]
