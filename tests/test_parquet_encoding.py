"""The dictionary columns of the Parquet files logstore writes (commit.dictionary_columns): columns whose values are
nearly all distinct are written plain from the start, the others keep their dictionary, and the rows are the same."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from logstore import commit


def test_dictionary_columns_skip_columns_of_distinct_values():
    n = 20_000
    rng = np.random.default_rng(7)
    rows = pa.table({
        "_row_id": pa.array(np.arange(n), pa.int64()),
        "_op": pa.array(["I"] * n),
        "kind": pa.array(rng.choice(["a", "b", "c"], n)),
        "code": pa.array(rng.integers(0, 1500, n)),  # 1,500 values: a 12 KB dictionary, kept
        "id": pa.array(np.arange(n)),
        "text": pa.array([f"row {i} of many" for i in range(n)]),
        "score": pa.array(rng.random(n)),
        "tags": pa.array([[i % 3] for i in range(n)]),
    })
    assert commit.dictionary_columns(rows) == ["_op", "kind", "code", "tags"]
    assert commit.dictionary_columns(rows.slice(0, commit.DICTIONARY_RULE_ROWS - 1)) == rows.column_names[1:]
    data = commit.encode_parquet(rows)
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0)
    dictionary = {meta.column(i).path_in_schema.split(".")[0] for i in range(meta.num_columns) if meta.column(i).has_dictionary_page}
    assert {"_op", "kind", "code"} <= dictionary and not dictionary & {"_row_id", "id", "text", "score"}
    assert pq.read_table(pa.BufferReader(data)).equals(rows)
