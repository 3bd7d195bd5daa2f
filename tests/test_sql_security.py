"""What SQL through logstore may reach: no extension installed or loaded behind a query's back, no file outside the
store unless allow_files=True (logstore/connection.py, logstore/sql.py), and lazy reads whose files vacuum removed
report it as VersionFilesGoneError (logstore/lazy.py)."""

from __future__ import annotations

import os

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

import logstore
from logstore import compaction, connection, testing
from logstore.errors import CorruptionError, FileAccessError, InvalidExpressionError, SQLError, VersionFilesGoneError
from logstore_cli.main import cli

NO_SNAPSHOTS = {"snapshot_fraction": 1000.0, "snapshot_commits": 100_000}


@pytest.fixture
def db(tmp_path, no_fsync):
    store = logstore.init(tmp_path / "store")
    t = store.create_table("t", pa.table({"id": [1, 2], "kind": ["a", "b"]}), key="id", properties=NO_SNAPSHOTS)
    t.append(pa.table({"id": [3], "kind": ["c"]}))
    return store


@pytest.fixture
def outside(tmp_path):
    """A CSV file outside the store."""
    path = tmp_path / "labels.csv"
    path.write_text("id,label\n1,one\n3,three\n")
    return str(path)


# --- 12: no extension is installed or loaded by a query ---------------------------------------------------------


def _extension_settings(con) -> tuple:
    return con.execute(
        "SELECT current_setting('autoinstall_known_extensions'), current_setting('autoload_known_extensions')"
    ).fetchall()[0]


def test_every_connection_refuses_to_autoinstall_or_autoload(db):
    db.table("t").update(set={"kind": "upper(kind)"}, where="id = 1")
    db.table("t").update(set={"kind": "lower(kind)"}, where="id = 1")  # the second write builds the head cache
    connections = [testing.connection(db), testing.head_cache(db).con, db.connect(), db.connect(allow_files=True), connection.new()]
    assert [_extension_settings(con) for con in connections] == [(False, False)] * len(connections)
    query = "SELECT current_setting('autoinstall_known_extensions') OR current_setting('autoload_known_extensions')"
    assert db.sql(query).fetchall() == db.sql(query, allow_files=True).fetchall() == [(False,)]


def test_every_duckdb_connection_goes_through_connection_new(db, outside, monkeypatch):
    made = []
    real = duckdb.connect

    def recording(*args, **kwargs):
        made.append(kwargs.get("config") or {})
        return real(*args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", recording)
    fresh = logstore.open(db.path)  # a new Store: new thread-local connections
    t = fresh.create_table("u", schema="id BIGINT, kind VARCHAR", key="id")
    t.append(pa.table({"id": [1], "kind": ["x"]}))
    logstore.read_file(outside)
    t.read(where="id > 0")
    fresh.sql("SELECT * FROM u").fetchall()
    fresh.connect()
    assert t.verify().ok
    assert len(made) >= 4
    assert all(config == connection.NO_EXTENSIONS for config in made), made


@pytest.mark.parametrize("predicate", ["stem(kind, 'english') = 'a'", "sql_auto_complete('x') IS NULL"])
def test_predicate_naming_an_unloaded_extension_is_refused_not_installed(db, predicate):
    with pytest.raises(InvalidExpressionError) as info:
        db.table("t").read(where=predicate)
    assert "automatically install" not in info.value.reason and "extension" in info.value.reason
    with pytest.raises(InvalidExpressionError):
        db.table("t").update(set={"kind": "stem(kind, 'english')"})
    with pytest.raises(SQLError) as info:
        db.sql("SELECT stem('running', 'english')")
    assert "automatically install" not in str(info.value) and "fts" in str(info.value)


# --- 13: SQL sees the store's tables only, unless allow_files=True ------------------------------------------------


def _refused(db, query: str) -> FileAccessError:
    with pytest.raises(FileAccessError) as info:
        db.sql(query).fetchall()
    assert isinstance(info.value, SQLError) and "allow_files=True" in str(info.value) and "--allow-files" in str(info.value)
    return info.value


def test_files_outside_the_store_are_refused(db, outside):
    assert _refused(db, "SELECT * FROM read_text('/etc/passwd')").path == "/etc/passwd"
    assert _refused(db, "SELECT * FROM glob('/*')").path == "/*"
    assert _refused(db, f"SELECT * FROM read_csv('{outside}')").path == outside
    _refused(db, f"SELECT * FROM '{outside}'")
    _refused(db, f"SELECT * FROM read_csv('{db.path}/../labels.csv')")  # no way out of the store by '..'
    _refused(db, f"SELECT count(*) FROM table_changes('t', (SELECT count(*) FROM read_text('{outside}')))")
    _refused(db, "SELECT * FROM read_parquet('https://example.com/x.parquet')")


def test_allow_files_restores_file_access(db, outside):
    got = db.sql(f"SELECT c.label, t.kind FROM read_csv('{outside}') c JOIN t USING (id) ORDER BY 1", allow_files=True)
    assert got.fetchall() == [("one", "a"), ("three", "c")]
    assert db.sql(f"SELECT count(*) FROM '{outside}'", allow_files=True).fetchall() == [(2,)]
    _refused(db, f"SELECT count(*) FROM '{outside}'")  # and the next query without it is confined again


@pytest.mark.parametrize(
    "statement",
    ["SET enable_external_access = true", "SET allowed_directories = ['/']", "SET allowed_paths = ['/etc/passwd']",
     "SET lock_configuration = false", "RESET enable_external_access", "SET autoload_known_extensions = true"],
)
def test_a_query_cannot_set_access_back(db, statement):
    with pytest.raises(SQLError):
        db.sql(statement)
    rel = db.sql("SELECT * FROM t")  # a relation carries the store's connection: it is locked as well
    with pytest.raises(duckdb.Error, match="locked"):
        rel.query("x", statement)
    with pytest.raises(duckdb.Error, match="locked"):
        testing.connection(db).execute(statement)
    _refused(db, "SELECT * FROM read_text('/etc/passwd')")


def test_store_reads_and_writes_still_work(db):
    t = db.table("t")
    for i in range(3):  # updates (the second builds the head cache), a snapshot through COPY into _staging/
        t.update(set={"kind": f"kind || '{i}'"}, where="id = 3")
    assert t.snapshot() == t.version
    assert t.read(where="id = 3").column("kind").to_pylist() == ["c012"]
    assert t.read(version=1).num_rows == 3 and t.to_polars(version=0).height == 2
    assert db.sql("SELECT count(*) FROM t AS OF VERSION 0 JOIN t USING (id)").fetchall() == [(2,)]
    assert db.sql("SELECT count(*) FROM table_changes('t', 1, 2)").fetchall()[0][0] > 0
    assert t.verify(full=True).ok


def test_connect_reads_only_its_views(db, outside):
    con = db.connect()
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(3,)]
    for query in (f"SELECT * FROM read_csv('{outside}')", "SELECT * FROM read_text('/etc/passwd')",
                  f"SELECT * FROM glob('{db.path}/*')", f"SELECT * FROM read_text('{db.path}/logstore.json')"):
        with pytest.raises(duckdb.PermissionException):
            con.sql(query).fetchall()
    with pytest.raises(duckdb.Error):  # not even over the files the views read
        con.execute(f"COPY (SELECT 1 AS id) TO '{db.path}/tables/t/_log/x.json'")
    for statement in ("SET enable_external_access = true", "SET allowed_directories = ['/']"):
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute(statement)
    assert not os.path.exists(os.path.join(db.path, "tables", "t", "_log", "x.json"))
    assert db.connect(allow_files=True).sql(f"SELECT count(*) FROM '{outside}'").fetchall() == [(2,)]


def run_sql(store, *args):
    return CliRunner().invoke(cli, ["--store", store.path, "sql", *args])


def test_cli_sql_refuses_files_without_allow_files(db, outside):
    result = run_sql(db, "SELECT * FROM read_text('/etc/passwd')")
    assert result.exit_code == 1 and "file access refused" in result.output and "--allow-files" in result.output
    assert "root:" not in result.output
    result = run_sql(db, f"SELECT label FROM '{outside}' ORDER BY id", "--format", "csv", "--allow-files")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["label", "one", "three"]


# --- 11: lazy reads whose files vacuum removed ---------------------------------------------------------------------


@pytest.fixture
def compacted_away(db, monkeypatch):
    """Lazy reads of version 1, made before a compaction whose replaced change files vacuum then removed."""
    monkeypatch.setattr(compaction, "FANOUT", 3)
    t = db.table("t")
    lazy = {"relation": t.to_duckdb(version=1), "frame": t.scan_polars(version=1)}
    lazy["derived"] = lazy["relation"].filter("id > 1").limit(5)
    t.update(set={"kind": "'z'"}, where="id = 1")  # version 2 completes the block 0..2
    t.compact()  # (if the commit did not compact it already)
    assert compaction.load(testing.storage(t), testing.prefix(t), 0, 2) is not None
    assert any(p.startswith("tables/t/data/") for p in t.vacuum(dry_run=False, older_than=0).paths)
    return t, lazy


def _gone(call) -> VersionFilesGoneError:
    with pytest.raises(VersionFilesGoneError) as info:
        call()
    error = info.value
    assert isinstance(error, CorruptionError) and (error.table, error.version) == ("t", 1)
    assert error.path.startswith("data/") and "vacuum" in str(error) and "'t'" in str(error)
    return error


def test_to_duckdb_after_vacuum_raises_version_files_gone(compacted_away):
    t, lazy = compacted_away
    rel = lazy["relation"]
    assert isinstance(rel, duckdb.DuckDBPyRelation)
    for call in (rel.fetchall, rel.to_arrow_table, rel.df, rel.pl, rel.arrow, lazy["derived"].fetchall,
                 lambda: rel.aggregate("count(*)").fetchall(), lambda: rel.pl(lazy=True).collect()):
        _gone(call)
    assert sorted(t.to_duckdb(version=1).fetchall()) == [(1, "a"), (2, "b"), (3, "c")]  # a new plan reads


def test_scan_polars_after_vacuum_raises_version_files_gone(compacted_away):
    t, lazy = compacted_away
    _gone(lazy["frame"].collect)
    _gone(lambda: lazy["frame"].filter(pl.col("id") > 1).select("kind").collect(engine="streaming"))
    assert t.scan_polars(version=1).filter(pl.col("id") > 1).collect()["kind"].to_list() == ["b", "c"]


def test_lazy_reads_still_compose(db):
    t = db.table("t")
    rel = t.to_duckdb(version=1, columns=["id"])
    assert rel.filter("id > 1").order("id").fetchall() == [(2,), (3,)]
    lf = t.scan_polars(where="id < 3")
    assert lf.select("kind").sort("kind").collect()["kind"].to_list() == ["a", "b"]
    assert lf.filter(pl.col("kind") == "b").collect().to_dicts() == [{"id": 2, "kind": "b"}]
