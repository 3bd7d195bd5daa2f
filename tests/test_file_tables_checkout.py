"""File-table checkout paths (logstore/filetable.py `checkout`, blobs.py `Blobs.whole`): a file of at most a chunk is
read in one open, verified, then created under its own name in a fresh directory (O_EXCL); a larger one is streamed
under a temporary name and renamed once verified; a non-fresh checkout writes under temporary names. Whatever the
path, no file with wrong bytes is ever left under a real name, and the error names the file."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

import logstore
from logstore import blobs, filetable

sys.path.insert(0, str(Path(__file__).parent))
from test_file_tables import blob_files, folder, write  # noqa: E402

CHUNK = 64 * 1024


@pytest.fixture(autouse=True)
def _fast(no_fsync, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")


def files_of_every_kind() -> dict[str, bytes]:
    """Small and larger-than-a-chunk files, raw (random) and zstd (text) blobs, an empty one, in nested folders."""
    return {
        "small.bin": os.urandom(3000),
        "small.txt": b"some text that compresses " * 200,
        "big.bin": os.urandom(3 * CHUNK + 17),
        "big.txt": b"a longer text that compresses too " * 9000,
        "d/e/empty": b"",
        "d/run.sh": b"#!/bin/sh\necho hi\n" * 10,
        "d/big-run.bin": os.urandom(2 * CHUNK),
    }


def build(store: logstore.Store, tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, logstore.Table]:
    src = tmp_path / "src"
    write(src, files, executable={"d/run.sh", "d/big-run.bin"})
    for i, name in enumerate(sorted(files)):  # distinct mtimes, with sub-microsecond parts the rows drop
        os.utime(src / name, ns=(1_600_000_000_123_456_789 + i * 1_000_000_007, 1_600_000_000_123_456_789 + i * 1_000_000_007))
    store.add_files("f", src)
    return src, store.table("f")


def encoding_of(store: logstore.Store, t: logstore.Table, path: str) -> str:
    row = next(r for r in t.read().to_pylist() if r["path"] == path)
    found = blobs.Blobs(store._storage).find(row["sha256"])
    assert found is not None
    return found.encoding


def assert_same_files(out: Path, src: Path) -> None:
    assert folder(out) == folder(src)
    for name in folder(src):
        assert (out / name).stat().st_mtime_ns == (src / name).stat().st_mtime_ns // 1000 * 1000, name  # microseconds
    assert not [p for p in out.rglob("*") if p.name.startswith(filetable.TEMP_PREFIX)]


def test_fresh_and_overwrite_checkouts_write_bytes_modes_and_mtimes_on_every_path(store, tmp_path):
    files = files_of_every_kind()
    src, t = build(store, tmp_path, files)
    assert {encoding_of(store, t, p) for p in ("small.txt", "big.txt")} == {"zstd"}
    assert {encoding_of(store, t, p) for p in ("small.bin", "big.bin")} == {"raw"}
    fresh = tmp_path / "fresh"
    filetable.checkout(t, fresh, chunk_size=CHUNK)  # small files whole, big ones streamed
    assert_same_files(fresh, src)
    mode = (fresh / "d/run.sh").stat().st_mode
    assert mode & stat.S_IXUSR and stat.S_IMODE(mode) == stat.S_IMODE((fresh / "small.bin").stat().st_mode) | ((stat.S_IMODE((fresh / "small.bin").stat().st_mode) & 0o444) >> 2)
    # a workspace holding other contents, modes and extra files: made exactly the version
    work = tmp_path / "work"
    write(work, {name: b"old " + content[:10] for name, content in files.items()} | {"extra": b"x", "d/e/more": b"y"}, executable={"small.bin"})
    filetable.checkout(t, work, overwrite=True, chunk_size=CHUNK)
    assert_same_files(work, src)
    # the default chunk: every file here is read whole
    filetable.checkout(t, tmp_path / "whole")
    assert_same_files(tmp_path / "whole", src)


def tamper(root: Path, sha: str, how: str) -> None:
    path = next(p for p in blob_files(root) if p.name.startswith(sha))
    data = path.read_bytes()
    if how == "flipped":  # same size, one byte other
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "padded":  # stored bigger than a chunk, whatever the content's size
        path.write_bytes(data + os.urandom(2 * CHUNK))
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["flipped", "truncated", "padded", "missing"])
@pytest.mark.parametrize("victim", ["small.bin", "small.txt", "big.bin", "big.txt"])
def test_a_damaged_blob_leaves_no_file_under_its_name_in_a_fresh_checkout(store, tmp_path, victim, how):
    src, t = build(store, tmp_path, files_of_every_kind())
    rows = {r["path"]: r["sha256"] for r in t.read().to_pylist()}
    tamper(Path(store.path), rows[victim], how)
    out = tmp_path / "out"
    if how == "padded" and victim.endswith(".txt"):  # bytes after the one zstd frame are no content: still verified
        filetable.checkout(t, out, chunk_size=CHUNK)
        assert folder(out) == folder(src)
        return
    with pytest.raises(logstore.CorruptionError, match="missing" if how == "missing" else "sha256|decode") as e:
        filetable.checkout(t, out, chunk_size=CHUNK)
    assert repr(victim) in str(e.value) and e.value.version == 0
    assert not (out / victim).exists()
    written = folder(out)
    assert all(content == folder(src)[name][0] for name, (content, _) in written.items())  # nothing wrong under a name
    assert not [p for p in out.rglob("*") if p.name.startswith(filetable.TEMP_PREFIX)]


@pytest.mark.parametrize("victim", ["small.bin", "big.txt"])
def test_a_damaged_blob_leaves_the_workspace_file_as_it_was_in_an_overwrite(store, tmp_path, victim):
    src, t = build(store, tmp_path, files_of_every_kind())
    rows = {r["path"]: r["sha256"] for r in t.read().to_pylist()}
    work = tmp_path / "work"
    write(work, {victim: b"the workspace's own bytes"})
    tamper(Path(store.path), rows[victim], "flipped")
    with pytest.raises(logstore.CorruptionError, match=repr(victim).replace(".", r"\.")):
        filetable.checkout(t, work, overwrite=True, chunk_size=CHUNK)
    assert (work / victim).read_bytes() == b"the workspace's own bytes"
    assert not [p for p in work.rglob("*") if p.name.startswith(filetable.TEMP_PREFIX)]


@pytest.mark.parametrize("planted", ["file", "link"])
def test_a_file_or_link_appearing_during_a_fresh_checkout_is_not_written_through(store, tmp_path, monkeypatch, planted):
    """Another process creates a file (or a link to a file outside) where the version has one, after the checkout
    found the directory empty: it is neither overwritten nor followed (OutputExistsError naming it)."""
    src, t = build(store, tmp_path, {"a.bin": os.urandom(3000), "b.bin": os.urandom(3000)})
    sha_b = next(r["sha256"] for r in t.read().to_pylist() if r["path"] == "b.bin")
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.write_bytes(b"not to be touched")
    real_whole = blobs.Blobs.whole

    def racing_whole(self: blobs.Blobs, sha256: str, size: int) -> bytes | None:
        content = real_whole(self, sha256, size)
        if sha256 == sha_b:  # the race: after the blob was read, before the file is created
            if planted == "file":
                (out / "b.bin").write_bytes(b"someone else's file")
            else:
                (out / "b.bin").symlink_to(outside)
        return content

    monkeypatch.setattr(blobs.Blobs, "whole", racing_whole)
    with pytest.raises(logstore.OutputExistsError, match="b.bin"):
        filetable.checkout(t, out)
    assert outside.read_bytes() == b"not to be touched"
    if planted == "file":
        assert (out / "b.bin").read_bytes() == b"someone else's file"
    else:
        assert (out / "b.bin").is_symlink()


def test_whole_reads_small_blobs_and_leaves_big_ones_to_the_stream(store, tmp_path):
    files = files_of_every_kind()
    _, t = build(store, tmp_path, files)
    b = blobs.Blobs(store._storage, chunk_size=CHUNK)
    for row in t.read().to_pylist():
        content = b.whole(row["sha256"], row["size"])
        if row["size"] > CHUNK:
            assert content is None
        else:
            assert content == files[row["path"]]
    with pytest.raises(logstore.CorruptionError, match="missing"):
        b.whole("0" * 64, 10)
