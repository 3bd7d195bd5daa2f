"""Bad input gets a clear error naming the offending value, and nothing is written.

Every test takes a fingerprint of every file under the store before the bad call and checks it is identical
afterwards (no stray commit, data file, tag or snapshot, nothing left in _staging), and that the table reads
exactly as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re

import pyarrow as pa
import pytest

import logstore
from logstore.errors import LogstoreError

from conftest import file_state, people, staging_leftovers

UTC = dt.UTC


@pytest.fixture
def table(store):
    t = store.create_table("people", people([1, 2, 3]), key="id", message="create")
    t.update(set={"score": "score + 1"}, where="id = 2")
    return t


@contextlib.contextmanager
def nothing_written(store, *tables):
    before_files = file_state(store.path)
    before_reads = {t.name: [t.read(version=v) for v in range(t.version + 1)] for t in tables}
    yield
    assert file_state(store.path) == before_files, "the failed call changed files in the store"
    assert staging_leftovers(store.path) == []
    for t in tables:
        fresh = logstore.open(store.path).table(t.name)
        assert fresh.version == len(before_reads[t.name]) - 1, "a stray commit exists"
        for v, expected in enumerate(before_reads[t.name]):
            assert fresh.read(version=v).equals(expected)


def raises(exc, *fragments):
    """pytest.raises that also checks the message names every fragment (literally)."""
    return pytest.raises(exc, match=".*".join(re.escape(str(f)) for f in fragments) if fragments else None)


# --- stores and tables ------------------------------------------------------------------------------------------


def test_errors_derive_from_logstore_error():
    for name in logstore.__all__:
        obj = getattr(logstore, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, LogstoreError), name


def test_open_unknown_store(tmp_path):
    missing = tmp_path / "nowhere"
    with raises(logstore.StoreNotFoundError, str(missing)):
        logstore.open(missing)
    assert not missing.exists()
    with raises(logstore.StoreNotFoundError, "nowhere"):
        logstore.read_arrow(missing, "t")
    assert not missing.exists()


def test_init_on_existing_store(store, tmp_path):
    t = store.create_table("t", people([1]))
    with nothing_written(store, t):
        with raises(logstore.StoreExistsError, str(tmp_path / "store")):
            logstore.init(tmp_path / "store")


def test_unknown_table_names_known_tables(store):
    store.create_table("alpha", people([1]))
    store.create_table("beta", people([2]))
    with nothing_written(store):
        with raises(logstore.TableNotFoundError, "gamma", "alpha, beta"):
            store.table("gamma")
        with raises(logstore.TableNotFoundError, "gamma", "alpha"):
            logstore.read_arrow(store.path, "gamma")


def test_create_existing_table(store, table):
    with nothing_written(store, table):
        with raises(logstore.TableExistsError, "people"):
            store.create_table("people", people([9]))


@pytest.mark.parametrize("name", ["a/b", "..", "../escape", "a..b", "x/../y", "/abs", "a\\b", "", ".hidden", "a b"])
def test_table_names_must_be_plain(store, table, name):
    with nothing_written(store, table):
        with pytest.raises(logstore.InvalidNameError) as info:
            store.create_table(name, people([1]))
        assert repr(name) in str(info.value)
        with pytest.raises(logstore.InvalidNameError):
            store.table(name)
    assert store.tables() == ["people"]


def test_create_with_unknown_key_column(store):
    with nothing_written(store):
        with raises(logstore.SchemaMismatchError, "'nope'"):
            store.create_table("t", people([1]), key="nope")
    assert store.tables() == []


# --- selectors: versions, tags, timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 99, -1, "1", 1.0, True])
def test_unknown_version_says_latest(store, table, version):
    with nothing_written(store, table):
        with raises(logstore.VersionNotFoundError, repr(version), "latest version is 1"):
            table.read(version=version)
        with raises(logstore.VersionNotFoundError, "latest version is 1"):
            table.restore(version)
        with raises(logstore.VersionNotFoundError, "latest version is 1"):
            table.tag("v", version)


def test_unknown_tag(store, table):
    table.tag("gold", 0)
    with nothing_written(store, table):
        with raises(logstore.TagNotFoundError, "'silver'", "gold"):
            table.read(tag="silver")
        with raises(logstore.TagNotFoundError, "'silver'"):
            table.restore(tag="silver")
        with raises(logstore.TagNotFoundError, "'silver'"):
            table.delete_tag("silver")


def test_existing_tag(store, table):
    table.tag("gold", 0)
    with nothing_written(store, table):
        with raises(logstore.TagExistsError, "'gold'", "version 0"):
            table.tag("gold", 1)
    assert table.tags() == {"gold": 0}


@pytest.mark.parametrize("name", ["a/b", "..", "../x"])
def test_bad_tag_names(store, table, name):
    with nothing_written(store, table):
        with pytest.raises(logstore.InvalidNameError) as info:
            table.tag(name)
        assert repr(name) in str(info.value)


def test_more_than_one_selector(store, table):
    with nothing_written(store, table):
        with raises(logstore.SelectorError, "version=0", "tag='x'"):
            table.read(version=0, tag="x")
        with raises(logstore.SelectorError):
            table.restore()


def test_as_of_before_first_commit(store, table):
    first = table.history()[-1].timestamp
    with nothing_written(store, table):
        with raises(logstore.TimestampError, "2000-01-01T00:00:00", "before the first commit", first.strftime("%Y-%m-%dT%H:%M:%S")):
            table.read(as_of="2000-01-01")
        with raises(logstore.TimestampError, "before the first commit"):
            table.read(as_of=first - dt.timedelta(microseconds=1))


def test_as_of_in_the_future(store, table):
    future = dt.datetime.now(UTC) + dt.timedelta(days=2)
    with nothing_written(store, table):
        with raises(logstore.TimestampError, future.strftime("%Y-%m-%dT%H:%M:%S"), "future"):
            table.read(as_of=future)
        with raises(logstore.TimestampError, "future"):
            table.version_at(future)


def test_unreadable_timestamp(store, table):
    with nothing_written(store, table):
        with raises(logstore.TimestampError, "'yesterday-ish'"):
            table.read(as_of="yesterday-ish")
        with raises(logstore.TimestampError, "'yesterday-ish'"):
            table.append(people([7]), timestamp="yesterday-ish")


def test_backfill_must_follow_previous_commit(store):
    t = store.create_table("t", people([1]), key="id", timestamp="2022-01-01")
    t.append(people([2]), timestamp="2022-02-01T10:00:00Z")
    with nothing_written(store, t):
        with raises(logstore.TimestampError, "2022-01-15T00:00:00", "not after the previous commit", "2022-02-01T10:00:00"):
            t.append(people([3]), timestamp="2022-01-15")
        with raises(logstore.TimestampError, "2022-02-01T10:00:00", "not after"):
            t.update(set={"score": "0"}, timestamp="2022-02-01T10:00:00")  # equal is not after
        with raises(logstore.TimestampError, "future"):
            t.delete(where="id = 1", timestamp=dt.datetime.now(UTC) + dt.timedelta(hours=1))


def test_create_in_the_future(store):
    future = dt.datetime.now(UTC) + dt.timedelta(days=1)
    with nothing_written(store):
        with raises(logstore.TimestampError, "future"):
            store.create_table("t", people([1]), timestamp=future)
    assert store.tables() == []


# --- data that does not fit -------------------------------------------------------------------------------------


def test_schema_mismatch_lists_differing_columns(store, table):
    bad = pa.table({"id": pa.array([9], pa.int64()), "name": pa.array([1], pa.int64()), "extra": ["x"]})
    with nothing_written(store, table):
        with pytest.raises(logstore.SchemaMismatchError) as info:
            table.append(bad)
        message = str(info.value)
        assert "'score'" in message and "missing" in message
        assert "'extra'" in message and "unexpected" in message
        assert "'id'" not in message
        with pytest.raises(logstore.SchemaMismatchError) as info:
            table.upsert(bad)
        assert "'score'" in str(info.value) and "'extra'" in str(info.value)
        with pytest.raises(logstore.SchemaMismatchError):
            table.overwrite(bad)


@pytest.mark.parametrize(
    "column, array",
    [
        ("id", pa.array(["9"], pa.string())),  # string into BIGINT
        ("id", pa.array([9.5], pa.float64())),  # float into BIGINT
        ("name", pa.array([True], pa.bool_())),  # bool into VARCHAR
    ],
)
def test_type_mismatch_names_the_column(store, table, column, array):
    columns = {"id": pa.array([9], pa.int64()), "name": pa.array(["n"]), "score": pa.array([1.0])}
    columns[column] = array
    with nothing_written(store, table):
        with pytest.raises(logstore.SchemaMismatchError) as info:
            table.append(pa.table(columns))
        assert repr(column) in str(info.value)
        assert [d for d in info.value.differences if repr(column) in d]


def test_null_keys_in_upsert_batch(store, table):
    with nothing_written(store, table):
        with raises(logstore.KeyViolationError, "null", "['id']"):
            table.upsert(people([4, None], ["a", "b"], [1.0, 2.0]))
        with raises(logstore.KeyViolationError, "null"):
            table.append(people([4, None], ["a", "b"], [1.0, 2.0]))


def test_duplicate_keys_in_upsert_batch(store, table):
    with nothing_written(store, table):
        with raises(logstore.KeyViolationError, "duplicate", "42"):
            table.upsert(people([42, 5, 42]))
        with raises(logstore.KeyViolationError, "duplicate", "42"):
            table.overwrite(people([42, 42]))


def test_append_existing_key(store, table):
    with nothing_written(store, table):
        with raises(logstore.KeyViolationError, "already in the table", "2"):
            table.append(people([2, 10]))


def test_upsert_without_key(store):
    t = store.create_table("plain", people([1, 2]))
    with nothing_written(store, t):
        with raises(logstore.KeyRequiredError, "upsert", "'plain'"):
            t.upsert(people([3]))


def test_update_of_unknown_or_key_column(store, table):
    with nothing_written(store, table):
        with raises(logstore.SchemaMismatchError, "'nope'"):
            table.update(set={"nope": "1"})
        with raises(logstore.InvalidExpressionError, "'id'"):
            table.update(set={"id": "id + 100"})


def test_bad_data_types(store, table):
    with nothing_written(store, table):
        with pytest.raises(logstore.InvalidInputError):
            table.append([{"id": 9}])
        with pytest.raises(logstore.InvalidInputError):
            table.append(people([9]), metadata="not a dict")
        with pytest.raises(logstore.InvalidInputError):
            table.append(people([9]), schema_mode="loose")


# --- SQL predicates and expressions -----------------------------------------------------------------------------

BAD_PREDICATES = [
    "id >",  # DuckDB cannot parse it
    "id = 1) OR (1=1",  # breaking out of the parentheses
    "nope = 1",  # unknown column
    "1=1; DROP TABLE x",  # a second statement
    "id = 1; COPY (SELECT 1) TO 'leak.csv'",
    "id IN (SELECT a FROM read_csv('/etc/passwd'))",  # a subquery calling a table function
    "(SELECT count(*) FROM read_text('/etc/hostname')) > 0",
    "EXISTS (FROM glob('*'))",
    "id IN (FROM read_parquet('x.parquet'))",
    "id = 1 UNION SELECT 1",
    "id = 1 LIMIT 1",
    "sum(id) > 1",  # aggregates and window functions are no predicates
    "row_number() OVER () = 1",
    "id = 1 --",
]


@pytest.mark.parametrize("predicate", BAD_PREDICATES)
def test_bad_predicates(store, table, predicate, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with nothing_written(store, table):
        for call in (
            lambda: table.read(where=predicate),
            lambda: table.to_polars(where=predicate),
            lambda: table.to_duckdb(where=predicate),
            lambda: table.delete(where=predicate),
            lambda: table.update(set={"score": "0"}, where=predicate),
        ):
            with pytest.raises(logstore.InvalidExpressionError) as info:
                call()
            assert predicate in str(info.value)
            assert info.value.expression == predicate
    assert not (tmp_path / "leak.csv").exists()


@pytest.mark.parametrize("expression", ["score +", "nope + 1", "(SELECT 1 FROM read_csv('/etc/passwd'))", "1; DROP TABLE x", "sum(score)"])
def test_bad_set_expressions(store, table, expression):
    with nothing_written(store, table):
        with pytest.raises(logstore.InvalidExpressionError) as info:
            table.update(set={"score": expression}, where="id = 1")
        assert expression in str(info.value)


def test_set_expression_that_fails_at_runtime(store, table):
    with nothing_written(store, table):
        with pytest.raises(logstore.InvalidExpressionError) as info:
            table.update(set={"score": "CAST(name AS INTEGER)"})  # 'n1' is no integer
        assert "CAST(name AS INTEGER)" in str(info.value)


def test_unknown_read_column(store, table):
    with nothing_written(store, table):
        with raises(logstore.SchemaMismatchError, "'nope'"):
            table.read(columns=["id", "nope"])
        with pytest.raises(logstore.InvalidInputError):
            table.read(columns="id")
        with raises(logstore.InvalidInputError, "at least one column"):
            table.read(columns=[])


def test_unknown_property(store, table):
    with nothing_written(store, table):
        with raises(logstore.InvalidInputError, "'snapshot_every'"):
            table.set_properties(snapshot_every=3)
        with raises(logstore.InvalidInputError, "0"):
            table.set_properties(snapshot_commits=0)
    with nothing_written(store, table):
        with raises(logstore.InvalidInputError, "'bogus'"):
            store.create_table("other", people([1]), properties={"bogus": 1})
