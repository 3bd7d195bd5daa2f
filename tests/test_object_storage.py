"""Stores on an object store (issue 12): the same behaviour as on local disk, against a real S3-compatible server
(moto, on 127.0.0.1) and obstore's in-memory store."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import warnings

import pytest
from click.testing import CliRunner

import logstore
from logstore.errors import CorruptionError, LogstoreError, StorageError, StoreNotFoundError
from logstore_cli.main import cli

from conftest import people


@pytest.fixture(params=["local", "s3", "memory"])
def location(request, tmp_path):
    """(location, storage_options) of an empty place for a store."""
    if request.param == "local":
        return str(tmp_path / "store"), None
    if request.param == "memory":
        return f"memory://{request.node.name}-{time.time_ns()}", None
    server = request.getfixturevalue("s3_server")
    return request.getfixturevalue("s3_url"), server.options()


def _scenario(store):
    """Every verb once, with time travel by version, timestamp and tag; returns the table and its expected states."""
    day = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    t = store.create_table("events", people(range(6)), key="id", timestamp=day)
    t.append(people([10, 11]), timestamp=day + dt.timedelta(days=1))
    t.update({"score": "score + 100"}, "id < 3", timestamp=day + dt.timedelta(days=2))
    t.tag("before-delete")
    t.delete("id = 4", timestamp=day + dt.timedelta(days=3))
    t.snapshot()
    t.upsert(people([1, 20], names=["one", "twenty"]), timestamp=day + dt.timedelta(days=4))
    t.overwrite(people([1, 2, 3, 20]), timestamp=day + dt.timedelta(days=5))
    t.restore(version=3)
    states = {v: t.read(version=v).to_pylist() for v in range(t.version + 1)}
    return t, states


def test_every_verb_and_time_travel_on_each_storage(location):
    url, options = location
    store = logstore.init(url, storage_options=options)
    t, states = _scenario(store)
    again = logstore.open(url, storage_options=options).table("events")
    assert {v: again.read(version=v).to_pylist() for v in states} == states
    assert again.read(as_of="2022-01-03 12:00").to_pylist() == states[2]
    assert again.read(tag="before-delete").to_pylist() == states[2]
    assert sorted(again.read().to_pylist(), key=repr) == sorted(states[3], key=repr)  # restored: the rows of 3
    assert [c.operation for c in again.history()][:2] == ["RESTORE", "OVERWRITE"]
    assert again.to_polars(version=1).height == 8 and again.scan_polars(version=1).collect().height == 8
    assert store.sql("SELECT count(*) FROM events AS OF VERSION 1").fetchall() == [(8,)]
    assert store.sql("SELECT count(*) FROM events AS OF VERSION 'before-delete'").fetchall() == [(len(states[2]),)]
    feed = again.changes(3, 3).to_pylist()
    assert [r["_change_type"] for r in feed] == ["delete"] and feed[0]["id"] == 4
    assert again.diff_summary(0, 2).updated == 3
    assert again.verify(full=True).ok


def test_compaction_checkpoints_vacuum_and_repair_on_s3(s3_server, s3_url, monkeypatch):
    monkeypatch.setattr("logstore.checkpoint.INTERVAL", 10)
    store = logstore.init(s3_url, storage_options=s3_server.options())
    t = store.create_table("t", people(range(3)), key="id")
    for i in range(24):
        t.append(people([100 + i]))
    t.compact()
    expected = {v: t.read(version=v).to_pylist() for v in range(t.version + 1)}
    assert t._storage.list("tables/t/_checkpoints") and t._storage.list("tables/t/_compactions")
    removed = t.vacuum(dry_run=False, older_than=0)
    fresh = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
    assert {v: fresh.read(version=v).to_pylist() for v in expected} == expected
    assert fresh.verify(full=True).ok and isinstance(removed.bytes, int)
    fresh._storage.put("tables/t/_log/00000000000000000024.json", b"damaged")
    fresh = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(CorruptionError, match="repair"):
            fresh.append(people([999]))
        report = fresh.repair()
    assert report.head_after == 23
    again = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
    again.append(people([999]))
    assert again.version == 24 and again.read().column("id").to_pylist()[-1] == 999


def test_a_warm_read_makes_no_request_for_data_files(s3_server, s3_url):
    store = logstore.init(s3_url, storage_options=s3_server.options())
    t = store.create_table("t", people(range(3)), key="id")
    for i in range(5):
        t.append(people([10 + i]))
    reader = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
    requests = reader._storage.requests
    reader.read(version=4)
    cold = dict(requests)
    requests.clear()
    reader.read(version=4)
    assert requests["GET"] < cold["GET"]  # the change files come from the local cache, verified once
    assert requests["GET"] <= 1 and requests["LIST"] <= 1  # the head hint; the snapshot listing


def test_requests_per_commit_do_not_grow_with_the_log(s3_server, s3_url):
    store = logstore.init(s3_url, storage_options=s3_server.options())
    t = store.create_table("t", people(range(3)), key="id", properties={"snapshot_commits": 1000})

    def commit_requests() -> int:
        before = sum(t._storage.requests.values())
        t.append(people([t.version + 1000]))
        return sum(t._storage.requests.values()) - before

    early = [commit_requests() for _ in range(5)]
    for _ in range(40):
        t.append(people([t.version + 1000]))
    late = [commit_requests() for _ in range(5)]
    assert sorted(late)[2] <= sorted(early)[2] + 4, (early, late)


_WRITER = """
import sys, json, pyarrow as pa, logstore
options = json.loads(sys.argv[3])
t = logstore.open(sys.argv[1], storage_options=options).table("t")
for i in range(int(sys.argv[2])):
    c = t.append(pa.table({"id": pa.array([int(sys.argv[4]) * 1000 + i], pa.int64()), "name": ["w"], "score": [0.0]}))
    print(c.version, flush=True)
"""


def test_two_processes_committing_through_s3_lose_nothing(s3_server, s3_url):
    import json

    store = logstore.init(s3_url, storage_options=s3_server.options())
    store.create_table("t", people(range(2)), key="id")
    args = [s3_url, "12", json.dumps(s3_server.options())]
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, *args, str(w + 1)], stdout=subprocess.PIPE, text=True) for w in range(2)]
    acknowledged = []
    for w in writers:
        out, _ = w.communicate(timeout=300)
        assert w.returncode == 0
        acknowledged += [int(v) for v in out.split()]
    assert sorted(acknowledged) == list(range(1, 25))  # exactly one winner per version
    t = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
    assert t.version == 24 and sorted(t.read().column("id").to_pylist()) == sorted([0, 1] + [w * 1000 + i for w in (1, 2) for i in range(12)])
    assert t.verify(full=True).ok


def test_a_missing_bucket_and_an_unreachable_endpoint_fail_fast_naming_the_url(s3_server):
    options = s3_server.options()
    started = time.monotonic()
    with pytest.raises(StorageError, match="s3://no-such-bucket/x"):
        logstore.init("s3://no-such-bucket/x", storage_options=options)
    with pytest.raises(StoreNotFoundError, match="s3://no-such-bucket/x"):
        logstore.open("s3://no-such-bucket/x", storage_options=options)
    dead = {**options, "endpoint": "http://127.0.0.1:9"}
    with pytest.raises(StorageError, match="s3://bucket/x"):
        logstore.open("s3://bucket/x", storage_options=dead)
    assert time.monotonic() - started < 30


def test_the_cli_reaches_s3_through_the_aws_environment(s3_server, s3_url, tmp_path, monkeypatch):
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    data = tmp_path / "e.csv"
    data.write_text("id,name\n1,a\n2,b\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["--store", s3_url, "init"]).exit_code == 0
    created = runner.invoke(cli, ["--store", s3_url, "create", "e", str(data), "--key", "id"])
    assert created.exit_code == 0, created.output
    shown = runner.invoke(cli, ["--store", s3_url, "show", "e", "-f", "csv"])
    assert shown.exit_code == 0 and shown.output.splitlines() == ["id,name", "1,a", "2,b"]
    assert runner.invoke(cli, ["--store", s3_url, "verify"]).exit_code == 0
    assert logstore.open(s3_url).table("e").version == 0  # the environment alone is enough


def test_the_storage_protocol_behaves_alike_everywhere(location):
    """get, get a byte range, head, list, put-if-absent, put, delete: the same answers on disk and on object stores."""
    url, options = location
    storage = logstore.init(url, storage_options=options)._storage
    assert storage.put_if_absent("a/b/one.json", b"first") is True
    assert storage.put_if_absent("a/b/one.json", b"second") is False  # never replaced
    assert storage.read("a/b/one.json") == b"first" and storage.read_range("a/b/one.json", 1, 4) == b"irs"
    info = storage.stat("a/b/one.json")
    assert info.size == 5 and abs(info.modified - time.time()) < 120 and info.tag
    storage.put_if_absent("a/two.json", b"2")
    assert storage.list("a") == ["two.json"] and storage.list_dirs("a") == ["b"] and storage.list("nothing") == []
    storage.put("a/two.json", b"22")  # hints only: replaced as a whole
    assert storage.read("a/two.json") == b"22" and storage.exists("a/two.json")
    storage.delete("a/two.json")
    storage.delete("a/two.json")  # deleting what is not there is no error
    assert not storage.exists("a/two.json")
    with pytest.raises(FileNotFoundError):
        storage.read("a/two.json")
    with pytest.raises(FileNotFoundError):
        storage.stat("a/two.json")


def test_a_server_gone_mid_commit_leaves_the_store_as_before(tmp_path, monkeypatch):
    """The server stops after the change file is stored and before the commit record is: the commit fails with a
    StorageError; once the server is back, the table reads as before and takes the commit."""
    from logstore import log as log_module

    from s3server import S3Server

    server = S3Server()
    server.create_bucket("gone")
    url = "s3://gone/store"
    t = logstore.init(url, storage_options=server.options()).create_table("t", people(range(3)), key="id")
    before = t.read().to_pylist()
    publish = log_module.Log.publish

    def server_stops_first(self, record):
        server.stop()
        return publish(self, record)

    monkeypatch.setattr(log_module.Log, "publish", server_stops_first)
    started = time.monotonic()
    with pytest.raises(StorageError, match="s3://gone/store"):
        t.append(people([50]))
    assert time.monotonic() - started < 30
    monkeypatch.undo()
    server.restart()
    again = logstore.open(url, storage_options=server.options()).table("t")
    assert again.version == 0 and again.read().to_pylist() == before
    again.append(people([50]))
    assert again.version == 1 and again.verify().ok
    server.stop()


@pytest.mark.parametrize("operation", ["append", "update"])
def test_a_request_failing_at_any_step_of_a_commit_on_s3(s3_server, s3_url, operation, monkeypatch):
    """Fail the Nth request a commit makes to the S3 server (N = 1, 2, ... through the whole commit): the table reads
    exactly as before or as after, an acknowledged commit is there, the next commit works, and verify passes."""
    from logstore import object_storage

    store = logstore.init(s3_url, storage_options=s3_server.options())
    store.create_table("t", people(range(4)), key="id")
    run = {"append": lambda t: t.append(people([100])), "update": lambda t: t.update({"score": "score + 1"}, "id = 2")}[operation]
    real = object_storage.ObjectStorage._call
    injected = 0
    for n in range(1, 200):
        counter = {"n": 0}

        def failing(self, kind, fn, path, *args, n=n, counter=counter, **kwargs):
            counter["n"] += 1
            if counter["n"] == n:
                raise StorageError(self.location, f"{kind} {path}", "injected failure")
            return real(self, kind, fn, path, *args, **kwargs)

        table = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
        before = (table.version, table.read().to_pylist())
        monkeypatch.setattr(object_storage.ObjectStorage, "_call", failing)
        acknowledged = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                run(table)
            acknowledged = True
        except LogstoreError:
            pass
        monkeypatch.setattr(object_storage.ObjectStorage, "_call", real)
        after = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
        assert after.version in (before[0], before[0] + 1)
        if acknowledged or after.version == before[0] + 1:
            assert after.version == before[0] + 1
        else:
            assert after.read().to_pylist() == before[1]
        if counter["n"] < n:  # the commit finished without reaching request n: every step was covered
            break
        injected += 1
    assert injected >= 8
    final = logstore.open(s3_url, storage_options=s3_server.options()).table("t")
    final.append(people([999]))
    assert final.verify(full=True).ok
