"""Weights & Biases (logstore/integrations/wandb.py) in offline mode: the artifact is read back from the run's own
transaction log (the .wandb file in the offline run directory); no server, no mock."""

from __future__ import annotations

import bisect
import re
import shutil
import struct
from pathlib import Path

import pytest

wandb = pytest.importorskip("wandb")

import logstore  # noqa: E402
from logstore.integrations import wandb as lw  # noqa: E402

from conftest import age_files, people  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch, no_fsync):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")


def events(store):
    t = store.create_table("events", people(range(6)), key="id")
    t.update(set={"score": "score * 2"}, where="id > 3")
    t.tag("v1.0")
    t.append(people([9]))
    return t


def test_use_version_in_a_run_then_load_it_after_the_table_changed(store, tmp_path):
    t = events(store)
    labels = store.create_table("labels", people(range(2)))
    run = wandb.init(project="lineage-test", dir=tmp_path)
    assert run.offline
    artifact = lw.use_version(run, t, tag="v1.0")
    lw.use_version(run, labels)
    run_dir = Path(run.dir).parent
    run.finish()
    expected = t.read(tag="v1.0")
    t.delete(where="id < 4")
    t.append(people([40]))
    t.compact()
    age_files(store._storage.root, 7200)
    t.vacuum(dry_run=False, older_than=0)

    assert artifact.type == "dataset" and artifact.name.startswith("events")
    assert lw.load_version(run_dir, "events", timeout=30).equals(expected)  # waits if the log is not flushed yet
    assert lw.load_version(str(run_dir / "files"), "labels").equals(labels.read())  # run.dir works too
    (log,) = run_dir.glob("*.wandb")
    assert lw.load_version(log, "events").equals(expected)
    recorded = lw.logged_versions(run_dir)
    assert recorded[0] == {
        "logstore_uri": t.uri(version=1),
        "fingerprint": t.fingerprint(version=1),
        "num_rows": 6,
        "table": "events",
        "version": 1,
        "used_as": "input",
    }
    assert [m["table"] for m in recorded] == ["events", "labels"]
    with pytest.raises(logstore.RunInputNotFoundError, match="several"):
        lw.load_version(run_dir, timeout=0)
    with pytest.raises(logstore.RunInputNotFoundError, match="no logstore input named 'nope'"):
        lw.load_version(run_dir, "nope", timeout=0)
    # the artifact object itself (what wandb.Api().artifact(...) gives online) carries the URI in its metadata
    assert lw.load_version(artifact).equals(expected)
    assert [e.ref for e in artifact.manifest.entries.values()] == [t.uri(version=1)]
    # the store moved: say where it is now
    moved = tmp_path / "moved"
    shutil.copytree(store._storage.root, moved)
    shutil.rmtree(store._storage.root)
    with pytest.raises(logstore.StoreNotFoundError):
        lw.load_version(run_dir, "events")
    assert lw.load_version(run_dir, "events", store=moved).equals(expected)


def test_a_torn_log_reads_as_far_as_it_is_complete(store, tmp_path):
    """A .wandb file cut anywhere (as while the W&B service is still writing it) never fails to parse; a damaged
    header is refused."""
    t = events(store)
    run = wandb.init(project="lineage-test", dir=tmp_path)
    lw.use_version(run, t, version=0)
    run_dir = Path(run.dir).parent
    run.finish()
    (log,) = run_dir.glob("*.wandb")
    lw.load_version(run_dir, timeout=30)  # the complete log (waits if the service has not flushed it yet)
    data = log.read_bytes()
    torn = tmp_path / "torn.wandb"
    seen = []
    for cut in range(0, len(data), max(1, len(data) // 200)):
        torn.write_bytes(data[:cut])
        seen.append(len(lw.logged_versions(torn)))
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] in (0, 1)
    first = bisect.bisect_left(range(len(data) + 1), True, key=lambda cut: bool(lw.logged_versions(_cut(torn, data, cut))))
    _cut(torn, data, first - 1)  # the artifact record lacks its last byte, and the exit record is not there yet
    assert lw._scan(torn) == ([], False)
    with pytest.raises(logstore.RunInputNotFoundError):
        lw.load_version(torn, timeout=0.2)  # waited for it, in vain
    _cut(torn, data, first)
    assert lw._scan(torn)[1] is False and lw.load_version(torn, timeout=0).equals(t.read(version=0))
    torn.write_bytes(struct.pack("<4sHB", b"XXXX", 1, 0) + data[7:])
    with pytest.raises(logstore.CorruptionError, match="not a W&B transaction log"):
        lw.logged_versions(torn)


def _cut(path: Path, data: bytes, length: int) -> Path:
    path.write_bytes(data[:length])
    return path


def test_the_readme_example(tmp_path, monkeypatch):
    text = README.read_text()
    section = text.split("## Which data did this model see?", 1)[1].split("\n## ", 1)[0]
    block = next(b for b in re.findall(r"^```py\n(.*?)^```", section, flags=re.S | re.M) if "integrations import wandb" in b)
    monkeypatch.chdir(tmp_path)
    namespace = {"logstore": logstore, "events": events(logstore.init("my-store"))}
    exec(block, namespace)
    assert namespace["seen"].equals(namespace["events"].read(tag="v1.0"))
