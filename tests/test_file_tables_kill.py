"""A killed `add` (SIGKILL at a random moment) leaves the store as before: the table's versions are the old ones
or the old ones plus exactly the folder's new version; verify passes; vacuum removes the leftovers (blobs no version
references, staging files) and nothing a version needs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import logstore
from logstore import filetable

sys.path.insert(0, str(Path(__file__).parent))
from test_file_tables import blob_files, folder, write  # noqa: E402

from conftest import age_files  # noqa: E402

CHILD = str(Path(__file__).parent / "file_add_child.py")


def test_a_killed_add_leaves_the_store_as_before(tmp_path, no_fsync):
    rng = random.Random(15)
    store = logstore.init(tmp_path / "store")
    root = Path(store.path)
    src = tmp_path / "src"
    write(src, {f"d{i % 7}/f{i}": os.urandom(200) for i in range(50)})
    store.add_files("f", src)
    states = [folder(src)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def change(round_: int) -> None:
        write(src, {f"d{i % 7}/f{i}": (os.urandom(20_000) if i % 2 else bytes([round_]) * 30_000) for i in range(0, 300, 1 + round_ % 3)})
        write(src, {f"d{round_ % 7}/f{round_}": None} if (src / f"d{round_ % 7}/f{round_}").exists() else {})

    def start() -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, CHILD, str(root), str(src)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None
        child.stdout.readline()  # "ready": imported and opened, the add starts now
        return child

    change(6)  # one add left to finish: how long an add takes on this machine, now
    child = start()
    began = time.monotonic()
    child.communicate()
    add_seconds = time.monotonic() - began
    assert child.returncode == 0
    states.append(folder(src))
    kills = 0
    for round_ in range(6):
        change(round_)
        child = start()
        time.sleep(rng.uniform(0.0, 0.9 * add_seconds))  # a random moment within the add
        child.kill()
        out, err = child.communicate()
        kills += child.returncode == -9
        t = store.table("f")
        versions = [c.version for c in reversed(t.history())]
        assert versions == list(range(len(versions)))
        if len(versions) == len(states) + 1:  # it committed before the kill: exactly the folder
            states.append(folder(src))
        assert len(versions) == len(states), err.decode()
        for v, state in enumerate(states):
            out_dir = tmp_path / f"r{round_}-v{v}"
            t.checkout(out_dir, version=v)
            assert folder(out_dir) == state
        assert t.verify().ok
    assert kills >= 2  # most rounds were killed mid-add (not all finished first)
    # vacuum: leftovers go, every version still reads the same
    age_files(root / "blobs", filetable.BLOB_GRACE + 60)
    age_files(root / "_staging", filetable.BLOB_GRACE + 60)
    report = store.table("f").vacuum(dry_run=False, older_than=0)
    referenced = set(filetable.referenced_blobs(store.table("f")))
    assert {p.name.split(".")[0] for p in blob_files(root)} == referenced
    assert all(r.path.startswith(("blobs/", "_staging/", "tables/")) for r in report.removals)
    assert not list((root / "_staging").iterdir()) if (root / "_staging").exists() else True
    for v, state in enumerate(states):
        store.table("f").checkout(tmp_path / f"final-{v}", version=v)
        assert folder(tmp_path / f"final-{v}") == state
    assert store.table("f").verify(full=True).ok
