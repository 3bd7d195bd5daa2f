"""store.sql and store.connect: SQL time travel over logstore tables (issue 4)."""

from __future__ import annotations

import datetime as dt
import gc

import pyarrow as pa
import pytest

import logstore
from logstore import planner
from logstore import sql as lsql
from logstore.errors import FileAccessError, ReadOnlyError, SQLError, SQLSyntaxError

from conftest import file_state

# versions of table t: 0 = {1 a, 2 b}; 1 = +{3 c}; 2 = 1 -> A; 3 = -2
STATES = {
    0: [(1, "a"), (2, "b")],
    1: [(1, "a"), (2, "b"), (3, "c")],
    2: [(1, "A"), (2, "b"), (3, "c")],
    3: [(1, "A"), (3, "c")],
}


def build(store):
    t = store.create_table("t", pa.table({"id": [1, 2], "name": ["a", "b"]}), key="id", timestamp="2022-01-01")
    t.append(pa.table({"id": [3], "name": ["c"]}), timestamp="2022-02-01")
    t.update({"name": "upper(name)"}, "id = 1", timestamp="2022-03-01")
    t.delete("id = 2", timestamp="2022-04-01")
    t.tag("v1.0", 1)
    store.create_table("my-table", pa.table({"k": [10, 20]}), timestamp="2022-01-01")
    store.table("my-table").append(pa.table({"k": [30]}), timestamp="2022-01-02")
    store.create_table("sales.2023", pa.table({"amount": [1.5]}))
    return store


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """One store for the whole module: these tests only read (store.sql refuses writes)."""
    import logstore.storage

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logstore.storage, "_fsync", lambda path: None)
        return build(logstore.init(tmp_path_factory.mktemp("sql") / "store"))


@pytest.fixture
def fresh(store, no_fsync):
    """A store of its own, for the tests that commit."""
    return build(store)


def rows(store, query, params=None):
    return store.sql(query, params).fetchall()


# --- every form, alone, with and without an alias ----------------------------------------------------------

FORMS = [
    ("t AS OF VERSION 1", 1),
    ("t as of version 1", 1),
    ("t VERSION AS OF 1", 1),
    ("t AT (VERSION => 1)", 1),
    ("t AT (VERSION => 0)", 0),
    ("t AS OF TIMESTAMP '2022-02-15'", 1),
    ("t TIMESTAMP AS OF '2022-02-15'", 1),
    ("t TIMESTAMP AS OF '2022-03-01 06:00:00+08'", 1),  # 2022-02-28 22:00 UTC, before version 2
    ("t FOR SYSTEM_TIME AS OF '2022-03-15'", 2),
    ("t FOR SYSTEM_TIME AS OF TIMESTAMP '2022-01-15'", 0),
    ("t AT (TIMESTAMP => TIMESTAMP '2022-02-15')", 1),
    ("t AS OF TIMESTAMP DATE '2022-03-02'", 2),
    ("t AS OF VERSION 'v1.0'", 1),
    ("t VERSION AS OF 'v1.0'", 1),
    ("t AT (VERSION => 'v1.0')", 1),
    ("t AT (TIMESTAMP => TIMESTAMP '2022-02-01' + INTERVAL 1 MONTH)", 2),
    ("t AS OF TIMESTAMP ('2022-03-01'::TIMESTAMP - INTERVAL 1 DAY)", 1),
]


@pytest.mark.parametrize("ref,version", FORMS)
@pytest.mark.parametrize("alias,qualifier", [("", "t"), (" x", "x"), (" AS x", "x"), (' AS "the alias"', '"the alias"')])
def test_each_form_with_and_without_alias(db, ref, version, alias, qualifier):
    got = rows(db, f"SELECT {qualifier}.id, {qualifier}.name FROM {ref}{alias} ORDER BY {qualifier}.id")
    assert got == STATES[version]


def test_bare_name_is_latest_version(db):
    assert rows(db, "SELECT * FROM t ORDER BY id") == STATES[3]
    assert rows(db, "FROM t SELECT count(*)") == [(2,)]


def test_column_aliases_after_the_clause(db):
    assert rows(db, "SELECT x.a, x.b FROM t AS OF VERSION 0 AS x(a, b) ORDER BY a") == STATES[0]


def test_all_forms_mixed_in_one_query(db):
    query = """
        SELECT
          (SELECT count(*) FROM t AS OF VERSION 0) AS v0,
          (SELECT count(*) FROM t VERSION AS OF 'v1.0' tagged) AS v1,
          (SELECT count(*) FROM t AT (VERSION => 2) AS a JOIN t TIMESTAMP AS OF '2022-03-15' b USING (id)) AS v2,
          (SELECT count(*) FROM t FOR SYSTEM_TIME AS OF '2022-04-15') AS v3,
          (SELECT count(*) FROM t AS OF TIMESTAMP '2022-01-15' x, t AT (TIMESTAMP => TIMESTAMP '2022-01-20') y) AS cross_v0,
          (SELECT count(*) FROM t) AS latest,
          (SELECT count(*) FROM "my-table" AS OF VERSION 0) AS other
    """
    assert rows(db, query) == [(2, 3, 3, 2, 4, 2, 2)]


def test_self_join_across_versions(db):
    got = rows(db, "SELECT id, a.name, b.name FROM t AS OF VERSION 1 a JOIN t AS OF VERSION 3 b USING (id) WHERE a.name <> b.name")
    assert got == [(1, "a", "A")]
    changed = "SELECT id FROM t AS OF VERSION 1 a FULL JOIN t AT (VERSION => 3) b USING (id) WHERE a.name IS DISTINCT FROM b.name ORDER BY id"
    assert rows(db, changed) == [(1,), (2,)]


# --- text that must never be rewritten ---------------------------------------------------------------------


def test_clause_inside_string_and_comment_is_untouched(db):
    query = (
        "SELECT 'AS OF VERSION 4' AS s, 't AT (VERSION => 4)' AS u, count(*) AS n -- t AS OF VERSION 4\n"
        "FROM t /* t AS OF VERSION 4 */ WHERE name <> 't AS OF VERSION 4'"
    )
    assert rows(db, query) == [("AS OF VERSION 4", "t AT (VERSION => 4)", 2)]


def test_clause_inside_quoted_identifier_is_untouched(db):
    relation = db.sql('SELECT id AS "t AS OF VERSION 4" FROM t AS OF VERSION 0 ORDER BY 1')
    assert relation.columns == ["t AS OF VERSION 4"]
    assert relation.fetchall() == [(1,), (2,)]


def test_string_escapes_next_to_a_clause(db):
    got = rows(db, "SELECT 'it''s AS OF VERSION 9', count(*) FROM t AS OF VERSION 0 x WHERE x.name <> 'é AS OF VERSION 9'")
    assert got == [("it's AS OF VERSION 9", 2)]


def test_quoted_table_names(db):
    assert rows(db, 'SELECT k FROM "my-table" ORDER BY k') == [(10,), (20,), (30,)]
    assert rows(db, 'SELECT k FROM "my-table" AS OF VERSION 0 ORDER BY k') == [(10,), (20,)]
    assert rows(db, 'SELECT m.k FROM "my-table" AT (VERSION => 0) m ORDER BY 1') == [(10,), (20,)]
    assert rows(db, 'SELECT amount FROM "sales.2023" VERSION AS OF 0') == [(1.5,)]
    assert rows(db, 'SELECT count(*) FROM "t" AS OF VERSION 1') == [(3,)]


# --- SQL around the references -----------------------------------------------------------------------------


def test_cte_shadows_a_table_name(db):
    assert rows(db, "WITH t AS (SELECT 42 AS id) SELECT * FROM t") == [(42,)]
    # a pinned reference always means the logstore table, even inside the query that shadows the name
    query = "WITH t AS (SELECT 42 AS id) SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM t AS OF VERSION 1)"
    assert rows(db, query) == [(1, 3)]
    assert rows(db, "WITH old AS (SELECT * FROM t AS OF VERSION 0) SELECT count(*) FROM old JOIN t USING (id)") == [(1,)]


def test_union_subqueries_and_functions(db):
    assert rows(db, "SELECT id FROM t AS OF VERSION 1 EXCEPT SELECT id FROM t ORDER BY id") == [(2,)]
    assert rows(db, "SELECT id FROM t AS OF VERSION 0 UNION SELECT id FROM t VERSION AS OF 2 ORDER BY id") == [(1,), (2,), (3,)]
    assert rows(db, "SELECT name FROM t WHERE id IN (SELECT id FROM t AS OF VERSION 0) ORDER BY 1") == [("A",)]
    assert rows(db, "SELECT list(name ORDER BY id), string_agg(upper(name), '' ORDER BY id) FROM t AS OF VERSION 1") == [(["a", "b", "c"], "ABC")]
    assert rows(db, "SELECT r.range, t.name FROM range(1, 3) r LEFT JOIN t AS OF VERSION 0 ON r.range = t.id ORDER BY 1") == [(1, "a"), (2, "b")]
    assert rows(db, "SELECT count(*) FROM (SELECT * FROM t AS OF VERSION 2) sub WHERE sub.name = 'A'") == [(1,)]
    assert rows(db, "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'upper'")[0][0] >= 1


def test_duckdb_table_functions_and_files_pass_through(db, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("id,label\n1,one\n3,three\n")
    quoted = str(path).replace("'", "''")
    query = f"SELECT c.label, t.name FROM read_csv('{quoted}') c JOIN t AS OF VERSION 2 USING (id) ORDER BY 1"
    with pytest.raises(FileAccessError, match="allow_files"):  # files outside the store only with the opt-in
        db.sql(query).fetchall()
    assert db.sql(query, allow_files=True).fetchall() == [("one", "A"), ("three", "c")]
    assert db.sql(f"SELECT count(*) FROM '{quoted}'", allow_files=True).fetchall() == [(2,)]


def test_parameters(db):
    assert rows(db, "SELECT id FROM t AS OF VERSION ? WHERE id > ? ORDER BY id", [0, 1]) == [(2,)]
    assert rows(db, "SELECT count(*) FROM t AT (VERSION => $v) WHERE id >= $low", {"v": 1, "low": 2}) == [(2,)]
    assert rows(db, "SELECT count(*) FROM t TIMESTAMP AS OF ?", ["2022-02-15"]) == [(3,)]
    assert rows(db, "SELECT count(*) FROM t AS OF VERSION ?", ["v1.0"]) == [(3,)]


def test_relation_api(db):
    relation = db.sql("SELECT id, name FROM t AS OF VERSION 1 ORDER BY id")
    assert relation.to_arrow_table().to_pydict() == {"id": [1, 2, 3], "name": ["a", "b", "c"]}
    assert relation.df()["name"].tolist() == ["a", "b", "c"]
    assert relation.pl()["id"].to_list() == [1, 2, 3]
    assert relation.fetchall() == STATES[1]


def test_relation_outlives_its_cursor_and_later_commits(fresh):
    relation = fresh.sql("SELECT count(*) FROM t")
    gc.collect()
    fresh.table("t").append(pa.table({"id": [9], "name": ["z"]}))
    assert relation.fetchall() == [(2,)]  # resolved when the query was issued
    assert rows(fresh, "SELECT count(*) FROM t") == [(3,)]


def test_only_named_versions_are_planned(db, monkeypatch):
    planned = []
    original = planner.scan_plan

    def spy(files, version, **kw):
        planned.append((files.name, version))
        return original(files, version, **kw)

    monkeypatch.setattr(planner, "scan_plan", spy)
    rows(db, "SELECT count(*) FROM t AS OF VERSION 0 a JOIN t AS OF VERSION 0 b USING (id) JOIN t AT (VERSION => 2) c USING (id)")
    assert sorted(planned) == [("t", 0), ("t", 2)]
    planned.clear()
    rows(db, 'SELECT count(*) FROM "my-table"')
    assert planned == [("my-table", 1)]


def test_projection_and_filter_reach_the_parquet_scan(db):
    plan = db.sql("SELECT name FROM t AS OF VERSION 1 WHERE id > 1").explain()
    assert "READ_PARQUET" in plan.upper()
    assert "id > 1" in plan or "id>1" in plan


# --- errors ------------------------------------------------------------------------------------------------


def test_unknown_table_names_the_known_ones(db):
    with pytest.raises(logstore.TableNotFoundError) as e:
        db.sql("SELECT * FROM nope")
    assert "my-table" in str(e.value) and "t" in e.value.known
    with pytest.raises(logstore.TableNotFoundError):
        db.sql("SELECT * FROM nope AS OF VERSION 1")
    with pytest.raises(logstore.TableNotFoundError):  # time travel applies to tables, not CTEs
        db.sql("WITH c AS (SELECT 1) SELECT * FROM c AS OF VERSION 1")


def test_unknown_version_names_the_latest(db):
    with pytest.raises(logstore.VersionNotFoundError) as e:
        db.sql("SELECT * FROM t AS OF VERSION 7")
    assert e.value.latest == 3 and "latest version is 3" in str(e.value)
    with pytest.raises(logstore.VersionNotFoundError):
        db.sql("SELECT * FROM t AT (VERSION => -1)")


def test_unknown_tag(db):
    with pytest.raises(logstore.TagNotFoundError) as e:
        db.sql("SELECT * FROM t AS OF VERSION 'v9'")
    assert "v1.0" in str(e.value)


def test_timestamp_before_first_commit_or_in_the_future(db):
    with pytest.raises(logstore.TimestampError, match="before the first commit"):
        db.sql("SELECT * FROM t AS OF TIMESTAMP '2021-12-31'")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%d")
    with pytest.raises(logstore.TimestampError, match="in the future"):
        db.sql(f"SELECT * FROM t FOR SYSTEM_TIME AS OF '{future}'")
    with pytest.raises(logstore.TimestampError):
        db.sql("SELECT * FROM t TIMESTAMP AS OF 'not a time'")


def test_syntax_errors_carry_duckdbs_message_and_position(db):
    query = "SELECT * FROM t AS OF VERSION 1 a WHERE id = = 1"
    with pytest.raises(SQLSyntaxError) as e:
        db.sql(query)
    assert isinstance(e.value, logstore.LogstoreError)
    assert "syntax error" in str(e.value) and e.value.position == query.index("= 1")
    query = "SELECT 'é' AS e FROM t AT (VERSION => 1) x WHERE ,"
    with pytest.raises(SQLSyntaxError) as e:
        db.sql(query)
    assert e.value.position == query.index(",")
    with pytest.raises(SQLSyntaxError) as e:
        db.sql("SELEC 1")
    assert e.value.position == 0


def test_binder_errors_are_sql_errors(db):
    with pytest.raises(SQLError, match="nope"):
        db.sql("SELECT nope FROM t AS OF VERSION 1")


def test_other_refusals(db):
    with pytest.raises(SQLError, match="one statement"):
        db.sql("SELECT 1; SELECT 2")
    with pytest.raises(SQLError, match="not supported"):
        db.sql("SET threads = 1")
    with pytest.raises(SQLError):
        db.sql("SELECT * FROM main.t AS OF VERSION 1")
    with pytest.raises(SQLError):
        db.sql(42)


@pytest.mark.parametrize(
    "statement,kind",
    [
        ("INSERT INTO t VALUES (9, 'z')", "INSERT"),
        ("UPDATE t SET name = 'z'", "UPDATE"),
        ("DELETE FROM t WHERE id = 1", "DELETE"),
        ("CREATE TABLE copy AS SELECT * FROM t", "CREATE"),
        ("CREATE VIEW t2 AS SELECT * FROM t AS OF VERSION 1", "CREATE"),
        ("DROP TABLE t", "DROP"),
        ("ALTER TABLE t ADD COLUMN z INT", "ALTER"),
        ("ATTACH 'other.db' AS other", "ATTACH"),
        ("COPY t TO 'out.csv'", "COPY"),
        ("COPY (SELECT * FROM t AS OF VERSION 1) TO 'out.parquet'", "COPY"),
    ],
)
def test_write_statements_are_refused(db, statement, kind):
    before = file_state(db.path)
    with pytest.raises(ReadOnlyError) as e:
        db.sql(statement)
    assert e.value.statement == kind and "read-only" in str(e.value)
    assert file_state(db.path) == before and db.table("t").version == 3


def test_write_error_names_the_table(db):
    with pytest.raises(ReadOnlyError, match="'t'"):
        db.sql("INSERT INTO t VALUES (9, 'z')")


# --- connect() and the table-function extension point ------------------------------------------------------


def test_connect_has_a_view_per_table_at_latest(db):
    con = db.connect()
    assert con.sql("SELECT * FROM t ORDER BY id").fetchall() == STATES[3]
    assert con.sql('SELECT count(*) FROM "my-table"').fetchall() == [(3,)]
    assert sorted(r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()) == sorted(db.tables())


def test_registered_table_function(db, monkeypatch):
    calls = []

    def versions_of(store, name, *, upto=None):
        calls.append((name, upto))
        table = store.table(name)
        latest = table.version if upto is None else upto
        return pa.table({"version": list(range(latest + 1))})

    def as_sql(store, name, version):
        return lsql.version_sql(store.table(name), version)

    monkeypatch.setitem(lsql.TABLE_FUNCTIONS, "versions_of", versions_of)
    monkeypatch.setitem(lsql.TABLE_FUNCTIONS, "pinned", as_sql)
    assert rows(db, "SELECT count(*) FROM versions_of('t')") == [(4,)]
    assert rows(db, "SELECT max(v.version) FROM versions_of('t', upto := 1 + 1) AS v") == [(2,)]
    assert rows(db, "SELECT p.name FROM pinned('t', ?) p WHERE p.id = 1", [1]) == [("a",)]
    joined = "SELECT count(*) FROM versions_of('t') v JOIN t AS OF VERSION 1 ON v.version = t.id"
    assert rows(db, joined) == [(3,)]
    assert calls == [("t", None), ("t", 2), ("t", None)]


def test_canonicalize_only_rewrites_clause_tokens():
    raw = b"SELECT 'AS OF VERSION 1' FROM t AS OF VERSION 1 a -- t AS OF VERSION 2\n"
    canonical, clauses, splices = lsql.canonicalize(raw)
    assert canonical == b"SELECT 'AS OF VERSION 1' FROM t  a AT (VERSION => 1) -- t AS OF VERSION 2\n"
    assert len(clauses) == 1 and len(splices) == 1
    assert canonical[clauses[0].value_start : clauses[0].value_end] == b"1"


def test_a_snapshot_with_an_unreadable_footer_is_skipped(fresh, monkeypatch):
    """With read checks off, only opening the footer can find the damage: SQL skips the snapshot, as reads do."""
    import os
    import warnings

    t = fresh.table("t")
    expected = t.read().to_pylist()
    t.snapshot()
    folder = os.path.join(fresh.path, "tables", "t", "snapshots")
    (name,) = os.listdir(folder)
    path = os.path.join(folder, name)
    data = bytearray(open(path, "rb").read())
    data[-8:-4] = b"\xff\xff\xff\x7f"  # the footer length (before the closing PAR1): same size, unreadable
    open(path, "wb").write(bytes(data))
    monkeypatch.setenv("LOGSTORE_VERIFY_READS", "none")
    reopened = logstore.open(fresh.path)  # a new DuckDB database: no Parquet footer cached from writing it
    with pytest.warns(RuntimeWarning, match="snapshot"):
        got = reopened.sql("SELECT * FROM t ORDER BY id").to_arrow_table().to_pylist()
    assert got == sorted(expected, key=lambda r: r["id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert reopened.sql(f"SELECT count(*) FROM t AS OF VERSION {t.version}").fetchall() == [(len(expected),)]
