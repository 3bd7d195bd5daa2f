"""Readers (Arrow, pandas, polars, DuckDB, the one-call functions), inputs, schema evolution, reproducibility."""

from __future__ import annotations

import io
import warnings

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import logstore

from conftest import people


@pytest.fixture
def table(store):
    t = store.create_table("people", people([1, 2, 3, 4], ["ann", None, "cy", "dee"]), key="id")  # 0
    t.update(set={"score": "score * 10"}, where="id >= 3")  # 1
    t.delete(where="id = 1")  # 2
    t.tag("trimmed")
    return t


EXPECTED_V1 = [
    {"id": 1, "name": "ann", "score": 0.5},
    {"id": 2, "name": None, "score": 1.0},
    {"id": 3, "name": "cy", "score": 15.0},
    {"id": 4, "name": "dee", "score": 20.0},
]
EXPECTED_V2 = EXPECTED_V1[1:]


def rows_of(result) -> list[dict]:
    """Rows of any reader's result as a list of dicts, with NaN/None normalised to None."""
    if isinstance(result, pl.LazyFrame):
        result = result.collect()
    if isinstance(result, pl.DataFrame):
        return result.to_dicts()
    if isinstance(result, pd.DataFrame):
        return [{k: (None if (v is None or (isinstance(v, float) and v != v) or v is pd.NA) else v) for k, v in r.items()} for r in result.to_dict("records")]
    if isinstance(result, duckdb.DuckDBPyRelation):
        return result.to_arrow_table().to_pylist()
    return result.to_pylist()


READERS = ["read", "to_pandas", "to_polars", "scan_polars", "to_duckdb"]
FUNCTIONS = {"read": logstore.read_arrow, "to_pandas": logstore.read_pandas, "to_polars": logstore.read_polars, "scan_polars": logstore.scan_polars}


@pytest.mark.parametrize("reader", READERS)
def test_table_readers_with_selectors(table, reader):
    read = getattr(table, reader)
    assert rows_of(read()) == EXPECTED_V2
    assert rows_of(read(version=1)) == EXPECTED_V1
    assert rows_of(read(tag="trimmed")) == EXPECTED_V2
    assert rows_of(read(as_of=table.history()[1].timestamp)) == EXPECTED_V1
    assert rows_of(read(version=1, columns=["score", "id"])) == [{"score": r["score"], "id": r["id"]} for r in EXPECTED_V1]
    assert rows_of(read(version=1, where="score > 1 AND name IS NOT NULL")) == EXPECTED_V1[2:]
    assert rows_of(read(version=1, columns=["name"], where="id % 2 = 0")) == [{"name": None}, {"name": "dee"}]
    assert rows_of(read(where="false")) == []


@pytest.mark.parametrize("reader", sorted(FUNCTIONS))
def test_one_call_readers(store, table, reader):
    read = FUNCTIONS[reader]
    assert rows_of(read(store.path, "people")) == EXPECTED_V2
    assert rows_of(read(store.path, "people", version=1, columns=["id"], where="id > 2")) == [{"id": 3}, {"id": 4}]
    assert rows_of(read(store.path, "people", tag="trimmed", where="name = 'cy'")) == [EXPECTED_V1[2]]


@pytest.mark.parametrize("reader", READERS)
def test_at_most_one_selector(table, reader):
    read = getattr(table, reader)
    for given in ({"version": 1, "tag": "trimmed"}, {"version": 0, "as_of": "2030-01-01"}, {"as_of": "2030-01-01", "tag": "trimmed"}):
        with pytest.raises(logstore.SelectorError) as info:
            read(**given)
        for name in given:
            assert name in str(info.value)


def test_one_call_readers_refuse_two_selectors(store, table):
    for read in FUNCTIONS.values():
        with pytest.raises(logstore.SelectorError):
            read(store.path, "people", version=1, tag="trimmed")


def test_pandas_types(table):
    df = table.to_pandas(version=1)
    assert list(df.columns) == ["id", "name", "score"]
    assert len(df) == 4
    assert df["id"].tolist() == [1, 2, 3, 4]


def test_scan_polars_is_lazy_and_composes(table):
    lf = table.scan_polars(version=1)
    assert isinstance(lf, pl.LazyFrame)
    out = lf.filter(pl.col("score") > 1).select("id").collect()
    assert out["id"].to_list() == [3, 4]
    assert table.scan_polars().collect().equals(table.to_polars())


def test_to_duckdb_on_own_connection(table):
    con = duckdb.connect()
    rel = table.to_duckdb(version=1, connection=con)
    assert rel.aggregate("sum(score)").fetchall() == [(36.5,)]
    assert sorted(rel.fetchall()) == sorted(tuple(r.values()) for r in EXPECTED_V1)


# --- inputs ---------------------------------------------------------------------------------------------------------


def _inputs():
    arrow = people([10, 11], ["x", None], [1.0, 2.0])
    return {
        "arrow": arrow,
        "record_batch_reader": pa.RecordBatchReader.from_batches(arrow.schema, arrow.to_batches(max_chunksize=1)),
        "record_batch": arrow.to_batches()[0],
        "pandas": arrow.to_pandas(),
        "pandas_reordered": arrow.to_pandas()[["score", "name", "id"]],
        "polars": pl.from_arrow(arrow),
        "polars_lazy": pl.from_arrow(arrow).lazy(),
        "narrow_types": pa.table({"id": pa.array([10, 11], pa.int32()), "name": pa.array(["x", None], pa.large_string()), "score": pa.array([1.0, 2.0], pa.float32())}),
    }


@pytest.mark.parametrize("kind", sorted(_inputs()))
def test_input_types(store, kind):
    t = store.create_table("t", schema=people([]).schema, key="id")
    data = _inputs()[kind]
    c = t.append(data)
    assert c.rows_inserted == 2 and c.num_rows == 2
    assert t.read().to_pylist() == [{"id": 10, "name": "x", "score": 1.0}, {"id": 11, "name": None, "score": 2.0}]
    assert t.read().schema == people([]).schema
    # the same input types work for create, upsert and overwrite
    data = _inputs()[kind]
    u = store.create_table("u", data, key="id")
    assert u.read().to_pylist() == t.read().to_pylist()
    u.upsert(_inputs()[kind])
    u.overwrite(_inputs()[kind])
    assert u.read().to_pylist() == t.read().to_pylist()


# --- version 0 and schemas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [people([]).schema, {"id": "BIGINT", "name": "VARCHAR", "score": "DOUBLE"}, "id BIGINT, name VARCHAR, score DOUBLE"])
def test_version_zero_created_with_schema_only(store, schema):
    t = store.create_table("t", schema=schema, key="id")
    assert t.version == 0
    c = t.history()[0]
    assert (c.version, c.operation, c.num_rows, c.rows_inserted) == (0, "CREATE", 0, 0)
    empty = t.read()
    assert empty.num_rows == 0 and empty.schema == people([]).schema
    assert list(t.to_pandas().columns) == ["id", "name", "score"]
    assert t.to_polars().columns == ["id", "name", "score"] and t.to_polars().height == 0
    assert t.scan_polars().collect().height == 0
    assert t.to_duckdb().fetchall() == []
    assert t.schema(0) == people([]).schema
    t.append(people([1]))
    assert t.read(version=0).num_rows == 0
    assert t.read(version=1).to_pylist() == people([1]).to_pylist()


def test_table_created_without_data_or_schema(store):
    t = store.create_table("t")
    assert t.version == 0
    assert t.read().num_columns == 0 and t.read().num_rows == 0
    assert t.to_polars().height == 0
    t.append(pa.table({"q": [1, 2]}))  # the first data fixes the schema
    assert t.read().to_pylist() == [{"q": 1}, {"q": 2}]
    assert t.read(version=0).num_columns == 0


def test_schema_evolution_merge_adds_nullable_column(store, table):
    with pytest.raises(logstore.SchemaMismatchError, match="'country'"):
        table.append(pa.table({"id": [9], "name": ["z"], "score": [1.0], "country": ["fr"]}))
    c = table.append(pa.table({"id": [9], "name": ["z"], "score": [1.0], "country": ["fr"]}), schema_mode="merge")
    assert c.version == 3
    assert table.schema().names == ["id", "name", "score", "country"]
    assert table.schema().field("country").nullable
    assert table.schema(2).names == ["id", "name", "score"]
    # older versions read with their old schema; newer ones have NULL for rows written before the column
    assert table.read(version=2).to_pylist() == EXPECTED_V2
    assert table.read(tag="trimmed").schema.names == ["id", "name", "score"]
    assert table.to_polars(version=1).columns == ["id", "name", "score"]
    assert table.read(columns=["id", "country"]).to_pylist() == [{"id": 2, "country": None}, {"id": 3, "country": None}, {"id": 4, "country": None}, {"id": 9, "country": "fr"}]
    with pytest.raises(logstore.SchemaMismatchError, match="'country'"):
        table.read(version=2, columns=["country"])
    # the new column can be updated and filtered on; data without it is filled with NULLs in merge mode
    table.update(set={"country": "'de'"}, where="id = 2")
    table.upsert(people([3], ["cy2"], [0.0]), schema_mode="merge")
    assert table.read(where="country IS NOT NULL", columns=["id", "country"]).to_pylist() == [{"id": 9, "country": "fr"}, {"id": 2, "country": "de"}]
    assert table.read(where="id = 3").to_pylist() == [{"id": 3, "name": "cy2", "score": 0.0, "country": None}]
    # restoring an old version keeps the current schema, with the old rows
    table.restore(1)
    assert sorted(table.read(columns=["id"]).column("id").to_pylist()) == [1, 2, 3, 4]
    assert table.read(version=2).to_pylist() == EXPECTED_V2


def test_merge_with_keyless_overwrite(store):
    t = store.create_table("t", pa.table({"a": [1, 1, 2]}))
    t.overwrite(pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]}), schema_mode="merge")
    # full-row equality: the old rows have b = NULL, so only (2, NULL) survives; the others are new rows
    assert t.read().to_pylist() == [{"a": 2, "b": None}, {"a": 1, "b": "x"}, {"a": 3, "b": "z"}]
    assert t.history()[0].rows_deleted == 2 and t.history()[0].rows_inserted == 2
    assert t.read(version=0).to_pylist() == [{"a": 1}, {"a": 1}, {"a": 2}]


# --- reproducibility ------------------------------------------------------------------------------------------------


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_same_version_reads_identically(store, table):
    first = {v: table.read(version=v) for v in range(table.version + 1)}
    first_bytes = {v: _parquet_bytes(t) for v, t in first.items()}
    for v in first:
        again = table.read(version=v)
        assert again.equals(first[v])
        assert _parquet_bytes(again) == first_bytes[v]
    # more commits, a snapshot and a fresh handle do not change how an old version reads
    table.upsert(people([2, 7]))
    table.snapshot()
    table.delete(where="id = 3")
    fresh = logstore.open(store.path).table("people")
    for v in first:
        assert _parquet_bytes(fresh.read(version=v)) == first_bytes[v]
    # nor does losing the snapshot
    for p in (store_path := __import__("pathlib").Path(store.path) / "tables" / "people" / "snapshots").glob("*.parquet"):
        p.unlink()
    assert store_path.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for v in first:
            assert _parquet_bytes(logstore.open(store.path).table("people").read(version=v)) == first_bytes[v]


def test_reads_are_in_row_order(store):
    """By the version that wrote each row's values, then by insertion: every reader, the same order."""
    t = store.create_table("t", pa.table({"a": [5, 3, 9]}))
    t.append(pa.table({"a": [1]}))
    t.update(set={"a": "a + 100"}, where="a = 3")  # changed by version 2: moves after the rows of versions 0 and 1
    t.update(set={"a": "a"}, where="a = 5")  # the same value: no change, keeps its place
    expected = [5, 9, 1, 103]
    assert t.read().column("a").to_pylist() == expected
    assert t.to_polars()["a"].to_list() == expected
    assert t.to_pandas()["a"].tolist() == expected
    assert t.scan_polars().collect()["a"].to_list() == expected
    assert [r[0] for r in t.to_duckdb().fetchall()] == expected
    assert [r[0] for r in store.sql("SELECT a FROM t").fetchall()] == expected
    assert t.read(version=1).column("a").to_pylist() == [5, 3, 9, 1]


def test_duckdb_relation_fetches_timezone_aware_timestamps(store):
    import datetime as dt

    moment = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    t = store.create_table("tz", pa.table({"id": [1], "ts": pa.array([moment])}))
    [(row_id, ts)] = t.to_duckdb().fetchall()
    assert row_id == 1 and ts == moment
