"""Remotes (issue 14): push, pull and clone between stores on local disk and on S3 (the local moto server).

Every scenario checks the destination as a reader would: every version, timestamp and tag reads the same as at
the origin (equal commit records, fingerprints and rows), and full verify passes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

import logstore
from logstore import layout, sync, testing
from logstore.storage import open_storage
from logstore_cli.main import cli

sys.path.insert(0, str(Path(__file__).parent))
from conftest import age_files, people  # noqa: E402

CHILD = str(Path(__file__).parent / "sync_child.py")


@pytest.fixture(autouse=True)
def _fast(no_fsync, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")


@pytest.fixture(params=["local", "s3"])
def place(request, tmp_path, monkeypatch):
    """Where remote stores live: a function giving a fresh location (a directory, or a prefix in a fresh bucket)."""
    if request.param == "local":
        return lambda name: str(tmp_path / name)
    server = request.getfixturevalue("s3_server")
    for key, value in server.environment().items():
        monkeypatch.setenv(key, value)
    url = request.getfixturevalue("s3_url")
    return lambda name: f"{url}/{name}"


def build(store: logstore.Store, name: str = "t", commits: int = 14) -> logstore.Table:
    """A table with every kind of commit, a tag, snapshots (every 4 commits) and an automatic compaction (block 0-9)."""
    t = store.create_table(name, people(range(5)), key="id", properties={"snapshot_commits": 4}, timestamp="2021-01-01")
    for v in range(1, commits + 1):
        stamp = dt.datetime(2021, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=v)
        kind = v % 4
        if kind == 0:
            t.update(set={"score": "score + 1"}, where=f"id % 3 = {v % 3}", timestamp=stamp)
        elif kind == 1:
            t.append(people([100 + v]), timestamp=stamp)
        elif kind == 2:
            t.delete(where=f"id = {v - 2}", timestamp=stamp)
        else:
            t.upsert(people([1, 200 + v], names=[f"u{v}", "new"]), timestamp=stamp)
        if v == 6:
            t.tag("six")
    return t


def same_history(a: logstore.Table, b: logstore.Table) -> None:
    """Every version, timestamp and tag of `a` reads the same in `b` (records, fingerprints, rows)."""
    assert a.version == b.version
    assert a.tags() == b.tags()
    for v in range(a.version + 1):
        assert testing.log(a).read_raw(v) == testing.log(b).read_raw(v)
        info = a.commit_info(v)
        assert b.commit_info(v) == info
        assert b.read(version=v).equals(a.read(version=v))
        assert b.read(as_of=info.timestamp).equals(a.read(as_of=info.timestamp))
    for tag in a.tags():
        assert b.read(tag=tag).equals(a.read(tag=tag))


def listing(location: str) -> dict[str, str]:
    """Every file of the store at `location` (path -> SHA-256), through the storage protocol."""
    storage = open_storage(location)
    found: dict[str, str] = {}

    def walk(prefix: str) -> None:
        for name in storage.list(prefix):
            path = f"{prefix}/{name}" if prefix else name
            found[path] = hashlib.sha256(storage.read(path)).hexdigest()
        for d in storage.list_dirs(prefix):
            walk(f"{prefix}/{d}" if prefix else d)

    walk("")
    return found


def data_files(location: str, table: str = "t") -> list[str]:
    storage = open_storage(location)
    prefix = layout.table_dir(table)
    return [f"{d}/{n}" for d in (layout.DATA_DIR, layout.SNAPSHOT_DATA_DIR, layout.COMPACTED_DATA_DIR) for n in storage.list(f"{prefix}/{d}")]


# --- clone, push, pull ----------------------------------------------------------------------------------------


def test_clone_reads_every_version_timestamp_and_tag_the_same(tmp_path, place):
    origin = logstore.init(place("origin"))
    t = build(origin)
    assert testing.log(t).versions() == list(range(15))
    clone = logstore.clone(place("origin"), tmp_path / "clone")
    assert clone.remotes()["origin"].url == place("origin")
    c = clone.table("t")
    same_history(t, c)
    assert c.snapshots() == t.snapshots() and c.snapshots()
    assert (tmp_path / "clone" / "tables/t/_compactions").exists()
    report = c.verify(full=True)
    assert report.ok and not report.unreferenced, (report.problems, report.unreferenced)


def test_commit_push_then_pull_into_a_second_clone(tmp_path, place):
    remote = logstore.init(place("remote"))
    build(remote, commits=3)
    one = logstore.clone(place("remote"), tmp_path / "one")
    two = logstore.clone(place("remote"), tmp_path / "two")
    t1 = one.table("t")
    t1.append(people([500, 501]))
    t1.tag("pushed")
    one.create_table("fresh", people([1]))
    report = one.push()
    assert report.direction == "push" and report.table("t").versions == 1 and report.table("fresh").created
    assert report.table("t").head == t1.version == 4
    pulled = two.pull()
    assert pulled.table("t").versions == 1 and pulled.table("t").head_before == 3 and pulled.table("t").head == 4
    same_history(t1, two.table("t"))
    same_history(one.table("fresh"), two.table("fresh"))
    assert logstore.open(place("remote")).table("t").verify(full=True).ok
    # nothing new: nothing sent, either way
    again = one.push()
    assert (again.versions, again.files, again.bytes) == (0, 0, 0)
    assert two.pull().files == 0


def test_a_second_push_sends_no_data_file_and_makes_no_put(tmp_path, s3_server, s3_url, monkeypatch):
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    local = logstore.init(tmp_path / "local")
    build(local)
    logstore.init(s3_url)
    local.add_remote("origin", s3_url, storage_options={"region": "us-east-1"})
    first = local.push()
    assert first.files == len(data_files(s3_url)) > 10
    before = dict(s3_server.requests)
    second = local.push()
    assert (second.versions, second.files, second.bytes, second.table("t").records) == (0, 0, 0, 0)
    assert s3_server.requests["PUT"] == before.get("PUT", 0)  # no byte went up
    local.table("t").append(people([900]))
    third = local.push()
    assert third.versions == 1 and third.files == 1
    assert logstore.open(s3_url).table("t").verify(full=True).ok


def test_tables_filter(tmp_path):
    origin = logstore.init(tmp_path / "origin")
    build(origin, "a", commits=2)
    build(origin, "b", commits=2)
    clone = logstore.clone(tmp_path / "origin", tmp_path / "clone", tables=["b"])
    assert clone.tables() == ["b"]
    origin.table("a").append(people([77]))
    origin.table("b").append(people([77]))
    report = clone.pull(tables=["a"])
    assert [t.table for t in report.tables] == ["a"] and report.table("a").created
    assert clone.table("b").version == 2  # not pulled
    with pytest.raises(logstore.TableNotFoundError, match="'nope'"):
        clone.pull(tables=["nope"])


def test_vacuumed_change_files_replaced_by_a_compaction(tmp_path, monkeypatch):
    origin = logstore.init(tmp_path / "origin")
    t = build(origin, commits=12)
    age_files(tmp_path / "origin", 7200)
    removed = t.vacuum(dry_run=False, older_than=0)
    assert any("data/" in r for r in map(str, removed.removals))
    clone = logstore.clone(tmp_path / "origin", tmp_path / "clone")
    same_history(t, clone.table("t"))
    assert clone.table("t").verify(full=True).ok


def test_a_clone_leaves_out_what_a_compaction_replaced_unless_the_compaction_is_damaged(tmp_path):
    origin = logstore.init(tmp_path / "origin")
    t = build(origin, commits=12)
    block = testing.prefix(t) + "/_compactions/" + layout.compaction_name(0, 9)
    replaced = json.loads(open_storage(tmp_path / "origin").read(block))["replaces"]
    assert replaced
    clone = logstore.clone(tmp_path / "origin", tmp_path / "clone")
    assert not any((tmp_path / "clone/tables/t" / p).exists() for p in replaced)  # as if vacuumed
    same_history(t, clone.table("t"))
    assert clone.table("t").verify(full=True).ok
    # a compacted file damaged at the origin: its record is not sent, and the files it replaced are
    compacted = json.loads(open_storage(tmp_path / "origin").read(block))["files"][0]["path"]
    victim = tmp_path / "origin/tables/t" / compacted
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        other = logstore.clone(tmp_path / "origin", tmp_path / "other")
        assert all((tmp_path / "other/tables/t" / p).exists() for p in replaced)
        assert not (tmp_path / "other/tables/t" / compacted).exists()
        same_history(t, other.table("t"))
        assert other.table("t").verify(full=True).ok


def test_pull_completes_a_clone_interrupted_before_version_0(tmp_path):
    origin = logstore.init(tmp_path / "origin")
    t = build(origin, commits=12)
    clone = logstore.clone(tmp_path / "origin", tmp_path / "clone")
    log_dir = tmp_path / "clone/tables/t/_log"
    for v in (0, 5, 11):  # as if killed while its records were being published: version 0's comes last
        (log_dir / layout.log_name(v)).unlink()
    (tmp_path / "clone/tables/t/_head.json").unlink()
    assert clone.tables() == []  # the table is invisible without version 0
    report = clone.pull()
    assert report.table("t").created and report.table("t").versions == 3
    same_history(t, clone.table("t"))
    check = clone.table("t").verify(full=True)
    assert check.ok, check.problems


def test_a_table_created_on_the_destination_during_a_clone_is_left_intact(tmp_path, monkeypatch):
    from logstore.storage import LocalStorage

    origin = logstore.init(tmp_path / "origin")
    build(origin, commits=12)
    original = LocalStorage.put_if_absent
    target = f"tables/t/_log/{layout.log_name(0)}"

    raced = []

    def racing(self, path, data):
        if path == target and str(self.root).endswith("clone") and not raced:
            raced.append(path)
            logstore.open(self.root).create_table("t", people([42]))  # another writer wins version 0
        return original(self, path, data)

    monkeypatch.setattr(LocalStorage, "put_if_absent", racing)
    with pytest.raises(logstore.DivergedError) as e:
        logstore.clone(tmp_path / "origin", tmp_path / "clone")
    assert e.value.version == 0
    theirs = logstore.open(tmp_path / "clone").table("t")
    assert theirs.version == 0 and theirs.read().column("id").to_pylist() == [42]
    assert theirs.verify(full=True).ok
    theirs.append(people([43]))  # and it takes commits
    assert theirs.version == 1


# --- lazy clones ---------------------------------------------------------------------------------------------------


def test_a_lazy_clone_fetches_only_the_files_a_read_needs(tmp_path, place):
    origin = logstore.init(place("origin"))
    t = build(origin, commits=14)
    lazy = logstore.clone(place("origin"), tmp_path / "lazy", lazy=True)
    assert data_files(str(tmp_path / "lazy")) == []  # records only
    assert lazy.remotes()["origin"].url == place("origin")
    c = logstore.open(tmp_path / "lazy").table("t")  # opened again: still lazy
    assert c.read().equals(t.read())
    fetched = data_files(str(tmp_path / "lazy"))
    assert 0 < len(fetched) < len(data_files(place("origin")))
    same_history(t, c)  # every version, timestamp and tag, fetching what each needs
    assert c.verify(full=True).ok
    # pull into a lazy clone copies records only; push from it reads its missing files from origin
    t.append(people([700]))
    assert lazy.pull().files == 0 and c.read().equals(t.read())
    copy = logstore.init(tmp_path / "copy")
    lazy.add_remote("copy", tmp_path / "copy")
    lazy.push("copy")
    same_history(t, copy.table("t"))
    assert copy.table("t").verify(full=True).ok
    with pytest.raises(logstore.InvalidInputError, match="lazy"):
        lazy.remove_remote("origin")


def test_a_lazy_clone_refuses_a_replaced_file_at_its_origin(tmp_path):
    origin = logstore.init(tmp_path / "origin")
    t = build(origin, commits=3)
    logstore.clone(tmp_path / "origin", tmp_path / "lazy", lazy=True)
    root = tmp_path / "origin/tables/t"
    files = [f.path for f in testing.log(t).read(1).files]
    other = [f.path for f in testing.log(t).read(3).files]
    (root / files[0]).write_bytes((root / other[0]).read_bytes())
    c = logstore.open(tmp_path / "lazy").table("t")
    with pytest.raises(logstore.CorruptionError, match="not fetched"):
        c.read(version=1)
    assert not (tmp_path / "lazy/tables/t" / files[0]).exists()  # never landed
    assert c.read(version=0).equals(logstore.open(tmp_path / "origin").table("t").read(version=0))


def test_cli_clone_lazy(tmp_path, monkeypatch):
    origin = logstore.init(tmp_path / "origin")
    t = build(origin, commits=3)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["clone", str(tmp_path / "origin"), "w", "--lazy", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tables"][0]["files"] == 0
    assert logstore.open(tmp_path / "w/.logstore").table("t").read().equals(t.read())


# --- divergence -------------------------------------------------------------------------------------------------


def _diverge(tmp_path, place):
    remote = logstore.init(place("remote"))
    build(remote, commits=3)
    local = logstore.clone(place("remote"), tmp_path / "local")
    return remote, local


def test_diverged_histories_refuse_and_change_nothing(tmp_path, place):
    remote, local = _diverge(tmp_path, place)
    remote.table("t").append(people([1000]))
    local.table("t").append(people([2000]))
    local.table("t").append(people([2001]))
    local.create_table("other", people([1]))  # a table only this side has: not sent either
    before = (listing(place("remote")), listing(str(tmp_path / "local")))
    with pytest.raises(logstore.DivergedError) as e:
        local.push()
    assert (e.value.table, e.value.version) == ("t", 4) and "'t'" in str(e.value) and "version 4" in str(e.value)
    with pytest.raises(logstore.DivergedError) as e:
        local.pull()
    assert (e.value.table, e.value.version) == ("t", 4)
    assert (listing(place("remote")), listing(str(tmp_path / "local"))) == before


def test_a_table_created_separately_on_each_side_has_diverged_at_version_0(tmp_path):
    a = logstore.init(tmp_path / "a")
    b = logstore.init(tmp_path / "b")
    a.create_table("t", people([1]))
    b.create_table("t", people([1]))
    a.add_remote("b", tmp_path / "b")
    with pytest.raises(logstore.DivergedError, match="version 0") as e:
        a.push()
    assert e.value.version == 0


def test_a_tag_naming_different_versions_is_a_divergence(tmp_path, place):
    remote, local = _diverge(tmp_path, place)
    remote.table("t").tag("release", version=1)
    local.table("t").tag("release", version=2)
    before = (listing(place("remote")), listing(str(tmp_path / "local")))
    for verb in (local.push, local.pull):
        with pytest.raises(logstore.DivergedError) as e:
            verb()
        assert e.value.tag == "release" and "release" in str(e.value)
    assert (listing(place("remote")), listing(str(tmp_path / "local"))) == before


def test_a_writer_committing_on_the_destination_during_a_push_is_not_overwritten(tmp_path, monkeypatch):
    remote, local = _diverge(tmp_path, lambda name: str(tmp_path / name))
    local.table("t").append(people([3000]))
    original = sync._copy_files

    def meanwhile(*args, **kwargs):
        remote.table("t").append(people([4000]))  # after the plan, before the records
        return original(*args, **kwargs)

    monkeypatch.setattr(sync, "_copy_files", meanwhile)
    with pytest.raises(logstore.DivergedError) as e:
        local.push()
    assert e.value.version == 4
    r = logstore.open(tmp_path / "remote").table("t")
    assert r.version == 4 and 4000 in r.read().column("id").to_pylist() and r.verify(full=True).ok


# --- damage and attacks -------------------------------------------------------------------------------------------


def test_a_remote_file_replaced_by_another_valid_file_is_never_landed(tmp_path):
    remote = logstore.init(tmp_path / "remote")
    t = build(remote, commits=3)
    local = logstore.clone(tmp_path / "remote", tmp_path / "local")
    t.append(people([600]))
    t.append(people([601]))
    root = tmp_path / "remote" / "tables" / "t"
    files = [f.path for f in testing.log(t).read(4).files]
    other = [f.path for f in testing.log(t).read(5).files]
    (root / files[0]).write_bytes((root / other[0]).read_bytes())  # a valid Parquet file, the wrong one
    before = listing(str(tmp_path / "local"))
    with pytest.raises(logstore.CorruptionError, match="sha256") as e:
        local.pull()
    assert files[0] in e.value.path
    after = listing(str(tmp_path / "local"))
    assert not any(p.endswith(files[0]) for p in after)  # never landed
    assert {p for p in after if "_log" in p} == {p for p in before if "_log" in p}  # no record published
    assert local.table("t").version == 3 and local.table("t").verify().ok


def test_a_damaged_remote_record_is_refused(tmp_path):
    remote = logstore.init(tmp_path / "remote")
    t = build(remote, commits=3)
    local = logstore.clone(tmp_path / "remote", tmp_path / "local")
    t.append(people([600]))
    record = tmp_path / "remote" / "tables/t/_log" / layout.log_name(4)
    record.write_bytes(record.read_bytes().replace(b'"APPEND"', b'"DELETE"'))
    with pytest.raises(logstore.CorruptionError, match="checksum"):
        local.pull()
    assert local.table("t").version == 3


# --- interrupted transfers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["files", "records"])
def test_a_push_killed_half_way_completes_when_run_again(tmp_path, when):
    local = logstore.init(tmp_path / "local")
    t = build(local, commits=24)
    for i in range(12):
        t.append(people([5000 + i]))
    logstore.init(tmp_path / "remote")
    local.add_remote("origin", tmp_path / "remote")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, CHILD, str(tmp_path / "local"), "origin", "0.03"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    log_dir = tmp_path / "remote/tables/t/_log"
    deadline = time.monotonic() + 60
    while True:
        arrived = data_files(str(tmp_path / "remote"))
        records = os.listdir(log_dir) if log_dir.exists() else []
        if (when == "files" and len(arrived) >= 8) or (when == "records" and len(records) >= 5):
            break
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    child.stderr.close()
    arrived = set(data_files(str(tmp_path / "remote")))
    total = set(data_files(str(tmp_path / "local")))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if when == "records":  # what was published reads correctly already
            partial = logstore.open(tmp_path / "remote").table("t")
            for v in range(partial.version + 1):
                assert partial.read(version=v).equals(t.read(version=v))
    assert arrived < total if when == "files" else arrived == total  # files first, then the records
    report = local.push()
    assert report.files == len(total - arrived)  # only what was still missing
    remote = logstore.open(tmp_path / "remote").table("t")
    check = remote.verify(full=True)
    assert check.ok and not check.unreferenced, (check.problems, check.unreferenced)
    same_history(t, remote)
    assert local.push().files == 0


@pytest.mark.stress
def test_a_push_killed_again_and_again_completes(tmp_path, place):
    """Kill a slow push at random moments, over and over (to disk and to S3), until a run completes by itself;
    after every kill the destination verifies and reads as the source up to its head, and the final push sends
    nothing."""
    import random

    rng = random.Random(14)
    local = logstore.init(tmp_path / "local")
    t = build(local, commits=40)
    remote_url = place("remote")
    logstore.init(remote_url)
    local.add_remote("origin", remote_url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")]))}
    kills = 0
    for _ in range(40):
        child = subprocess.Popen([sys.executable, CHILD, str(tmp_path / "local"), "origin", "0.02"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            child.wait(timeout=rng.uniform(0.8, 2.0))
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills += 1
        out = child.stdout.read()
        child.stdout.close()
        child.stderr.close()
        store = logstore.open(remote_url)
        if "t" in store.tables():
            partial = store.table("t")
            assert partial.verify().ok
            assert partial.read().equals(t.read(version=partial.version))
        if b"done" in out:
            break
    assert kills >= 1
    print(f"[push kills] {kills} kills before a push completed by itself")
    assert local.push().files == 0
    remote = logstore.open(remote_url).table("t")
    assert remote.verify(full=True).ok
    same_history(t, remote)


# --- remotes: configuration and errors --------------------------------------------------------------------------


def test_remote_configuration(tmp_path, monkeypatch):
    store = logstore.init(tmp_path / "s")
    assert store.remotes() == {}
    with pytest.raises(logstore.RemoteNotFoundError, match="none is configured"):
        store.push()
    store.add_remote("backup", tmp_path / "b", storage_options={"region": "eu-west-1", "allow_http": True})
    assert store.remotes()["backup"] == logstore.Remote("backup", str(tmp_path / "b"), {"region": "eu-west-1", "allow_http": True})
    with pytest.raises(logstore.RemoteExistsError, match="'backup'"):
        store.add_remote("backup", tmp_path / "c")
    store.add_remote("second", tmp_path / "c")
    with pytest.raises(logstore.RemoteNotFoundError, match="no 'origin'"):
        store.push()  # two remotes, none named origin
    with pytest.raises(logstore.RemoteNotFoundError, match="'nope'.*backup, second"):
        store.push("nope")
    with pytest.raises(logstore.InvalidNameError, match="'../x'"):
        store.add_remote("../x", tmp_path / "d")
    with pytest.raises(logstore.InvalidNameError):
        store.pull("a/b")
    assert store.remove_remote("second").name == "second"
    with pytest.raises(logstore.RemoteNotFoundError):
        store.remove_remote("second")
    assert list(store.remotes()) == ["backup"]
    monkeypatch.chdir(tmp_path)
    store.add_remote("relative", "elsewhere/store")  # a relative path: the same place from any directory
    assert store.remotes()["relative"].url == str(tmp_path / "elsewhere" / "store")
    raw = json.loads((tmp_path / "s" / "remotes.json").read_text())
    assert raw["format_version"] == 1 and "checksum" in raw


@pytest.mark.parametrize("key", ["secret_access_key", "aws_session_token", "access_key_id", "azure_storage_account_key", "password", "sas_token", "google_application_credentials"])
def test_credentials_are_never_stored(tmp_path, key):
    store = logstore.init(tmp_path / "s")
    with pytest.raises(logstore.InvalidInputError, match=key):
        store.add_remote("r", "s3://bucket/x", storage_options={key: "hunter2", "region": "x"})
    assert store.remotes() == {}
    assert not (tmp_path / "s" / "remotes.json").exists()


def test_clone_stores_the_options_minus_credentials(tmp_path, s3_server, s3_url):
    origin = logstore.init(s3_url, storage_options=s3_server.options())
    build(origin, commits=2)
    clone = logstore.clone(s3_url, tmp_path / "c", storage_options=s3_server.options())
    stored = clone.remotes()["origin"].options
    assert stored == {"endpoint": s3_server.endpoint, "region": "us-east-1", "allow_http": True}
    assert b"test" not in (tmp_path / "c" / "remotes.json").read_bytes().replace(b"tests", b"")
    with pytest.raises(logstore.StorageError):  # no credentials now: a clear error naming the bucket
        clone.pull()
    assert clone.pull(storage_options={"access_key_id": "test", "secret_access_key": "test"}).versions == 0


def test_bad_urls_and_missing_stores_are_named(tmp_path):
    store = logstore.init(tmp_path / "s")
    store.create_table("t", people([1]))
    with pytest.raises(logstore.InvalidInputError, match="ftp://x"):
        store.add_remote("r", "ftp://x/y")
    with pytest.raises(logstore.InvalidInputError):
        store.add_remote("r", "")
    with pytest.raises(logstore.InvalidInputError, match="credentials"):
        store.add_remote("r", "s3://user:pw@bucket/x")
    store.add_remote("gone", tmp_path / "nothing-here")
    with pytest.raises(logstore.StoreNotFoundError, match="nothing-here"):
        store.push("gone")
    with pytest.raises(logstore.StoreNotFoundError, match="nothing-here"):
        logstore.clone(tmp_path / "nothing-here", tmp_path / "c")
    assert not (tmp_path / "c").exists()
    with pytest.raises(logstore.StoreExistsError):
        logstore.clone(tmp_path / "s", tmp_path / "s")


def test_a_damaged_remotes_record_is_reported(tmp_path):
    store = logstore.init(tmp_path / "s")
    store.add_remote("r", tmp_path / "x")
    path = tmp_path / "s" / "remotes.json"
    path.write_text(path.read_text().replace(str(tmp_path / "x"), str(tmp_path / "y")))
    with pytest.raises(logstore.CorruptionError, match="remotes.json"):
        store.remotes()


def test_progress_reports_files_and_bytes(tmp_path):
    origin = logstore.init(tmp_path / "o")
    build(origin, commits=4)
    seen: list[logstore.SyncProgress] = []
    logstore.clone(tmp_path / "o", tmp_path / "c", progress=seen.append)
    last = seen[-1]
    assert last.files_done == last.files_total > 0 and last.bytes_done == last.bytes_total > 0


# --- the CLI --------------------------------------------------------------------------------------------------------


def test_cli_remote_push_pull_clone(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOGSTORE_DIR", raising=False)

    def run(*args, code=0):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == code, (args, result.output, result.stderr if hasattr(result, "stderr") else "")
        return result

    (tmp_path / "p.csv").write_text("id,x\n1,a\n2,b\n")
    run("init")
    run("create", "t", "p.csv", "--key", "id")
    logstore.init(tmp_path / "remote")
    run("remote", "add", "origin", tmp_path / "remote", "--option", "region=eu-west-1")
    listed = json.loads(run("remote", "list", "-f", "json").output)
    assert listed == [{"name": "origin", "url": str(tmp_path / "remote"), "options": {"region": "eu-west-1"}}]
    out = run("push").output
    assert "t: new table -> 0, 1 version, 1 file" in out
    report = json.loads(run("push", "-f", "json").output)
    assert report["direction"] == "push" and report["tables"][0]["files"] == 0 and report["tables"][0]["head"] == 0
    assert "up to date" in run("push").output
    cloned = json.loads(run("clone", tmp_path / "remote", tmp_path / "w", "-f", "json").output)
    assert cloned["tables"][0]["versions"] == 1
    assert (tmp_path / "w" / ".logstore" / "remotes.json").exists()
    logstore.open(tmp_path / "remote").table("t").append(pa.table({"id": [9], "x": ["z"]}))
    pulled = json.loads(run("--store", tmp_path / "w", "pull", "--table", "t", "-f", "json").output)
    assert pulled["tables"][0]["versions"] == 1 and pulled["tables"][0]["head"] == 1
    bad = run("remote", "add", "x", "s3://b/p", "--option", "secret_access_key=abc", code=1)
    assert "secret_access_key" in bad.output and "abc" not in bad.output
    missing = run("push", "nope", code=1)
    assert "no remote 'nope'" in missing.output
    run("remote", "add", "gone", tmp_path / "no-store")
    assert "no-store" in run("push", "gone", code=1).output
    assert "removed remote gone" in run("remote", "remove", "gone").output
    assert run("remote", "add", "o", "k", "--option", "novalue", code=2)
