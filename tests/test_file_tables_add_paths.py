"""The paths that make an add cheap (filetable.py, blobs.py), each checked against what it replaces:
  - the change rows and fingerprint sums built from the head's rows in memory equal the general upsert + delete's;
  - the head's rows kept between adds of one process are used only while the head is the version they are the rows
    of (another writer's commit, a restore, a commit racing the add: read again, or the general operations);
  - a small file is read in one read and compressed once; one that grew or changed while it was read is refused;
  - the blob directories are fsynced in parallel: one failing sync commits nothing;
  - the kept thread pool works in a forked child."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

import logstore
import logstore.storage
from logstore import blobs, filetable, fingerprint

sys.path.insert(0, str(Path(__file__).parent))
from test_file_tables import folder, write  # noqa: E402


@pytest.fixture(autouse=True)
def _fast(no_fsync, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")
    filetable._known_heads.clear()


def checked_out(table, tmp_path: Path, version: int) -> dict:
    out = tmp_path / f"out-{version}-{os.urandom(4).hex()}"
    table.checkout(out, version=version)
    return folder(out)


def test_change_rows_from_known_rows_equal_the_general_operations(tmp_path, monkeypatch):
    compared: list[int] = []
    real = filetable._known_changes

    def checked(head, known, batch, deleted):
        made = real(head, known, batch, deleted)
        general = filetable._diff(batch, deleted)(head)
        assert made.changes.rows.equals(general.rows)  # same row ids, operations, values, order
        assert made.changes.next_row_id == general.next_row_id
        assert made.changes.columns == general.columns
        expected = fingerprint.advance(0, head, general.rows, general.columns)
        assert fingerprint.advance(0, head, made.changes.rows, made.changes.columns, old_hash=made.changes.old_hash, new_hash=made.changes.new_hash) == expected
        compared.append(made.changes.rows.num_rows)
        return made

    monkeypatch.setattr(filetable, "_known_changes", checked)
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {f"d{i % 3}/f{i}": bytes([i]) * (i + 1) for i in range(30)} | {"ünï/ç ode.txt": b"x" * 100})
    store.add_files("f", src)
    states = [folder(src)]
    steps = [
        lambda: write(src, {"d0/f0": b"changed", "new/a": b"new", "new/b": os.urandom(5000)}),
        lambda: write(src, {"d1/f1": None, "d2/f2": None, "d0/f3": b"changed too"}),
        lambda: (os.chmod(src / "d0/f6", 0o755), os.utime(src / "d1/f7", (1e9, 1e9)), write(src, {"d1/f4": b"4"})),
        lambda: write(src, {"d1/f1": b"back again: a new row id", "ünï/ç ode.txt": None}),
        lambda: write(src, {f"d{i % 3}/f{i}": None for i in range(8, 30)}),
        lambda: write(src, {f"bulk/{i}": os.urandom(100 + i) for i in range(40)}),
    ]
    t = store.table("f")
    for step in steps:
        step()
        store.add_files("f", src)
        states.append(folder(src))
    assert len(compared) == len(steps)  # every add after the first built its rows from the known rows
    for v, state in enumerate(states):
        assert checked_out(t, tmp_path, v) == state
    report = t.verify(full=True)
    assert report.ok and report.versions_checked == len(states)
    # the recorded fingerprint is the content's, recounted from the files
    assert t._log.read(t.version).fingerprint == fingerprint.encode(fingerprint.of_plan(store._connection(), t._head().plan))


def test_known_rows_are_used_only_while_the_head_is_their_version(tmp_path, monkeypatch):
    reads: list[int] = []
    real_read = filetable.HeadRows.read

    def counted(head):
        reads.append(head.record.version)
        return real_read(head)

    monkeypatch.setattr(filetable.HeadRows, "read", staticmethod(counted))
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {f"f{i}": bytes([i]) * 10 for i in range(10)})
    store.add_files("f", src)
    t = store.table("f")
    for i in range(3):
        write(src, {f"f{i}": b"v%d" % i})
        store.add_files("f", src)
    assert reads == []  # never read: each add built on the rows the previous one committed (version 0 too)
    # another writer's commit (a restore; another process's add alike): the head is another version, read again
    t.restore(version=1)
    write(src, {"f9": b"after the restore"})
    store.add_files("f", src)
    assert reads == [4]  # version 4: the restore
    assert checked_out(t, tmp_path, t.version) == folder(src)
    # the same version number with other content (the store re-created at the same path): read again
    store2 = logstore.init(tmp_path / "store2")
    other = tmp_path / "other"
    write(other, {"only": b"one"})
    store2.add_files("f", other)
    write(other, {"two": b"2"})
    store2.add_files("f", other)
    shutil.rmtree(tmp_path / "store2")
    store2 = logstore.init(tmp_path / "store2")
    write(other, {"only": None})
    store2.add_files("f", other)  # version 0 of a new table: nothing known
    write(other, {"three": b"3"})
    store2.add_files("f", other)
    assert checked_out(store2.table("f"), tmp_path, 1) == folder(other)
    assert store2.table("f").verify(full=True).ok


def test_an_add_racing_another_writer_commits_by_the_general_operations(tmp_path, monkeypatch):
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {f"f{i}": bytes([i]) * 10 for i in range(10)})
    store.add_files("f", src)
    write(src, {"f1": b"one"})
    store.add_files("f", src)  # the rows of version 1 are known now
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere, folder_bytes(src) | {"other": b"the other writer's file"})
    real = filetable._store_contents
    raced: list[int] = []

    def racing(*args, **kwargs):
        result = real(*args, **kwargs)
        if not raced:  # another writer commits after this add read the head
            raced.append(-1)
            raced[0] = logstore.open(store.path).add_files("f", elsewhere).version
        return result

    monkeypatch.setattr(filetable, "_store_contents", racing)
    used: list[str] = []
    real_known, real_diff = filetable._known_changes, filetable._diff
    monkeypatch.setattr(filetable, "_known_changes", lambda *a: used.append("known") or real_known(*a))
    monkeypatch.setattr(filetable, "_diff", lambda *a: used.append("general") or real_diff(*a))
    write(src, {"f2": b"two", "f3": None})
    c = store.add_files("f", src)
    t = store.table("f")
    assert raced == [2] and c.version == 3
    # the other writer built on the known rows of version 1; this add too, lost the race, and ran the general
    # operations against the new head
    assert used == ["known", "known", "general"]
    assert checked_out(t, tmp_path, 3) == folder(src) | {"other": (b"the other writer's file", False)}
    write(src, {"f4": b"four"})
    store.add_files("f", src)  # deletes "other": the rows were read again, not taken from before the race
    assert checked_out(t, tmp_path, 4) == folder(src)
    assert t.verify(full=True).ok


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {p: content for p, (content, _) in folder(root).items()}


def test_small_files_are_read_once_and_compressed_once(tmp_path, monkeypatch):
    monkeypatch.setattr(blobs, "_worth_compressing", lambda first: pytest.fail("a small file was given a compression trial"))
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    text = b"the same line of text, again and again\n" * 2000
    half = os.urandom(40_000) + b"z" * 40_000  # its first part does not compress, the whole does by half
    write(src, {"text": text, "random": os.urandom(50_000), "half": half, "tiny": b"abc", "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 5000})
    store.add_files("f", src)
    stored = {p.name for p in (Path(store.path) / "blobs").rglob("*") if p.is_file()}
    rows = {r["path"]: r["sha256"] for r in store.table("f").read().to_pylist()}
    assert rows["text"] + ".zst" in stored and rows["half"] + ".zst" in stored
    assert {rows["random"], rows["tiny"], rows["png"]} <= stored  # stored as they are
    assert checked_out(store.table("f"), tmp_path, 0) == folder(src)


@pytest.mark.parametrize("chunk_size", [None, 1000])  # one read of a small file; the chunked read of a large one
def test_a_file_that_grows_while_it_is_added_is_refused(tmp_path, monkeypatch, chunk_size):
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {"a": b"first", "b": b"x" * 5000})
    store.add_files("f", src)
    before = sorted(p.relative_to(store.path).as_posix() for p in Path(store.path).rglob("*") if p.is_file() and "_staging" not in p.parts)
    write(src, {"b": b"y" * 5000})
    real_scan = filetable.scan

    def scan_then_grow(root):
        listing = real_scan(root)
        with open(src / "b", "ab") as f:
            f.write(b"more bytes written after the listing")
        return listing

    monkeypatch.setattr(filetable, "scan", scan_then_grow)
    with pytest.raises(logstore.FolderInputError, match="changed while it was being added"):
        filetable.add_files(store, "f", src, chunk_size=chunk_size)
    t = store.table("f")
    assert t.version == 0
    after = sorted(p.relative_to(store.path).as_posix() for p in Path(store.path).rglob("*") if p.is_file() and "_staging" not in p.parts)
    assert after == before  # no blob, no record
    monkeypatch.setattr(filetable, "scan", real_scan)
    filetable.add_files(store, "f", src, chunk_size=chunk_size)
    assert checked_out(t, tmp_path, 1) == folder(src)


def test_one_failing_directory_sync_among_many_commits_nothing(tmp_path, monkeypatch):
    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    write(src, {"seed": b"seed"})
    store.add_files("f", src)
    write(src, {f"f{i}": os.urandom(100) for i in range(60)})  # blobs in many directories, synced in parallel
    real = logstore.storage.LocalStorage.sync_directories
    synced: list[str] = []

    def one_fails(self, paths):
        directory = paths[0].rsplit("/", 1)[0]
        synced.append(directory)
        if len(synced) == 3:
            raise OSError(5, "Input/output error")
        real(self, paths)

    monkeypatch.setattr(logstore.storage.LocalStorage, "sync_directories", one_fails)
    with pytest.raises(OSError):
        store.add_files("f", src)
    assert len(synced) == len(set(synced)) > 3  # one call per directory, and the others still ran
    t = store.table("f")
    assert t.version == 0 and t.verify().ok
    monkeypatch.setattr(logstore.storage.LocalStorage, "sync_directories", real)
    assert store.add_files("f", src).version == 1
    assert checked_out(t, tmp_path, 1) == folder(src)


def test_the_kept_pool_works_in_a_forked_child(tmp_path):
    done: list[int] = []
    filetable._run_all([lambda: done.append(1), lambda: done.append(2)])
    assert sorted(done) == [1, 2]
    marker = tmp_path / "child-ran"
    pid = os.fork()
    if pid == 0:  # the parent's pool threads do not exist here: the child must start its own
        signal.alarm(20)  # a child waiting on a pool without threads dies instead of hanging the suite
        try:
            filetable._run_all([lambda: marker.write_text("ok")])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert marker.read_text() == "ok"


def test_the_listing_opens_each_directory_by_its_descriptor_without_following_links(tmp_path):
    src = tmp_path / "src"
    write(src, {"a/b/c": b"1", "a/d": b"2", "e": b"3"})
    listing = filetable.scan(src)
    assert sorted(listing.paths) == ["a/b/c", "a/d", "e"]
    assert listing.sizes[listing.paths.index("a/b/c")] == 1
    # a directory replaced by a link to another one after it was listed is not followed
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", src / "link")
    parent = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(logstore.FolderInputError, match="cannot list"):
            filetable._open_dir(str(src / "link"), parent, "link")
    finally:
        os.close(parent)
    with pytest.raises(logstore.FolderInputError, match="symbolic link"):
        filetable.scan(src)
    os.unlink(src / "link")
    os.mkfifo(src / "a" / "fifo")
    with pytest.raises(logstore.FolderInputError, match="not a regular file or directory") as e:
        filetable.scan(src)
    assert str(src / "a" / "fifo") in str(e.value)


def test_a_small_blob_read_whole_is_still_checked(tmp_path):
    """A blob of at most a chunk is read in one read and decompressed at once: a frame inflating to more than its
    row's size (or saying so), other content, or a damaged frame is refused as in the chunked read."""
    import tracemalloc

    import zstandard

    store = logstore.init(tmp_path / "store")
    src = tmp_path / "src"
    text = b"some text that compresses well " * 400
    write(src, {"a.txt": text})
    store.add_files("f", src)
    t = store.table("f")
    sha = t.read().to_pylist()[0]["sha256"]
    blob = Path(store.path) / blobs.blob_path(sha, blobs.ZSTD)
    original = blob.read_bytes()
    bomb = zstandard.ZstdCompressor().compress(b"\0" * 200_000_000)  # ~6 KB saying 200 MB
    other = zstandard.ZstdCompressor().compressobj()
    unsized = other.compress(text + b"and more") + other.flush()  # no content size in the frame: inflates past the row's
    for stored, reason in ((bomb, "is not the"), (unsized, "is not the"), (original[:-5], "does not decode|is not the"), (b"\x28\xb5\x2f\xfd" + b"\xff" * 40, "does not decode")):
        blob.write_bytes(stored)
        tracemalloc.start()
        try:
            with pytest.raises(logstore.CorruptionError, match=reason):
                t.checkout(tmp_path / f"out-{os.urandom(4).hex()}")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 50_000_000  # the 200 MB the bomb claims were never allocated
        report = store.table("f").verify(full=True)
        assert not report.ok and any(re.search(reason, p.message) for p in report.problems), report.problems
    blob.write_bytes(original)
    assert checked_out(t, tmp_path, 0) == folder(src) and store.table("f").verify(full=True).ok
