"""Fault injection (tests/test_faults.py's FaultyStorage) for purge and expire: fail the Nth storage operation.

After each injected failure (transient: only that operation fails; crash: every later one does too), a clean reader
must see every version of the table exactly as before the operation or exactly as after it (for a purge: all
versions purged or none, never some; for expire: all expired or none), verify must pass, vacuum must clear the
leftovers, and the next purge or commit must work. The default run samples the steps; the stress variant tries
every one.
"""

from __future__ import annotations

import itertools
import shutil
import warnings

import pyarrow as pa
import pytest
from test_faults import FaultyStorage, InjectedFault

import logstore
from logstore import integrity, purge, vacuum

from conftest import age_files

MARKER = "jane@example.org"


@pytest.fixture(autouse=True)
def fast_fsync(monkeypatch):
    import logstore.storage

    monkeypatch.setattr(logstore.storage, "_fsync", lambda path: None)


def rows(items):
    return pa.table({"id": pa.array([i for i, _ in items], pa.int64()), "email": [e for _, e in items]})


@pytest.fixture
def template(tmp_path):
    """Table t: the marker inserted, updated to, deleted and re-inserted; a snapshot, a compacted block, a tag."""
    root = tmp_path / "template"
    t = logstore.init(root).create_table("t", rows([(1, "a@x"), (2, MARKER), (3, "c@x")]), key="id", properties={"snapshot_commits": 4})
    t.update({"email": f"'{MARKER}'"}, "id = 3", message=f"set {MARKER}")
    t.delete("id = 2")
    t.upsert(rows([(2, MARKER)]))
    for i in range(8):
        t.append(rows([(10 + i, f"u{i}@x")]))
    t.tag("v")
    return root


OPERATIONS = {
    "purge": lambda t: t.purge(where=f"email = '{MARKER}'"),
    "expire": lambda t: t.expire(keep_last=3),
}


def _state(root):
    t = logstore.open(root).table("t")
    out = []
    for v in range(t.version + 1):
        try:
            out.append(sorted(tuple(r.values()) for r in t.read(version=v).to_pylist()))
        except logstore.VersionExpiredError:
            out.append("expired")
    return out


def _same_history(state, expected) -> bool:
    """`state` reads as `expected` for every version `expected` has (later versions are the operation's own)."""
    return state[: len(expected)] == expected


def _run(tmp_path, template, op: str, sticky: bool, stride: int) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        purge.forget()
        before = _state(template)
        clean = tmp_path / f"clean-{op}"
        shutil.copytree(template, clean)
        OPERATIONS[op](logstore.open(clean).table("t"))
        after = _state(clean)
        injected = 0
        for n in itertools.count(1, stride):
            work = tmp_path / f"{op}-{sticky}-{n}"
            shutil.copytree(template, work)
            integrity.forget()
            purge.forget()
            store = logstore.open(work)
            store._storage = faulty = FaultyStorage(work, n, sticky)
            acknowledged = False
            try:
                OPERATIONS[op](store.table("t"))
                acknowledged = True
            except InjectedFault:
                pass
            if faulty.failed is None:
                assert acknowledged and _state(work) == after
                assert injected >= 2
                return injected
            injected += 1
            _check(work, op, before, after, acknowledged, f"{op} N={n} ({faulty.failed}, {'crash' if sticky else 'transient'})")
            shutil.rmtree(work)
    raise AssertionError("unreachable")


def _check(work, op: str, before, after, acknowledged: bool, label: str) -> None:
    integrity.forget()
    purge.forget()  # a new process
    state = _state(work)
    assert state == after or _same_history(state, before) and len(state) == len(before), f"{label}: neither before nor after"
    if acknowledged:
        assert state == after, f"{label}: acknowledged but not done"
    t = logstore.open(work).table("t")
    t.vacuum(dry_run=False, older_than=0)
    t.append(rows([(900, "later@x")]))
    age_files(work, vacuum.IN_FLIGHT_GRACE + 60)
    t.vacuum(dry_run=False, older_than=0)
    report = t.verify(full=True)
    assert report.ok and report.unreferenced == [], f"{label}: {report.problems} {report.unreferenced}"
    if state == after or op != "purge":
        return
    t.purge(where=f"email = '{MARKER}'")  # a purge that failed can be run again, with the same result
    assert _state(work)[: len(before)] == after[: len(before)], f"{label}: the purge run again differs"
    assert t.verify(full=True).ok


@pytest.mark.parametrize(("op", "sticky", "stride"), [("purge", True, 37), ("purge", False, 53), ("expire", True, 41)])
def test_faults_sampled(tmp_path, template, op, sticky, stride):
    _run(tmp_path, template, op, sticky, stride=stride)


@pytest.mark.stress
@pytest.mark.parametrize("op", sorted(OPERATIONS))
@pytest.mark.parametrize("sticky", [False, True])
def test_faults_every_step(tmp_path, template, op, sticky):
    _run(tmp_path, template, op, sticky, stride=1)
