"""Hugging Face datasets (logstore/integrations/hf.py): a version as a datasets.Dataset over its Arrow rows."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")

import logstore  # noqa: E402

from conftest import age_files, people  # noqa: E402


def test_to_hf_round_trip_pinned_to_a_version(store, no_fsync):
    t = store.create_table("events", people(range(5)), key="id")
    t.update(set={"name": "upper(name)"}, where="id < 2")
    t.tag("v1.0")
    expected = t.read(tag="v1.0")
    ds = t.to_hf(tag="v1.0")
    uri = t.uri(tag="v1.0")
    t.append(people([7, 8]))
    t.delete(where="id = 1")
    age_files(store._storage.root, 7200)
    t.vacuum(dry_run=False, older_than=0)
    assert isinstance(ds, datasets.Dataset)
    assert ds.info.description == uri
    assert ds.data.table.equals(expected)  # the Arrow table itself, not rows converted to Python and back
    assert ds.with_format("arrow")[:].equals(expected)
    assert ds.num_rows == 5 and sorted(ds["name"]) == ["N0", "N1", "n2", "n3", "n4"]
    again = t.to_hf(version=1)
    assert again.data.table.equals(logstore.read_uri(uri)) and again._fingerprint == ds._fingerprint
    assert t.to_hf()._fingerprint != ds._fingerprint


def test_to_hf_columns_and_filter_are_named_in_the_description(store, no_fsync):
    t = store.create_table("events", people(range(5)), key="id")
    ds = t.to_hf(columns=["id", "score"], where="id >= 3")
    assert ds.column_names == ["id", "score"] and list(ds["id"]) == [3, 4]
    assert ds.info.description.splitlines() == [t.uri(), "columns: id, score", "where: id >= 3"]
    assert ds._fingerprint != t.to_hf()._fingerprint
