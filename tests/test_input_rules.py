"""Input rules from the adversarial review (issue 10, items 4, 7, 9, 10).

4. Timestamps are stored fixed width for every year 0001-9999; ones that cannot be are refused before writing.
7. One rule of key equality for every operation taking keys: NaN is refused, -0.0 and 0.0 are the same key.
9. Tables of 5,000 columns work (the fingerprint SQL no longer nests one level per column), same fingerprints.
10. Column names repeating exactly or up to case, and table names differing only by case, are refused.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import duckdb
import pyarrow as pa
import pytest

from logstore import fingerprint, timestamps
from logstore.errors import (
    InvalidInputError,
    KeyViolationError,
    SchemaMismatchError,
    TableExistsError,
    TableNameCollisionError,
    TimestampError,
)
from logstore.schema import Column

from conftest import file_state

UTC = dt.UTC
NAN = float("nan")


# --- 4. timestamps before the year 1000, and ones that cannot be stored ------------------------------------------


def _record_timestamp(store, table: str, version: int) -> str:
    with open(f"{store.path}/tables/{table}/_log/{version:020d}.json") as f:
        return json.load(f)["timestamp"]


@pytest.mark.parametrize("created, text", [
    ("0900-01-01", "0900-01-01T00:00:00.000000Z"),
    (dt.datetime(1, 1, 1, 0, 0, 0, 5), "0001-01-01T00:00:00.000005Z"),
])
def test_timestamp_before_year_1000_is_stored_fixed_width_and_reads_back(store, created, text):
    t = store.create_table("t", pa.table({"id": [1]}), key="id", timestamp=created)
    assert _record_timestamp(store, "t", 0) == text
    t.append(pa.table({"id": [2]}), timestamp="1500-06-01")
    assert _record_timestamp(store, "t", 1) == "1500-06-01T00:00:00.000000Z"

    assert t.read(version=0).column("id").to_pylist() == [1]
    assert t.read(as_of="1000-01-01").column("id").to_pylist() == [1]
    assert t.read(as_of="1600-01-01").column("id").to_pylist() == [1, 2]
    assert [c.timestamp for c in t.history()] == [dt.datetime(1500, 6, 1, tzinfo=UTC), timestamps.decode(text)]
    assert t.verify(full=True).ok
    t.append(pa.table({"id": [3]}))  # a write after a backfilled past still works
    assert t.read().column("id").to_pylist() == [1, 2, 3]


@pytest.mark.parametrize("moment", [
    dt.datetime(1, 1, 1, tzinfo=UTC),
    dt.datetime(9, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
    dt.datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(1000, 1, 1, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
])
def test_encode_is_fixed_width_and_decodes_back(moment):
    text = timestamps.encode(moment)
    assert len(text) == len("YYYY-MM-DDTHH:MM:SS.ffffffZ")
    assert timestamps.decode(text) == moment


def test_text_order_is_time_order_across_year_1000():
    moments = [dt.datetime(y, 6, 1, tzinfo=UTC) for y in (1, 9, 99, 999, 1000, 2024, 9999)]
    texts = [timestamps.encode(m) for m in moments]
    assert sorted(texts) == texts


@pytest.mark.parametrize("text", [
    "900-01-01T00:00:00.000000Z",  # what strftime wrote for year 900
    "2022-1-01T00:00:00.000000Z",
    "2022-01-01T00:00:00Z",
    "2022-01-01 00:00:00.000000Z",
    "2022-01-01T00:00:00.000000",
    "0000-01-01T00:00:00.000000Z",
    "\u0662022-01-01T00:00:00.000000Z",  # a non-ASCII digit
])
def test_decode_accepts_only_the_fixed_width_form(text):
    with pytest.raises(ValueError):
        timestamps.decode(text)


UNREPRESENTABLE = [
    "0000-01-01",
    "10000-01-01",
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),  # year 0 in UTC
    dt.datetime(9999, 12, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-1))),  # year 10000 in UTC
    "0001-01-01T00:30:00+01:00",
]


@pytest.mark.parametrize("moment", UNREPRESENTABLE)
def test_unrepresentable_timestamp_is_refused_before_create_writes(store, moment):
    before = file_state(store.path)
    with pytest.raises(TimestampError):
        store.create_table("t", pa.table({"id": [1]}), timestamp=moment)
    assert store.tables() == []
    assert file_state(store.path) == before


@pytest.mark.parametrize("moment", UNREPRESENTABLE)
def test_unrepresentable_timestamp_is_refused_before_a_write_and_a_read(store, moment):
    t = store.create_table("t", pa.table({"id": [1]}), timestamp="2000-01-01")
    before = file_state(store.path)
    with pytest.raises(TimestampError):
        t.append(pa.table({"id": [2]}), timestamp=moment)
    with pytest.raises(TimestampError):
        t.read(as_of=moment)
    assert t.version == 0
    assert file_state(store.path) == before


# --- 7. one rule of key equality ---------------------------------------------------------------------------------


def _write(store, operation: str, data: pa.Table, key):
    """Run `operation` with `data` on a keyed table holding keys 1.0 and 2.0 (or create a table from `data`)."""
    if operation == "create":
        return store.create_table("k2", data, key=key)
    t = store.table("k")
    return getattr(t, operation)(data)


NAN_KEYS = [
    ("float64", pa.table({"id": pa.array([3.0, NAN], pa.float64()), "v": [3, 4]}), "id"),
    ("float32", pa.table({"id": pa.array([NAN, 3.0], pa.float32()), "v": [3, 4]}), "id"),
    ("composite", pa.table({"id": pa.array([3.0, NAN]), "v": [3, 4]}), ["v", "id"]),
]


@pytest.mark.parametrize("operation", ["create", "append", "upsert", "overwrite"])
@pytest.mark.parametrize("kind, data, key", NAN_KEYS, ids=[k[0] for k in NAN_KEYS])
def test_nan_key_is_refused_by_every_operation(store, operation, kind, data, key):
    base_type = data.schema.field("id").type
    store.create_table("k", pa.table({"id": pa.array([1.0, 2.0], base_type), "v": [3, 4]}), key=key)
    before = file_state(store.path)
    with pytest.raises(KeyViolationError) as caught:
        _write(store, operation, data, key)
    assert "NaN" in str(caught.value)
    assert caught.value.key == ([key] if isinstance(key, str) else key)
    shown = caught.value.values[0]
    assert math.isnan(shown if isinstance(key, str) else shown[1])
    assert file_state(store.path) == before
    assert "k2" not in store.tables()


@pytest.mark.parametrize("operation", ["create", "append", "upsert", "overwrite"])
def test_nan_inside_a_nested_key_is_refused(store, operation):
    store.create_table("k", pa.table({"id": [[1.0], [2.0]], "v": [1, 2]}), key="id")
    before = file_state(store.path)
    with pytest.raises(KeyViolationError, match="NaN"):
        _write(store, operation, pa.table({"id": [[3.0, NAN]], "v": [3]}), "id")
    assert file_state(store.path) == before


def test_upsert_of_nan_key_never_adds_a_second_row(store):
    # before the fix NaN keys went in, and an upsert of NaN into a table holding a NaN key inserted a second one
    t = store.create_table("k", pa.table({"id": [1.0, 2.0], "v": [1, 2]}), key="id")
    for attempt in range(2):
        with pytest.raises(KeyViolationError, match="NaN"):
            t.upsert(pa.table({"id": [NAN], "v": [attempt]}))
    assert t.version == 0
    assert t.read().to_pydict() == {"id": [1.0, 2.0], "v": [1, 2]}


def test_negative_zero_and_zero_are_the_same_key(store):
    t = store.create_table("k", pa.table({"id": [0.0, 1.0], "v": [1, 2]}), key="id")
    with pytest.raises(KeyViolationError, match="already in the table"):
        t.append(pa.table({"id": [-0.0], "v": [3]}))
    with pytest.raises(KeyViolationError, match="duplicate"):
        t.upsert(pa.table({"id": [0.0, -0.0], "v": [3, 4]}))
    commit = t.upsert(pa.table({"id": [-0.0], "v": [5]}))
    assert (commit.rows_inserted, commit.rows_updated, commit.num_rows) == (0, 1, 2)
    commit = t.overwrite(pa.table({"id": [0.0, 1.0], "v": [5, 2]}))
    assert (commit.rows_inserted, commit.rows_updated, commit.rows_deleted) == (0, 0, 0)
    assert t.read().column("v").to_pylist() == [2, 5]  # the upsert changed key 0: it moved after key 1


# --- 9. wide tables ----------------------------------------------------------------------------------------------


_SMALL = "(VALUES (7, 1, 'x', 2.5), (8, NULL, NULL, NULL), (9, 3, NULL, 1e300)) v(_row_id, a, b, c)"
_SMALL_COLUMNS = (Column("a", "INTEGER"), Column("b", "VARCHAR"), Column("c", "DOUBLE"))


@pytest.mark.parametrize("wide", [fingerprint.WIDE, 1])
def test_fingerprint_values_are_those_of_the_flat_sum(monkeypatch, wide):
    """Values computed with the code before the change (a flat a + b + c sum); wide=1 takes the list form."""
    con = duckdb.connect()
    if not fingerprint.hash_is_stable(con):
        pytest.skip("this DuckDB's hash() differs from the one the values were computed with")
    monkeypatch.setattr(fingerprint, "WIDE", wide)
    hashes = con.sql(f"SELECT {fingerprint.row_hash_sql(_SMALL_COLUMNS)} FROM {_SMALL} ORDER BY _row_id").fetchall()
    assert [h for (h,) in hashes] == [10511226121680140784, 490874445002423379, 7619326677346030648]
    assert con.sql(fingerprint.sum_sql(_SMALL, _SMALL_COLUMNS)).fetchall() == [(174683170319043195,)]
    assert con.sql(f"SELECT {fingerprint.row_hash_sql(())} FROM (VALUES (7)) v(_row_id)").fetchall() == [(15590834199540079655,)]


def test_fingerprint_of_many_columns_list_form_equals_cell_form(monkeypatch):
    con = duckdb.connect()
    con.execute("""CREATE TABLE d AS SELECT range AS _row_id, range::TINYINT AS a, (range * 7)::HUGEINT AS b,
                   CASE WHEN range % 3 = 0 THEN NULL ELSE range / 3 END::DOUBLE AS c, 'x' || range AS s,
                   [range, NULL] AS l, {'p': range} AS st, MAP {'k': range} AS m, (range / 9)::DECIMAL(18, 3) AS dec
                   FROM range(40)""")
    columns = tuple(Column(n, t) for n, t, *_ in con.execute("DESCRIBE d").fetchall() if n != "_row_id")
    copies = ", ".join(f"{c.name} AS {c.name}_{k}" for k in range(70) for c in columns)
    con.execute(f"CREATE TABLE e AS SELECT *, {copies} FROM d")
    many = tuple(Column(n, t) for n, t, *_ in con.execute("DESCRIBE e").fetchall() if n != "_row_id")
    assert "list_transform" in fingerprint.row_hash_sql(many)
    listed = con.sql(fingerprint.sum_sql("e", many)).fetchall()
    monkeypatch.setattr(fingerprint, "WIDE", len(many) + 1)
    assert "list_transform" not in fingerprint.row_hash_sql(many)
    assert con.sql(fingerprint.sum_sql("e", many)).fetchall() == listed


@pytest.mark.parametrize("n", [1200, pytest.param(5000, marks=pytest.mark.stress)])
def test_table_of_many_columns(store, no_fsync, n):
    """Past DuckDB's expression depth of 1,000 (the flat fingerprint sum failed there); 5,000 takes ~20 s: stress."""
    names = [f"c{i}" for i in range(n)]

    def rows(ids, offset):
        return pa.table({"id": ids, **{c: [i + offset] * len(ids) for i, c in enumerate(names)}})

    t = store.create_table("w", rows([1, 2, 3], 0), key="id")
    t.append(rows([4], 1))
    t.upsert(rows([4, 5], 2))
    t.update(set={"c1": "c1 + 100", names[-1]: "0"}, where="id = 1")
    t.delete(where="id = 2")
    got = t.read()
    assert got.num_columns == n + 1
    assert got.column("id").to_pylist() == [3, 4, 5, 1]  # row order: by the version that wrote each row
    assert got.column("c1").to_pylist() == [1, 3, 3, 101]
    assert got.column(names[-1]).to_pylist() == [n - 1, n + 1, n + 1, 0]
    assert t.read(version=1).num_rows == 4
    assert t.verify(full=True).ok


# --- 10. repeated and case-colliding names -----------------------------------------------------------------------


REPEATED = [
    ("exact", pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), ["a", "a"]),
    ("case", pa.table({"a": [1], "A": [2]}), ["a", "A"]),
]


@pytest.mark.parametrize("kind, data, both", REPEATED, ids=[r[0] for r in REPEATED])
def test_repeated_column_names_are_refused_by_create(store, kind, data, both):
    before = file_state(store.path)
    for call in (
        lambda: store.create_table("t", data),
        lambda: store.create_table("t", schema=data.schema),
        lambda: store.create_table("t", data, schema={"a": "BIGINT", "A": "BIGINT"}),
    ):
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert caught.value.value == both or caught.value.value == ["a", "A"]
        assert "'a'" in str(caught.value)
    assert store.tables() == []
    assert file_state(store.path) == before


@pytest.mark.parametrize("operation", ["append", "upsert", "overwrite"])
@pytest.mark.parametrize("mode", [None, "merge"])
@pytest.mark.parametrize("kind, data, both", REPEATED, ids=[r[0] for r in REPEATED])
def test_repeated_column_names_are_refused_by_writes(store, operation, mode, kind, data, both):
    t = store.create_table("t", pa.table({"a": [1]}), key="a")
    before = file_state(store.path)
    with pytest.raises(InvalidInputError) as caught:
        getattr(t, operation)(data, schema_mode=mode)
    assert caught.value.value == both
    assert file_state(store.path) == before


@pytest.mark.parametrize("operation", ["append", "upsert", "overwrite"])
def test_merge_of_a_column_differing_by_case_from_the_tables_is_refused(store, operation):
    t = store.create_table("t", pa.table({"id": [1], "name": ["x"]}), key="id")
    before = file_state(store.path)
    with pytest.raises(SchemaMismatchError) as caught:
        getattr(t, operation)(pa.table({"id": [2], "NAME": ["z"]}), schema_mode="merge")
    assert "'NAME'" in str(caught.value) and "'name'" in str(caught.value)
    assert file_state(store.path) == before
    assert t.read().column_names == ["id", "name"]


def test_merge_into_a_table_without_columns_refuses_repeated_names(store):
    t = store.create_table("t")
    with pytest.raises(InvalidInputError, match="'a' and 'A'"):
        t.append(pa.table({"a": [1], "A": [2]}), schema_mode="merge")
    assert t.version == 0


def test_table_name_differing_only_by_case_is_refused(store):
    store.create_table("events", pa.table({"id": [1]}))
    before = file_state(store.path)
    with pytest.raises(TableNameCollisionError) as caught:
        store.create_table("Events", pa.table({"id": [2]}))
    assert isinstance(caught.value, TableExistsError)
    assert (caught.value.name, caught.value.existing) == ("Events", "events")
    assert "'events'" in str(caught.value)
    with pytest.raises(TableExistsError):
        store.create_table("events", pa.table({"id": [2]}))
    assert store.tables() == ["events"]
    assert file_state(store.path) == before
    assert store.connect().sql("SELECT count(*) FROM events").fetchall() == [(1,)]
