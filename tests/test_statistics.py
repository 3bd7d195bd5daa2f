"""Footer statistics let an append of fresh integer keys skip its key probe; anything else keeps the exact check."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logstore import operations, statistics, testing
from logstore.errors import KeyViolationError

from conftest import people


@pytest.fixture
def keyed(store, no_fsync):
    t = store.create_table("p", people(range(10, 20)), key="id")
    t.update({"score": "0"}, "id = 12")
    t.delete("id = 15")  # a change file whose key column is all NULL: it stores no key
    return t


def past(table, ids) -> bool:
    return operations._keys_past_every_file(testing.head(table), people(ids))


def test_fresh_keys_beyond_every_file_skip_the_probe(keyed):
    assert past(keyed, [20, 21]) and past(keyed, [0, 9])
    keyed.append(people([20, 21]))
    assert past(keyed, [22]) and not past(keyed, [21])


def test_keys_inside_some_file_range_take_the_exact_check(keyed):
    assert not past(keyed, [9, 20])  # spans the stored range
    assert not past(keyed, [15])  # deleted: the exact check decides (and allows it)
    keyed.append(people([15]))
    with pytest.raises(KeyViolationError):
        keyed.append(people([30, 13]))
    assert sorted(r["id"] for r in keyed.read().to_pylist()) == list(range(10, 20))


def test_a_file_whose_footer_cannot_be_read_is_unknown(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    assert statistics.integer_range(str(bad), "id") is None


def test_only_nulls_means_no_values_and_a_missing_column_means_unknown(keyed, tmp_path):
    sources = testing.head(keyed).plan.sources()
    ranges = [statistics.integer_range(s.url, "id") for s in sources]
    assert statistics.Range(10, 19) in ranges
    nulls = tmp_path / "nulls.parquet"  # (delete rows hold their pre-images since format 5: not all NULL any more)
    pq.write_table(pa.table({"id": pa.array([None, None], pa.int64())}), nulls)
    empty = statistics.Range(None, None)
    assert statistics.integer_range(str(nulls), "id") == empty and not empty.overlaps(-(2**63), 2**63)
    assert all(statistics.integer_range(s.url, "no_such_column") is None for s in sources)


def test_string_keys_always_take_the_exact_check(store, no_fsync):
    t = store.create_table("s", pa.table({"k": ["a", "b"]}), key="k")
    assert not operations._keys_past_every_file(testing.head(t), pa.table({"k": ["z"]}))
    with pytest.raises(KeyViolationError):
        t.append(pa.table({"k": ["z", "a"]}))
