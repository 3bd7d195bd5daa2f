"""SIGKILL loop: a child commits continuously (appends, updates, deletes, upserts, overwrites, property changes
that trigger snapshots) and is killed at random moments while committing.

After every kill: the versions are exactly 0..head with no gap; every commit the child acknowledged is there and
every version since the previous kill reads exactly as the model says; verify passes; vacuum removes the leftovers
(unreferenced change and snapshot files, staging files) and nothing else.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pytest

import logstore
from logstore import integrity, testing, vacuum

sys.path.insert(0, str(Path(__file__).parent))
import kill_child  # noqa: E402
from conftest import age_files  # noqa: E402

CHILD = str(Path(__file__).parent / "kill_child.py")
TOTALS = {"kills": 0, "acknowledged": 0, "versions_checked": 0}


class Model:
    """Rows of every version, computed incrementally from kill_child.apply."""

    def __init__(self):
        self.states = {0: kill_child.model(0)}

    def rows(self, version: int) -> list[dict]:
        while max(self.states) < version:
            v = max(self.states) + 1
            state = dict(self.states[v - 1])
            kill_child.apply(state, v)
            self.states[v] = state
        return [{"id": k, "x": x, "s": s} for k, (x, s) in sorted(self.states[version].items())]


def _acked(path: Path) -> list[int]:
    text = path.read_text() if path.exists() else ""
    return [int(line) for line in text.split("\n")[:-1] if line]  # only complete lines


def _sorted_rows(table, version):
    return sorted(table.read(version=version).to_pylist(), key=lambda r: r["id"])


def run_kill_loop(tmp_path, kills: int, seed: int, full_verify_every: int = 10) -> dict:
    root = tmp_path / "store"
    store = logstore.init(root)
    initial = [{"id": k, "x": x, "s": s} for k, (x, s) in sorted(kill_child.model(0).items())]
    store.create_table("t", pa.Table.from_pylist(initial), key="id", properties={"snapshot_commits": 5})
    ack_file = tmp_path / "acks"
    rng = random.Random(seed)
    model = Model()
    checked_up_to = 0
    stats = {"kills": 0, "acknowledged": 0, "versions_checked": 0, "leftovers_removed": 0}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")]))}
    for i in range(kills):
        before = len(_acked(ack_file))
        child = subprocess.Popen([sys.executable, CHILD, str(root), str(ack_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while len(_acked(ack_file)) <= before:  # wait until it is committing, so the kill lands mid-work
            if child.poll() is not None:
                raise AssertionError(f"child died on its own: {child.stderr.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, "child made no commit in 60 s"
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
        stats["kills"] += 1

        integrity.forget()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t = logstore.open(root).table("t")
            versions = testing.log(t).versions()
            head = versions[-1]
            assert versions == list(range(head + 1)), f"kill {i}: versions not contiguous"
            acked = _acked(ack_file)
            assert acked and max(acked) <= head, f"kill {i}: acknowledged version {max(acked)} missing (head {head})"
            # strictly increasing (a commit made just before a kill may be present without its acknowledgement)
            assert acked == sorted(set(acked)), f"kill {i}: a version was acknowledged twice or out of order"
            for v in range(checked_up_to + 1, head + 1):
                assert _sorted_rows(t, v) == model.rows(v), f"kill {i}: version {v} reads wrong"
                stats["versions_checked"] += 1
            checked_up_to = head
            report = t.verify(full=(i % full_verify_every == full_verify_every - 1))
            assert report.ok, f"kill {i}: {report.problems}"
            age_files(root, vacuum.IN_FLIGHT_GRACE + 60)  # the killed writer's leftovers are kept while an in-flight writer's could be
            cleaned = t.vacuum(dry_run=False, older_than=0)
            stats["leftovers_removed"] += len(cleaned.removals)
            after = logstore.open(root).table("t").verify()
            assert after.ok and after.unreferenced == [], f"kill {i}: after vacuum {after.problems} {after.unreferenced}"
            staging = root / "_staging"
            assert not staging.exists() or os.listdir(staging) == [], f"kill {i}: staging not cleaned"
            assert _sorted_rows(t, head) == model.rows(head)
        stats["acknowledged"] = len(set(acked))
    # at the end: every version reads right after all those kills and vacuums, and full verify passes
    t = logstore.open(root).table("t")
    for v in range(0, t.version + 1):
        assert _sorted_rows(t, v) == model.rows(v)
    assert t.verify(full=True).ok
    for key in TOTALS:
        TOTALS[key] += stats[key]
    print(f"[kill] {stats}, head version {t.version}")
    return stats


def test_kill_loop(tmp_path):
    stats = run_kill_loop(tmp_path, kills=6, seed=1)
    assert stats["kills"] == 6 and stats["acknowledged"] >= 6


@pytest.mark.stress
def test_kill_loop_stress(tmp_path):
    stats = run_kill_loop(tmp_path, kills=int(os.environ.get("LOGSTORE_KILLS", "300")), seed=2, full_verify_every=25)
    assert stats["kills"] >= 1



# --- purge and expire killed at random moments (logstore/purge.py, expiry.py) ------------------------------------

RETENTION_CHILD = str(Path(__file__).parent / "retention_child.py")


def _retention_template(root: Path) -> None:
    marker = "jane@example.org"
    rows = lambda items: pa.table({"id": pa.array([i for i, _ in items], pa.int64()), "email": [e for _, e in items]})  # noqa: E731
    t = logstore.init(root).create_table("t", rows([(i, marker if i % 5 == 0 else f"u{i}@x") for i in range(40)]), key="id", properties={"snapshot_commits": 4})
    t.update({"email": f"'{marker}'"}, "id = 3", message=f"set {marker}")
    for i in range(8):
        t.append(rows([(100 + i, marker if i % 4 == 0 else f"a{i}@x")]))
        t.update({"email": "email || '.'"}, f"id = {100 + i}")
    t.delete("id = 5")


def _all_versions(root: Path) -> list:
    t = logstore.open(root).table("t")
    out = []
    for v in range(t.version + 1):
        try:
            out.append(sorted(tuple(r.values()) for r in t.read(version=v).to_pylist()))
        except logstore.VersionExpiredError:
            out.append("expired")
    return out


def run_retention_kills(tmp_path, operation: str, kills: int, seed: int) -> int:
    import shutil

    from logstore import purge

    template = tmp_path / "template"
    _retention_template(template)
    before = _all_versions(template)
    done_root = tmp_path / "done"
    shutil.copytree(template, done_root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, RETENTION_CHILD, str(done_root), operation, str(tmp_path / "done.ready")], check=True, env=env)
    took = float((tmp_path / "done.ready").read_text().split()[-1])  # the operation alone, without start-up
    after = _all_versions(done_root)
    rng = random.Random(seed)
    interrupted = 0
    for i in range(kills):
        root = tmp_path / f"kill-{i}"
        shutil.copytree(template, root)
        ready = tmp_path / f"ready-{i}"
        child = subprocess.Popen([sys.executable, RETENTION_CHILD, str(root), operation, str(ready)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, child.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(rng.uniform(0, took))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
        finished = "done" in ready.read_text()
        interrupted += not finished
        integrity.forget()
        purge.forget()  # a new process
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            state = _all_versions(root)
            assert state == after or state == before, f"{operation} kill {i}: the versions read neither all as before nor all as after"
            if finished:
                assert state == after
            t = logstore.open(root).table("t")
            assert t.verify(full=True).ok, f"{operation} kill {i}"
            age_files(root, vacuum.IN_FLIGHT_GRACE + 60)
            t.vacuum(dry_run=False, older_than=0)
            report = logstore.open(root).table("t").verify(full=True)
            assert report.ok and report.unreferenced == [], f"{operation} kill {i}: {report.problems} {report.unreferenced}"
            if state == before:  # run it again: it completes
                import retention_child

                retention_child.run(t, operation)
                assert _all_versions(root) == after
        shutil.rmtree(root)
    print(f"[kill] {operation}: {kills} kills, {interrupted} interrupted mid-operation")
    return interrupted


@pytest.mark.parametrize("operation", ["purge", "expire"])
def test_kill_retention(tmp_path, operation):
    run_retention_kills(tmp_path, operation, kills=1, seed=3)


@pytest.mark.stress
@pytest.mark.parametrize("operation", ["purge", "expire"])
def test_kill_retention_stress(tmp_path, operation):
    assert run_retention_kills(tmp_path, operation, kills=40, seed=4) > 0
