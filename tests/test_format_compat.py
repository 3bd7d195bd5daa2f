"""Stores written by older logstore releases stay readable and writable.

tests/data/store_format_v1.tar.gz is a store written by logstore at commit 0081bbf (format_version 1): the script
that made it (make.py) and every version's rows as that release read them (expected.json) are inside the archive.
"""

import json
import tarfile
import warnings

import pyarrow as pa
import pytest

import logstore

ARCHIVE = __file__.rsplit("/", 1)[0] + "/data/store_format_v1.tar.gz"


@pytest.fixture
def v1(tmp_path):
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    expected = json.loads((tmp_path / "expected.json").read_text())
    return logstore.open(tmp_path / "store"), expected


def same_rows(got: list[dict], expected: list[dict]) -> bool:
    """The same rows; the order may differ: format 1 and 2 documented row-id order, format 3 reads every store in
    its row order (by the version that wrote each row's values; tests/test_scan.py checks it)."""
    return sorted(map(repr, got)) == sorted(map(repr, expected))


def test_every_version_of_a_v1_store_reads_as_it_did(v1):
    store, expected = v1
    assert sorted(store.tables()) == sorted(expected)
    for name, versions in expected.items():
        table = store.table(name)
        assert table.version == len(versions) - 1
        for v, rows in versions.items():
            assert same_rows(table.read(version=int(v)).to_pylist(), rows), (name, v)


def test_a_v1_store_verifies_and_takes_new_commits(v1):
    store, expected = v1
    table = store.table("events")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert table.verify(full=True).ok
        table.upsert(pa.table({"id": [1, 999], "name": ["new", "nine"]}))
    assert table.version == 121
    rows = {r["id"]: r["name"] for r in table.read().to_pylist()}
    assert rows[1] == "new" and rows[999] == "nine"
    assert same_rows(table.read(version=50).to_pylist(), expected["events"]["50"])
    assert same_rows(table.read(tag="v50").to_pylist(), expected["events"]["50"])
    assert table.verify().ok
