"""An add commits only its difference and keeps the durability order: every blob's bytes fsynced before it is
linked into place, every blob directory fsynced once per add after its blobs are linked and before the commit record
that names them is published; an add whose directory sync fails commits nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import logstore
import logstore.storage
from logstore import layout
from logstore.errors import LogstoreError

sys.path.insert(0, str(Path(__file__).parent))
from test_file_tables import folder, write  # noqa: E402


class Recorder:
    """Records the fsyncs and links of LocalStorage, in order (the fsyncs themselves are skipped: only their order
    is checked here)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.root = root.resolve()
        monkeypatch.setattr(logstore.storage, "_fsync", lambda path: self.events.append(("fsync", self._rel(path), "")))
        real_link = logstore.storage.LocalStorage._link

        def link(storage: logstore.storage.LocalStorage, source: str, target: str) -> None:
            self.events.append(("link", self._rel(target), self._rel(source)))
            real_link(storage, source, target)

        monkeypatch.setattr(logstore.storage.LocalStorage, "_link", link)

    def _rel(self, path: object) -> str:
        p = Path(os.fspath(path)).resolve()  # type: ignore[arg-type]
        return p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else str(p)

    def index(self, kind: str, path: str) -> list[int]:
        return [i for i, (k, p, _) in enumerate(self.events) if k == kind and p == path]


def test_blob_directories_are_synced_once_each_before_the_record(tmp_path, monkeypatch):
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {"seed": b"first version"})
    store.add_files("f", src)
    rec = Recorder(monkeypatch, Path(store.path))
    write(src, {f"d{i % 5}/f{i}": os.urandom(300 + i) for i in range(400)})  # 400 blobs in at most 256 directories
    version = store.add_files("f", src).version
    assert version == 1
    record_name = "/_log/" + layout.log_name(1)
    record = [i for i, (k, p, _) in enumerate(rec.events) if k == "link" and p.endswith(record_name)]
    assert len(record) == 1
    blob_links = [(i, p, source) for i, (k, p, source) in enumerate(rec.events) if k == "link" and p.startswith("blobs/")]
    assert len(blob_links) == 400
    directories = {p.rsplit("/", 1)[0] for _, p, _ in blob_links}
    assert len(directories) < 400  # several blobs share a directory: one sync serves them all
    for i, path, source in blob_links:
        assert any(j < i for j in rec.index("fsync", source)), f"{path}'s bytes were not fsynced before it was linked"
        syncs = rec.index("fsync", path.rsplit("/", 1)[0])
        assert len(syncs) == 1, f"{path}'s directory was fsynced {len(syncs)} times"
        assert i < syncs[0] < record[0], f"{path}'s directory entry was not durable before the record naming it"
    # the rows name exactly those blobs
    assert {r["sha256"] for r in store.table("f").read().to_pylist() if r["path"] != "seed"} == {p.rsplit("/", 1)[1].split(".")[0] for _, p, _ in blob_links}


def test_an_add_whose_directory_sync_fails_commits_nothing(tmp_path, monkeypatch, no_fsync):
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {"a": b"one", "b/c": b"two"})
    store.add_files("f", src)
    before = folder(src)
    write(src, {"a": b"changed", "b/new": os.urandom(1000), "b/c": None})

    def failing(self: logstore.storage.LocalStorage, paths: object) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(logstore.storage.LocalStorage, "sync_directories", failing)
        with pytest.raises(OSError):
            store.add_files("f", src)
    t = store.table("f")
    assert t.version == 0  # no record names a blob whose directory entry may not be durable
    t.checkout(tmp_path / "v0", version=0)
    assert folder(tmp_path / "v0") == before
    assert t.verify().ok
    assert store.add_files("f", src).version == 1  # the same add, again: now it commits
    t.checkout(tmp_path / "v1", version=1)
    assert folder(tmp_path / "v1") == folder(src)


def test_an_add_commits_only_its_difference(tmp_path, no_fsync):
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {f"f{i:03d}": bytes([i]) * 100 for i in range(200)} | {"x.sh": b"#!/bin/sh\n"})
    store.add_files("f", src)
    t = store.table("f")
    ids_before = {r["path"]: r for r in t.read().to_pylist()}
    write(src, {"f000": b"new bytes", "f001": None, "f002": None, "new/one": b"1"})
    os.chmod(src / "x.sh", 0o755)  # executable bit alone
    os.utime(src / "f003", (1e9, 1e9))  # mtime alone: recorded along with the real changes
    c = store.add_files("f", src)
    assert (c.rows_inserted, c.rows_updated, c.rows_deleted) == (1, 3, 2)
    changes = {r["path"]: r["_change_type"] for r in t.diff(0, 1).to_pylist()}
    assert changes == {"f000": "update", "f001": "delete", "f002": "delete", "new/one": "insert", "x.sh": "update", "f003": "update"}
    rows = {r["path"]: r for r in t.read().to_pylist()}
    assert set(rows) == set(ids_before) - {"f001", "f002"} | {"new/one"}
    assert rows["x.sh"]["executable"] and rows["x.sh"]["sha256"] == ids_before["x.sh"]["sha256"]
    assert rows["f003"]["mtime"] != ids_before["f003"]["mtime"] and rows["f003"]["sha256"] == ids_before["f003"]["sha256"]
    t.checkout(tmp_path / "out", version=1)
    assert folder(tmp_path / "out") == folder(src)
    # the change file holds the changed rows only, not the folder's 200
    assert sum(f.rows for f in t._log.read(1).files) == 6
    with pytest.raises(LogstoreError):
        store.add_files("f", tmp_path / "missing")
    assert t.version == 1
