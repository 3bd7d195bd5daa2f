"""File tables (logstore/filetable.py, blobs.py): folders versioned as tables of files over content-addressed blobs."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import sys
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import blobs, filetable, operations
from logstore.commit import CommitInfo, commit
from logstore_cli.main import cli

sys.path.insert(0, str(Path(__file__).parent))
from conftest import age_files  # noqa: E402

DAY = dt.timedelta(days=1)
START = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fast(no_fsync, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")


def write(root: Path, files: dict[str, bytes | None], executable: set[str] = frozenset()) -> None:
    """Set files under root (None deletes one); executable names get their x bits."""
    for name, content in files.items():
        path = root / name
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        mode = 0o755 if name in executable else 0o644
        os.chmod(path, mode)


def folder(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file under root: relative path -> (bytes, executable)."""
    found = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            found[full.relative_to(root).as_posix()] = (full.read_bytes(), bool(full.stat().st_mode & stat.S_IXUSR))
    return found


def store_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def history_steps() -> list[tuple[dict[str, bytes | None], set[str]]]:
    """A folder's history: nested dirs, an empty file, binary and text, unicode names, an executable; then modify,
    delete, re-add, flip an executable bit."""
    binary = bytes(range(256)) * 40
    text = ("line of text\n" * 2000).encode()
    return [
        ({"a.txt": b"hello\n", "empty": b"", "d/bin.dat": binary, "d/e/deep.txt": text, "données/été ✓.txt": "ünïcödé\n".encode(), "run.sh": b"#!/bin/sh\necho hi\n"}, {"run.sh"}),
        ({"a.txt": b"hello again\n", "d/e/deep.txt": text + b"more\n"}, {"run.sh"}),
        ({"d/bin.dat": None, "empty": None, "new/x.bin": os.urandom(5000)}, {"run.sh"}),
        ({"d/bin.dat": binary, "a.txt": b"hello\n"}, {"run.sh"}),  # re-add, and back to an old content
        ({"run.sh": b"#!/bin/sh\necho hi\n"}, set()),  # only the executable bit changes
    ]


def build_history(store: logstore.Store, tmp_path: Path, name: str = "f") -> tuple[Path, list[dict[str, tuple[bytes, bool]]]]:
    src = tmp_path / "src"
    src.mkdir()
    expected = []
    for i, (changes, executable) in enumerate(history_steps()):
        write(src, changes, executable)
        for n in folder(src):  # keep every executable flag as the step says
            os.chmod(src / n, 0o755 if n in executable else 0o644)
        commit = store.add_files(name, src, message=f"step {i}", timestamp=START + i * DAY)
        assert commit.version == i
        store.table(name).tag(f"v{i}", i)
        expected.append(folder(src))
    return src, expected


def test_checkout_of_every_version_by_version_timestamp_and_tag_is_byte_for_byte(store, tmp_path):
    _, expected = build_history(store, tmp_path)
    t = store.table("f")
    assert t.version == len(expected) - 1
    for v, state in enumerate(expected):
        for how, kwargs in (("version", {"version": v}), ("as_of", {"as_of": START + v * DAY + dt.timedelta(hours=1)}), ("tag", {"tag": f"v{v}"})):
            out = tmp_path / f"out-{v}-{how}"
            assert t.checkout(out, **kwargs) == v
            assert folder(out) == state, (v, how)
        for path, (content, _) in state.items():
            with t.open(path, version=v) as f:
                assert f.read() == content
    # one directory moved between versions in any order, --force style: exactly each version every time
    work = tmp_path / "work"
    for v in [4, 0, 2, 1, 3, 0, 4]:
        t.checkout(work, version=v, overwrite=True)
        assert folder(work) == expected[v]
    assert {r["path"] for r in t.read(version=2).to_pylist()} == set(expected[2])
    row = t.read(version=0, where="path = 'run.sh'").to_pylist()[0]
    assert row["executable"] is True and row["size"] == len(b"#!/bin/sh\necho hi\n")


def test_rows_log_and_diff_as_for_any_table(store, tmp_path):
    build_history(store, tmp_path)
    t = store.table("f")
    assert t.key == ("path",)
    assert t.schema().names == ["path", "size", "sha256", "executable", "mtime"]
    ops = [c.operation for c in t.history()]
    assert ops == ["ADD FILES"] * 5
    d = {r["path"]: r["_change_type"] for r in t.diff(1, 2).to_pylist()}
    assert d == {"d/bin.dat": "delete", "empty": "delete", "new/x.bin": "insert"}
    d = {r["path"]: r["_change_type"] for r in t.diff(0, 1).to_pylist()}
    assert d == {"a.txt": "update", "d/e/deep.txt": "update"}
    assert [r["path"] for r in t.diff(3, 4).to_pylist()] == ["run.sh"]


def test_nothing_changed_makes_no_version_and_a_touch_alone_is_no_change(store, tmp_path):
    src = tmp_path / "src"
    write(src, {"a": b"1", "b/c": b"2"})
    store.add_files("f", src)
    assert store.add_files("f", src).version == 0
    os.utime(src / "a", (1e9, 1e9))  # mtime only
    assert store.add_files("f", src).version == 0
    write(src, {"a": b"3"})
    assert store.add_files("f", src).version == 1


def test_no_delete_keeps_missing_files(store, tmp_path):
    src = tmp_path / "src"
    write(src, {"a": b"1", "b": b"2"})
    store.add_files("f", src)
    write(src, {"a": None, "c": b"3"})
    store.add_files("f", src, delete_missing=False)
    assert sorted(r["path"] for r in store.table("f").read().to_pylist()) == ["a", "b", "c"]
    store.add_files("f", src)
    assert sorted(r["path"] for r in store.table("f").read().to_pylist()) == ["b", "c"]


def test_unchanged_files_are_not_read_again_and_check_reads_all(store, tmp_path, monkeypatch):
    src = tmp_path / "src"
    write(src, {f"f{i}": f"content {i}".encode() for i in range(20)})
    store.add_files("f", src)
    staged = []
    original = blobs.Blobs.stage
    monkeypatch.setattr(blobs.Blobs, "stage", lambda self, local, **kw: staged.append(local) or original(self, local, **kw))
    write(src, {"f3": b"changed"})
    assert store.add_files("f", src).version == 1
    assert [Path(p).name for p in staged] == ["f3"]
    # same size and mtime, other bytes: the index-like check misses it, check=True finds it
    st = os.stat(src / "f4")
    (src / "f4").write_bytes(b"CONTENT 4")
    os.utime(src / "f4", ns=(st.st_atime_ns, st.st_mtime_ns))
    staged.clear()
    assert store.add_files("f", src).version == 1
    assert staged == []
    assert store.add_files("f", src, check=True).version == 2
    assert len(staged) == 20
    with store.table("f").open("f4") as f:
        assert f.read() == b"CONTENT 4"


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file())


def test_identical_files_are_stored_once_across_paths_versions_and_tables(store, tmp_path):
    same = b"same bytes " * 1000
    src = tmp_path / "src"
    write(src, {"a": same, "b/c": same, "d": b"other"})
    store.add_files("f", src)
    write(src, {"e": same})
    store.add_files("f", src)
    store.add_files("g", src)
    root = Path(store.path)
    assert len(blob_files(root)) == 2


def test_encodings_compressible_incompressible_and_already_compressed(store, tmp_path):
    text = b"compressible text " * 5000
    noise = os.urandom(50_000)
    png_like = b"\x89PNG\r\n\x1a\n" + b"\x00" * 50_000  # compressible bytes behind a PNG signature: stored as is
    frame = zstandard.ZstdCompressor().compress(b"z" * 50_000)  # content that IS a zstd frame: must come back as is
    magic = b"\x28\xb5\x2f\xfd" + b"not a frame " * 1000
    src = tmp_path / "src"
    files = {"text": text, "noise": noise, "png": png_like, "frame.zst": frame, "magic": magic}
    write(src, files)
    store.add_files("f", src)
    t = store.table("f")
    rows = {r["path"]: r for r in t.read().to_pylist()}
    b = blobs.Blobs(store._storage)
    encodings = {name: b.find(rows[name]["sha256"]).encoding for name in files}
    assert encodings == {"text": "zstd", "noise": "raw", "png": "raw", "frame.zst": "raw", "magic": "raw"}
    zst = Path(store.path) / blobs.blob_path(rows["text"]["sha256"], "zstd")
    assert zst.stat().st_size < 0.9 * len(text)
    out = tmp_path / "out"
    t.checkout(out)
    assert {k: v for k, (v, _) in folder(out).items()} == files


def test_streaming_uses_chunks_of_the_given_size(store, tmp_path, monkeypatch):
    chunk = 64 * 1024
    big = (b"abcdefgh" * 200_000) + os.urandom(1_600_000)  # 3.2 MB: a compressible part and a random part
    src = tmp_path / "src"
    write(src, {"big": big, "small": b"x"})
    reads = []
    real_range = store._storage.read_range
    monkeypatch.setattr(store._storage, "read_range", lambda p, a, e: reads.append(e - a) or real_range(p, a, e))
    tracemalloc.start()
    try:
        filetable.add_files(store, "f", src, chunk_size=chunk)
        _, add_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        t = store.table("f")
        filetable.checkout(t, tmp_path / "out", chunk_size=chunk)
        _, checkout_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with filetable.open_file(t, "big", chunk_size=chunk) as f:
            total = 0
            while piece := f.read(10_000):
                total += len(piece)
        _, open_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(big)
    assert (tmp_path / "out" / "big").read_bytes() == big
    assert reads and max(reads) <= chunk
    # memory follows the chunk size, not the 3.2 MB file: a few chunks at most
    for peak in (add_peak, checkout_peak, open_peak):
        assert peak < 12 * chunk + 400_000, (add_peak, checkout_peak, open_peak)


def test_bad_inputs_write_nothing(store, tmp_path):
    root = Path(store.path)
    src = tmp_path / "src"
    write(src, {"a": b"1"})
    store.add_files("f", src)
    before = store_files(root)

    def refused(path, match):
        with pytest.raises(logstore.FolderInputError, match=match):
            store.add_files("f", path)
        assert store_files(root) == before
        assert not any((root / "_staging").iterdir()) if (root / "_staging").exists() else True

    refused(tmp_path / "missing", "No such file")
    refused(src / "a", "not a directory")
    write(src, {"b": b"22"})
    os.symlink(src / "b", src / "link")
    refused(src, "symbolic link")
    os.unlink(src / "link")
    os.symlink(src / "loop1", src / "loop2")
    os.symlink(src / "loop2", src / "loop1")
    refused(src, "symbolic link")
    refused(src / "loop1", "cannot add")  # the root itself a symlink loop
    os.unlink(src / "loop1")
    os.unlink(src / "loop2")
    bad = os.path.join(os.fsencode(src), b"bad-\xff.txt")
    with open(bad, "wb") as f:
        f.write(b"x")
    refused(src, "not valid UTF-8")
    os.unlink(bad)
    os.mkfifo(src / "pipe")
    refused(src, "not a regular file")
    os.unlink(src / "pipe")
    assert store.add_files("f", src).version == 1  # all good again


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_refused(store, tmp_path):
    src = tmp_path / "src"
    write(src, {"a": b"1", "secret": b"2"})
    os.chmod(src / "secret", 0)
    with pytest.raises(logstore.FolderInputError, match="cannot read"):
        store.add_files("f", src)
    assert store.tables() == []


def test_ordinary_tables_are_no_file_tables(store, tmp_path):
    store.create_table("t", pa.table({"x": [1]}))
    src = tmp_path / "src"
    write(src, {"a": b"1"})
    with pytest.raises(logstore.NotAFileTableError):
        store.add_files("t", src)
    with pytest.raises(logstore.NotAFileTableError):
        store.table("t").checkout(tmp_path / "out")
    store.add_files("f", src)
    with pytest.raises(logstore.FileNotInVersionError):
        store.table("f").open("nope")


def test_checkout_refuses_a_non_empty_directory_unless_overwrite(store, tmp_path):
    src = tmp_path / "src"
    write(src, {"a": b"1", "d/b": b"2"})
    store.add_files("f", src)
    out = tmp_path / "out"
    write(out, {"mine": b"keep?", "d": b"a file where a directory goes", "x/y/z": b"deep"})
    os.symlink("/etc/passwd", out / "link")
    with pytest.raises(logstore.OutputExistsError):
        store.table("f").checkout(out)
    assert (out / "mine").exists()
    store.table("f").checkout(out, overwrite=True)
    assert folder(out) == folder(src)
    assert sorted(p.name for p in out.iterdir()) == ["a", "d"]


def test_hostile_rows_cannot_escape_the_directory(store, tmp_path):
    src = tmp_path / "src"
    write(src, {"a": b"1"})
    store.add_files("f", src)
    t = store.table("f")
    row = t.read().to_pylist()[0]
    with pytest.raises(logstore.FileTableWriteError):  # the API refuses rows that add_files did not make
        t.upsert(pa.Table.from_pylist([{**row, "path": "../escaped"}], schema=filetable.ARROW_SCHEMA))
    # another program (or an older logstore) committing the hostile row the way add_files commits
    hostile = pa.Table.from_pylist([{**row, "path": "../escaped"}], schema=filetable.ARROW_SCHEMA)
    commit(t, filetable.OPERATION, lambda h: operations.upsert(h, hostile, merge=False), CommitInfo())
    with pytest.raises(logstore.CorruptionError, match="plain relative path"):
        t.checkout(tmp_path / "out" / "inner")
    assert not (tmp_path / "out" / "escaped").exists()


def replace_blob(root: Path, victim: str, donor: str) -> None:
    """Put the donor's valid blob file where the victim's blob is (same encoding name kept)."""
    victim_path = next(p for p in blob_files(root) if p.name.startswith(victim))
    donor_path = next(p for p in blob_files(root) if p.name.startswith(donor))
    shutil.copyfile(donor_path, victim_path)


@pytest.mark.parametrize("kind", ["raw", "zstd"])
def test_a_blob_replaced_by_another_valid_blob_is_corruption(store, tmp_path, kind):
    src = tmp_path / "src"
    if kind == "raw":
        write(src, {"a": os.urandom(3000), "b": os.urandom(3000)})
    else:
        write(src, {"a": b"aaaa " * 3000, "b": b"bbbb " * 3000})
    store.add_files("f", src)
    t = store.table("f")
    rows = {r["path"]: r["sha256"] for r in t.read().to_pylist()}
    replace_blob(Path(store.path), rows["a"], rows["b"])
    with pytest.raises(logstore.CorruptionError, match="sha256"):
        with t.open("a") as f:
            f.read()
    with pytest.raises(logstore.CorruptionError):
        t.checkout(tmp_path / "out")
    assert not (tmp_path / "out" / "a").exists()
    report = t.verify()
    assert not report.ok and any(rows["a"] in p.path for p in report.problems)
    # a missing blob: refused on open, reported by verify
    next(p for p in blob_files(Path(store.path)) if p.name.startswith(rows["b"])).unlink()
    with pytest.raises(logstore.CorruptionError, match="missing"):
        t.open("b")
    assert any(p.kind == "missing" for p in t.verify().problems)


def test_vacuum_keeps_every_needed_blob_and_removes_the_rest(store, tmp_path):
    src, expected = build_history(store, tmp_path)
    root = Path(store.path)
    needed = {p.name for p in blob_files(root)}
    b = blobs.Blobs(store._storage)
    orphan_file = tmp_path / "orphan"
    orphan_file.write_bytes(b"left by a killed add " * 100)
    orphan_path = b.publish(b.stage(str(orphan_file)))
    report = store.table("f").vacuum(dry_run=True, older_than=0)
    assert orphan_path in report.too_young  # younger than the blob grace: an in-flight add may need it
    age_files(root / "blobs", filetable.BLOB_GRACE + 60)
    report = store.table("f").vacuum(dry_run=True, older_than=0)
    assert [r.path for r in report.removals if r.path.startswith("blobs/")] == [orphan_path]
    store.table("f").vacuum(dry_run=False, older_than=0)
    assert {p.name for p in blob_files(root)} == needed
    for v, state in enumerate(expected):
        store.table("f").checkout(tmp_path / f"after-{v}", version=v)
        assert folder(tmp_path / f"after-{v}") == state
    assert store.table("f").verify(full=True).ok


def test_an_add_relying_on_an_old_unreferenced_blob_refreshes_it(store, tmp_path):
    src = tmp_path / "src"
    write(src, {"a": b"1"})
    store.add_files("f", src)
    b = blobs.Blobs(store._storage)
    content = tmp_path / "content"
    content.write_bytes(b"an orphan that a later add needs " * 50)
    orphan_path = b.publish(b.stage(str(content)))
    age_files(Path(store.path) / "blobs", filetable.BLOB_GRACE)  # old enough for vacuum to take it
    shutil.copyfile(content, src / "b")
    store.add_files("f", src)
    sha = orphan_path.rsplit("/", 1)[-1].split(".")[0]
    assert b.find(sha).modified > time.time() - 600  # written again: young for vacuum's grace
    report = store.table("f").vacuum(dry_run=False, older_than=0)
    assert not [r for r in report.removals if r.path.startswith("blobs/")]
    with store.table("f").open("b") as f:
        assert f.read() == content.read_bytes()


def test_object_store_round_trip(s3_server, s3_url, tmp_path, monkeypatch):
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(blobs, "STREAMED_PUT", 4000)  # blobs above it take the streamed (multipart) put
    store = logstore.init(s3_url)
    _, expected = build_history(store, tmp_path)
    t = store.table("f")
    for v, state in enumerate(expected):
        out = tmp_path / f"out-{v}"
        t.checkout(out, version=v)
        assert folder(out) == state
    with t.open("a.txt", version=1) as f:
        assert f.read() == b"hello again\n"
    assert t.verify(full=True).ok
    assert any(p.startswith("blobs/") for p in blobs.Blobs(store._storage).paths())


def test_push_pull_and_clone_carry_blobs(store, tmp_path):
    src, expected = build_history(store, tmp_path)
    clone = logstore.clone(store.path, tmp_path / "clone")
    t = clone.table("f")
    for v, state in enumerate(expected):
        t.checkout(tmp_path / f"c-{v}", version=v)
        assert folder(tmp_path / f"c-{v}") == state
    write(src, {"pushed.bin": os.urandom(2000)})
    clone.add_files("f", src, timestamp=START + 10 * DAY)
    clone.push()
    origin = logstore.open(store.path)
    origin.table("f").checkout(tmp_path / "o", version=5)
    assert folder(tmp_path / "o") == folder(src)
    assert origin.table("f").verify().ok


def test_clone_stops_before_the_records_when_a_blob_is_missing_at_the_source(store, tmp_path):
    src = tmp_path / "src"
    write(src, {"a": os.urandom(100), "b": os.urandom(100)})
    store.add_files("f", src)
    blob_files(Path(store.path))[0].unlink()
    with pytest.raises(logstore.CorruptionError, match="missing"):
        logstore.clone(store.path, tmp_path / "clone")
    assert logstore.open(tmp_path / "clone").tables() == []


def test_cli_add_cat_checkout_log_diff(tmp_path, cli_env, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    src = tmp_path / "src"
    write(src, {"a.txt": b"one\n", "d/b.bin": b"\x00\x01"})
    r = runner.invoke(cli, ["add", "f", "src", "-m", "first"])
    assert r.exit_code == 0, r.output
    assert "version 0" in r.output
    r = runner.invoke(cli, ["add", "f", "src"])
    assert r.exit_code == 0 and "nothing changed" in r.output
    write(src, {"a.txt": b"two\n", "d/b.bin": None})
    assert runner.invoke(cli, ["add", "f", "src", "--no-delete"]).exit_code == 0
    assert runner.invoke(cli, ["add", "f", "src"]).exit_code == 0
    r = runner.invoke(cli, ["cat", "f", "a.txt", "--version", "0"])
    assert r.exit_code == 0 and r.stdout_bytes == b"one\n"
    r = runner.invoke(cli, ["checkout", "f", "--version", "0", "-o", "v0"])
    assert r.exit_code == 0, r.output
    assert folder(tmp_path / "v0") == {"a.txt": (b"one\n", False), "d/b.bin": (b"\x00\x01", False)}
    r = runner.invoke(cli, ["checkout", "f", "-o", "v0"])
    assert r.exit_code == 1 and "--force" in r.stderr
    assert runner.invoke(cli, ["checkout", "f", "-o", "v0", "--force"]).exit_code == 0
    assert folder(tmp_path / "v0") == {"a.txt": (b"two\n", False)}
    r = runner.invoke(cli, ["diff", "f", "0", "2", "-f", "json"])
    assert r.exit_code == 0 and "d/b.bin" in r.output and "a.txt" in r.output
    r = runner.invoke(cli, ["log", "f"])
    assert r.exit_code == 0 and r.output.count("ADD FILES") == 3
    r = runner.invoke(cli, ["add", "f", "missing"])
    assert r.exit_code == 1 and "missing" in r.stderr
    r = runner.invoke(cli, ["cat", "f", "nope"])
    assert r.exit_code == 1 and "no file 'nope'" in r.stderr
    # an ordinary table's checkout still writes a data file
    runner.invoke(cli, ["create", "t", "--schema", "x BIGINT"])
    r = runner.invoke(cli, ["checkout", "t", "-o", "t.csv"])
    assert r.exit_code == 0 and (tmp_path / "t.csv").read_text().strip() == "x"


NAMES = ["a", "b", "d/c", "d/e/f", "ü/ß", "x.bin"]
CONTENTS = [b"", b"1", b"22", b"text " * 300, bytes(range(256)) * 8]
step = st.lists(
    st.tuples(st.sampled_from(NAMES), st.one_of(st.none(), st.sampled_from(CONTENTS)), st.booleans()), min_size=1, max_size=4
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(step, min_size=1, max_size=5), no_delete=st.lists(st.booleans(), min_size=5, max_size=5))
def test_model_random_folder_histories(tmp_path_factory, history, no_delete):
    """Against a model (a dict per version): every add makes a version iff the model changed, and every version
    checks out exactly as the model says."""
    base = tmp_path_factory.mktemp("model")
    store = logstore.init(base / "store")
    src = base / "src"
    src.mkdir()
    model: dict[str, tuple[bytes, bool]] = {}
    versions: list[dict[str, tuple[bytes, bool]]] = []
    for i, changes in enumerate(history):
        for name, content, executable in changes:
            path = src / name
            clash = any(n != name and (n.startswith(name + "/") or name.startswith(n + "/")) for n in folder(src))
            if content is None or clash:
                if path.is_file():
                    path.unlink()
                continue
            write(src, {name: content}, {name} if executable else set())
        current = folder(src)
        keep = no_delete[i] and versions
        expected = {**model, **current} if keep else current
        commit = store.add_files("m", src, delete_missing=not keep, timestamp=START + i * DAY)
        if not versions or expected != model:
            versions.append(expected)
        model = expected
        assert commit.version == len(versions) - 1
    t = store.table("m")
    for v, state in enumerate(versions):
        t.checkout(base / f"out-{v}", version=v)
        assert folder(base / f"out-{v}") == state
        t.checkout(base / "moving", version=v, overwrite=True)
        assert folder(base / "moving") == state
