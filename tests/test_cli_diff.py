"""`logstore diff` planned from the range's row ids only (issue 13, round 4): the records it needs are read when asked
for, and a file of a compacted block reaching past the range whose `_version` statistics show no row of the range
(version 0's data file kept in block 0..9, for a diff from version 1) is not read at all. The diff must not change:
every pair of versions is checked against full reads of both versions, and the CLI's CSV against the library's rows."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pytest
from click.testing import CliRunner

import logstore
from logstore import changes, compaction, integrity, scan, statistics
from logstore_cli.main import cli

pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def history(tmp_path, monkeypatch):
    """Table `t` (key id): 3000 rows at version 0, then 13 commits (updates, deletes, appends); compaction (every 10
    commits) keeps version 0's insert-only file in block 0..9 (as it keeps any file of 1 MiB or more that is bigger
    than the rest of the block, and any of 64 MiB or more: here 16 KiB)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(compaction, "CARRY_ALWAYS_BYTES", 16 << 10)
    store = logstore.init(tmp_path / ".logstore")
    n = 3000
    t = store.create_table("t", pa.table({"id": list(range(n)), "x": [i * 10 for i in range(n)], "s": [f"row {i} {'x' * (i % 40)}" for i in range(n)]}), key="id")
    for i in range(1, 14):
        if i % 3 == 0:
            t.delete(where=f"id % 101 = {i}")
        elif i % 3 == 1:
            t.update({"x": f"x + {i}"}, where=f"id % 97 = {i % 7}")
        else:
            t.append(pa.table({"id": [10000 + i], "x": [i], "s": [f"new{i}"]}))
    sizes = {f.path: f.size for f in t._files.log.read(0).files}
    assert min(sizes.values()) >= 16 << 10, sizes  # version 0's file is kept as it is by compaction
    return store, t


def _expected(t, a: int, b: int) -> dict:
    """The net difference a -> b from full reads: key -> (change type, x, _old_x, s, _old_s)."""
    old = {r["id"]: r for r in t.read(version=a).to_pylist()}
    new = {r["id"]: r for r in t.read(version=b).to_pylist()}
    out = {}
    for k in set(old) | set(new):
        if k not in old:
            out[k] = ("insert", new[k]["x"], None, new[k]["s"], None)
        elif k not in new:
            out[k] = ("delete", old[k]["x"], None, old[k]["s"], None)
        elif old[k] != new[k]:
            o, n = old[k], new[k]
            out[k] = ("update", n["x"], o["x"] if o["x"] != n["x"] else None, n["s"], o["s"] if o["s"] != n["s"] else None)
    return out


def _got(rows: list[dict]) -> dict:
    return {r["id"]: (r["_change_type"], r["x"], r["_old_x"], r["s"], r["_old_s"]) for r in rows}


def test_a_block_file_outside_the_range_is_not_read(history, monkeypatch):
    store, t = history
    base = t._files.url(t._files.log.read(0).files[0].path)
    kept = {f.url for f in changes._Range(t._files, 1, t.version).change_files}
    assert base in kept  # the premise: block 0..9 stands for version 0 too, with its insert-only file
    read: list[str] = []
    real = scan.change_rows
    monkeypatch.setattr(scan, "change_rows", lambda url, key: read.append(url) or real(url, key))
    for a, b in [(0, t.version), (1, t.version), (t.version, 1), (2, 9), (5, 12)]:
        read.clear()
        assert _got(t.diff(a, b).to_pylist()) == _expected(t, a, b), (a, b)
        assert base not in read, (a, b)
        assert read  # the other change files' row ids are read


def test_the_bounds_of_a_file_by_its_statistics(history):
    store, t = history
    first = t._files.url(t._files.log.read(0).files[0].path)
    assert statistics.integer_range(first, "_version") == statistics.Range(0, 0)
    assert statistics.integer_range(first + ".missing", "_version") is None  # unreadable: left to the read that reports it


def test_every_pair_of_versions_matches_full_reads(history):
    store, t = history
    for a in range(t.version + 1):
        for b in range(t.version + 1):
            assert _got(t.diff(a, b).to_pylist()) == _expected(t, a, b), (a, b)


def test_cli_csv_is_the_library_diff(history):
    store, t = history
    result = CliRunner().invoke(cli, ["diff", "t", "1", str(t.version), "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    expected = t.diff(1, t.version).to_pylist()
    assert [r["id"] for r in rows] == [str(r["id"]) for r in expected]
    assert [r["_change_type"] for r in rows] == [r["_change_type"] for r in expected]
    assert [r["_old_x"] for r in rows] == ["" if r["_old_x"] is None else str(r["_old_x"]) for r in expected]


def test_a_damaged_change_file_fails_the_diff(history):
    """Round 5: the range's files are found and checked (SHA-256 on first use) on a thread of their own while the
    caller opens its connection (changes._diff_range). A change file of the range altered in place (same size, other
    bytes) still fails every diff over it with CorruptionError naming it, raised in the caller's thread, and the CLI
    with one `error:` line and no rows; a diff not reading it still works."""
    store, t = history
    damaged = t._files.log.read(13).files[0]
    path = t._files.url(damaged.path)
    with open(path, "r+b") as f:
        f.seek(damaged.size // 2)
        byte = f.read(1)
        f.seek(damaged.size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    integrity.forget()
    for call in (lambda: t.diff(0, 13), lambda: t.diff_summary(13, 0), lambda: t.diff_relation(1, 13)):
        with pytest.raises(logstore.CorruptionError, match="checksum mismatch") as caught:
            call()
        assert damaged.path in str(caught.value)
    result = CliRunner().invoke(cli, ["diff", "t", "0", "13", "-f", "csv"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "checksum mismatch" in result.stderr, result.stderr
    assert _got(t.diff(0, 12).to_pylist()) == _expected(t, 0, 12)
