"""Fault injection, SQLite style: fail the Nth storage operation of a commit, for N = 1, 2, ... until it completes.

A FaultyStorage fails one chosen operation (read, stat, list, write, fsync, link, mkdir, delete, ...) with EIO:
either only that one ("transient": the process goes on) or that one and every later one ("crash": the process
can do nothing more, as if it died there). After every injected failure, a clean reader must see the table exactly
as before the commit or exactly as after it (never anything else), an acknowledged commit must be there, verify
must pass, vacuum must clear the leftovers, and the next commit must work.
"""

from __future__ import annotations

import errno
import itertools
import shutil
import warnings

import pyarrow as pa
import pytest

import logstore
from logstore import integrity, vacuum
from logstore.storage import LocalStorage

from conftest import age_files

INJECTED = {"faults": 0}  # totals over the session, for the README numbers


class InjectedFault(OSError):
    pass


class FaultyStorage(LocalStorage):
    """LocalStorage whose `fail_at`-th operation (1-based) raises EIO; with sticky=True every later one does too."""

    OPS = ("read", "size", "stat", "exists", "list", "list_dirs", "staging_file", "sha256", "delete", "_write", "_fsync", "_link", "_make_dirs")

    def __init__(self, root, fail_at: int, sticky: bool):
        super().__init__(root)
        self.fail_at, self.sticky, self.count, self.failed = fail_at, sticky, 0, None

    def _step(self, name: str) -> None:
        self.count += 1
        if self.count == self.fail_at or (self.sticky and self.count > self.fail_at):
            if self.failed is None:
                self.failed = name
            raise InjectedFault(errno.EIO, f"injected fault at operation {self.count} ({name})")


def _wrap(name):
    def method(self, *args, **kwargs):
        self._step(name)
        return getattr(LocalStorage, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in FaultyStorage.OPS:
    setattr(FaultyStorage, _name, _wrap(_name))


def people(ids, x=0):
    return pa.table({"id": pa.array(ids, pa.int64()), "x": pa.array([x + i for i in ids], pa.int64()), "s": [f"s{i}" for i in ids]})


OPERATIONS = {
    "append": lambda t: t.append(people([100, 101, 102])),
    "update": lambda t: t.update({"x": "x * 10", "s": "s || '!'"}, "id % 2 = 0"),
    "delete": lambda t: t.delete("id < 3"),
    "upsert": lambda t: t.upsert(people([1, 2, 200], x=50)),
    "overwrite": lambda t: t.overwrite(people([1, 5, 6, 300], x=7)),
    "restore": lambda t: t.restore(version=1),
    "set_properties": lambda t: t.set_properties(snapshot_fraction=0.9),
    "merge_column": lambda t: t.append(people([400]).append_column("extra", pa.array(["e"])), schema_mode="merge"),
}
FAST_OPERATIONS = ["append", "update"]


@pytest.fixture(autouse=True)
def fast_fsync(request, monkeypatch):
    """fsync stays a fault point (FaultyStorage counts and fails it) but does no real flush: not what these check."""
    if "fsync" not in request.node.name:
        import logstore.storage

        monkeypatch.setattr(logstore.storage, "_fsync", lambda path: None)


@pytest.fixture
def template(tmp_path):
    """A store with table t at version 4; snapshot_commits=2 so the commit under test also writes a snapshot."""
    root = tmp_path / "template"
    store = logstore.init(root)
    t = store.create_table("t", people(range(6)), key="id", properties={"snapshot_commits": 2})
    t.append(people([6, 7]))
    t.update({"x": "x + 1"}, "id > 4")
    t.delete("id = 0")
    t.append(people([8]))  # version 4; snapshots at 1 and 3, so the commit under test (5) writes one too
    assert t.snapshots() == [1, 3]
    return root


def _state(root):
    t = logstore.open(root).table("t")
    return t.version, t.read().to_pylist()


def _run_case(tmp_path, template, op_name: str, sticky: bool) -> int:
    """Every N for one operation; returns how many faults were injected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # snapshot writes that fail only warn
        before = _state(template)
        clean = tmp_path / f"clean-{op_name}"
        shutil.copytree(template, clean)
        OPERATIONS[op_name](logstore.open(clean).table("t"))
        after = _state(clean)
        assert after[0] == before[0] + 1
        injected = 0
        for n in itertools.count(1):
            work = tmp_path / f"{op_name}-{'crash' if sticky else 'transient'}-{n}"
            shutil.copytree(template, work)
            integrity.forget()
            store = logstore.open(work)
            store._storage = faulty = FaultyStorage(work, n, sticky)
            acknowledged = False
            try:
                t = store.table("t")
                OPERATIONS[op_name](t)
                acknowledged = True
            except InjectedFault:
                pass
            if faulty.failed is None:  # the whole commit ran without reaching operation n: done
                assert acknowledged
                assert _state(work) == after
                shutil.rmtree(work)
                assert injected >= 10, f"only {injected} steps: the wrapper is not reaching the commit"
                print(f"[faults] {op_name} {'crash' if sticky else 'transient'}: {injected} injected faults")
                return injected
            injected += 1
            _check_after_fault(work, before, after, acknowledged, f"{op_name} N={n} ({faulty.failed}, {'crash' if sticky else 'transient'})")
            shutil.rmtree(work)
        raise AssertionError("unreachable")


def _check_after_fault(work, before, after, acknowledged: bool, label: str) -> None:
    integrity.forget()
    state = _state(work)
    assert state in (before, after), f"{label}: the table reads neither as before nor as after the commit"
    if acknowledged:
        assert state == after, f"{label}: an acknowledged commit is missing"
    t = logstore.open(work).table("t")
    t.vacuum(dry_run=False, older_than=0)  # refuses (raises) if any commit record were damaged
    # the next commit works, and everything checks out: files, checksums, every version's fingerprint, no leftovers
    t.append(people([900]), schema_mode="merge")
    assert t.version == state[0] + 1
    assert t.read().to_pylist()[-1]["id"] == 900
    age_files(work, vacuum.IN_FLIGHT_GRACE + 60)  # the failed writer's leftovers are kept while young
    t.vacuum(dry_run=False, older_than=0)
    report = t.verify(full=True)
    assert report.ok and report.unreferenced == [], f"{label}: {report.problems} {report.unreferenced}"


@pytest.mark.parametrize("op_name", FAST_OPERATIONS)
def test_fault_at_every_step_transient(tmp_path, template, op_name):
    INJECTED["faults"] += _run_case(tmp_path, template, op_name, sticky=False)


@pytest.mark.parametrize("op_name", ["delete"])
def test_fault_at_every_step_crash(tmp_path, template, op_name):
    INJECTED["faults"] += _run_case(tmp_path, template, op_name, sticky=True)


@pytest.mark.stress
@pytest.mark.parametrize("op_name", sorted(OPERATIONS))
@pytest.mark.parametrize("sticky", [False, True])
def test_fault_at_every_step_all_operations(tmp_path, template, op_name, sticky):
    INJECTED["faults"] += _run_case(tmp_path, template, op_name, sticky=sticky)


def test_fault_while_creating_a_table(tmp_path):
    """create_table: the table exists completely (version 0 with its rows) or not at all; a retry works."""
    root = tmp_path / "s"
    logstore.init(root)
    for n in itertools.count(1):
        work = tmp_path / f"create-{n}"
        shutil.copytree(root, work)
        store = logstore.open(work)
        store._storage = faulty = FaultyStorage(work, n, sticky=False)
        try:
            store.create_table("t", people(range(3)), key="id")
        except InjectedFault:
            pass
        if faulty.failed is None:
            break
        INJECTED["faults"] += 1
        clean = logstore.open(work)
        if "t" in clean.tables():
            assert clean.table("t").read().to_pylist() == people(range(3)).to_pylist()
            assert clean.table("t").verify(full=True).ok
        else:
            clean.create_table("t", people(range(3)), key="id")
            assert clean.table("t").verify(full=True).ok
        shutil.rmtree(work)


def test_commit_fsyncs_file_and_directory_before_acknowledging(tmp_path, monkeypatch):
    """Durability: the change file, the commit record and their directories are fsynced before commit returns."""
    import logstore.storage as storage_module

    store = logstore.init(tmp_path / "s")
    t = store.create_table("t", people(range(3)), key="id")
    synced = []
    monkeypatch.setattr(storage_module, "_fsync", lambda path: synced.append(str(path)))
    linked = []
    real_link = LocalStorage._link
    monkeypatch.setattr(LocalStorage, "_link", lambda self, a, b: (linked.append((str(a), str(b), len(synced))), real_link(self, a, b)))
    commit = t.append(people([10]))
    root = str(store._storage.root)
    data_links = [entry for entry in linked if "/data/" in entry[1]]
    log_links = [entry for entry in linked if "/_log/" in entry[1]]
    assert len(data_links) == 1 and len(log_links) == 1
    for source, target, synced_before in (data_links[0], log_links[0]):
        assert source in synced[:synced_before], f"{target} linked before its bytes were fsynced"
        directory = target.rsplit("/", 1)[0]
        assert directory in synced, f"directory of {target} never fsynced"
    # the record is fsynced (its directory entry) before commit returned, and after the data file's directory
    assert synced.index(f"{root}/tables/t/_log") > synced.index(f"{root}/tables/t/data")
    assert commit.version == 1


def test_new_directories_are_fsynced_in_their_parent(tmp_path, monkeypatch):
    import logstore.storage as storage_module

    store = logstore.init(tmp_path / "s")
    synced = []
    monkeypatch.setattr(storage_module, "_fsync", lambda path: synced.append(str(path)))
    store.create_table("t", people(range(3)), key="id")
    root = str(store._storage.root)
    for parent in (root, f"{root}/tables", f"{root}/tables/t"):
        assert parent in synced, f"new entry in {parent} never fsynced"
