"""Features of one session meeting each other: schema evolution under fragments and purge, expiry under file tables.

Each feature has its own tests; these are the places where one feature's code reads what another wrote (a file
written before a rename read by a fragment, a purge hashing images of a file written before an ALTER, the blob
vacuum and verify of a file table whose early versions expired)."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pyarrow as pa
import pytest

import logstore


@pytest.fixture
def evolved(store):
    t = store.create_table(
        "ev", pa.table({"id": list(range(50)), "qty": [i * 1.0 for i in range(50)], "email": [f"u{i}@x.org" for i in range(50)]}), key="id"
    )
    t.update(set={"qty": "qty + 1"}, where="id < 10")  # 1
    t.alter(rename={"qty": "quantity"})  # 2
    t.append(pa.table({"id": [50, 51], "quantity": [5.0, 6.0], "email": ["a@x.org", "b@x.org"]}))  # 3
    t.alter(drop="email", add="note VARCHAR DEFAULT 'n'")  # 4
    return t


def test_fragments_read_files_written_before_a_schema_change_by_column_identity(evolved):
    for v in range(evolved.version + 1):
        expected = evolved.read(version=v)
        pieces = [pickle.loads(pickle.dumps(f)).to_arrow() for f in evolved.fragments(version=v)]
        assert pa.concat_tables(pieces).equals(expected), v
        assert expected.column(1).null_count == 0  # the renamed column has its values, not NULLs
    assert evolved.read().column("note").to_pylist() == ["n"] * 52


def test_purge_after_alter_keeps_every_fingerprint_and_expire_can_snapshot(evolved):
    evolved.purge(where="quantity = 5.0")
    assert evolved.verify(full=True).problems == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # expire snapshots the cut-off version; a fingerprint mismatch would warn
        evolved.expire(keep_last=1)
    assert 50 not in evolved.read().column("id").to_pylist()


def test_file_table_with_expired_versions_vacuums_and_verifies(store, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.txt").write_text(f"content {i} " * 50)
    store.add_files("docs", folder)  # 0
    (folder / "f0.txt").write_text("changed " * 50)
    store.add_files("docs", folder)  # 1
    (folder / "f1.txt").unlink()
    store.add_files("docs", folder)  # 2
    t = store.table("docs")
    t.expire(keep_last=1)
    t.vacuum(dry_run=False, older_than=0)
    assert t.verify(full=True).problems == []
    out = tmp_path / "out"
    t.checkout(out)
    assert sorted(p.name for p in out.iterdir()) == ["f0.txt", "f2.txt"]
    assert (out / "f0.txt").read_text() == "changed " * 50
    with pytest.raises(logstore.VersionExpiredError):
        t.read(version=0)


def test_push_after_a_purge_names_the_rewrite_and_sends_nothing(store, tmp_path):
    t = store.create_table("ev", pa.table({"id": list(range(20)), "email": [f"user{i}@secret.org" for i in range(20)]}), key="id")
    remote = logstore.init(tmp_path / "remote")
    store.add_remote("origin", str(tmp_path / "remote"))
    store.push("origin")
    t.purge(where="email = 'user1@secret.org'")
    with pytest.raises(logstore.DivergedError, match="rewrote this commit's record"):
        store.push("origin")
    assert remote.table("ev").version == 0 and remote.table("ev").read().num_rows == 20


@pytest.mark.parametrize(
    "write",
    [
        lambda t: t.alter(rename={"sha256": "h"}),
        lambda t: t.update(set={"size": "size + 1"}, where="true"),
        lambda t: t.delete(where="true"),
        lambda t: t.append(pa.table({"path": ["x"], "size": [1], "sha256": ["00" * 32], "executable": [False], "mtime": [None]})),
        lambda t: t.merge(pa.table({"path": ["a.txt"], "size": [9]}), on="path").when_matched_update_all().execute(),
    ],
    ids=["alter", "update", "delete", "append", "merge"],
)
def test_a_file_table_refuses_writes_of_rows_from_elsewhere(store, tmp_path, write):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.txt").write_text("hello")
    store.add_files("docs", tmp_path / "f")
    t = store.table("docs")
    with pytest.raises(logstore.FileTableWriteError, match="file table"):
        write(t)
    assert t.version == 0
    t.checkout(tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_text() == "hello"


def test_push_of_an_altered_table_raises_a_format_3_remote_to_format_4(store, tmp_path):
    remote_path = tmp_path / "remote"
    logstore.init(remote_path)
    (remote_path / "logstore.json").write_text('{"format": "logstore", "format_version": 3}')  # made by an older logstore
    t = store.create_table("ev", pa.table({"id": [1, 2], "qty": [1.0, 2.0]}), key="id")
    t.alter(rename={"qty": "quantity"})
    store.add_remote("origin", str(remote_path))
    store.push("origin")
    assert json.loads((remote_path / "logstore.json").read_text())["format_version"] >= 4  # the source's (5 since format 5)
    assert logstore.open(remote_path).table("ev").read(version=0).column_names == ["id", "qty"]


def test_purging_a_file_deletes_its_blob_at_once_unless_another_file_holds_the_content(store, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    secret = b"the secret document " * 200
    (folder / "secret.txt").write_bytes(secret)
    (folder / "public.txt").write_bytes(b"public " * 200)
    store.add_files("docs", folder)  # 0
    (folder / "secret.txt").unlink()
    (folder / "other.txt").write_bytes(b"other " * 200)
    store.add_files("docs", folder)  # 1: secret.txt gone from the folder, still in version 0
    shared = tmp_path / "g"
    shared.mkdir()
    (shared / "copy.txt").write_bytes(b"public " * 200)  # the same content in another file table
    store.add_files("more", shared)
    t = store.table("docs")
    public = {r["path"]: r["sha256"] for r in t.read(version=0).to_pylist()}
    t.purge(where="path = 'secret.txt'")
    blob_names = {p.name.split(".")[0] for p in (Path(store.path) / "blobs").rglob("*") if p.is_file()}
    assert public["secret.txt"] not in blob_names  # no vacuum needed, no grace period waited
    assert public["public.txt"] in blob_names
    assert [r["path"] for r in t.read(version=0).to_pylist()] == ["public.txt"]
    out = tmp_path / "out"
    t.checkout(out, version=0)
    assert [p.name for p in out.iterdir()] == ["public.txt"]
    assert t.verify(full=True).problems == []
    assert not any(secret[:40] in p.read_bytes() for p in Path(store.path).rglob("*") if p.is_file())


def test_an_expired_version_has_no_uri_and_no_readers(store):
    t = store.create_table("t", pa.table({"id": [1, 2], "v": [1, 2]}), key="id")
    t.update(set={"v": "v + 1"}, where="true")
    t.update(set={"v": "v + 1"}, where="true")
    t.expire(keep_last=1)
    for read in (lambda: t.uri(version=0), lambda: t.at(version=0), lambda: t.fragments(version=0), lambda: list(t.to_batches(version=0))):
        with pytest.raises(logstore.VersionExpiredError):
            read()
    assert logstore.read_uri(t.uri()).num_rows == 2
