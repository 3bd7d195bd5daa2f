"""The `logstore` command line through click's CliRunner: every command, output format and error path."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import logstore
import logstore.author
from logstore_cli import output
from logstore_cli.main import cli

CSV = "id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cy,3.5\n"
COMMANDS = sorted(cli.commands)  # every command the CLI has: a new one without help or an example fails below


@pytest.fixture(autouse=True)
def _fast(cli_env, monkeypatch):
    """The CLI tests' environment (conftest.cli_env), with colour decided by the terminal alone."""
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A working directory holding people.csv, with the current directory set to it."""
    (tmp_path / "people.csv").write_text(CSV)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run(runner, home):
    """Invoke the CLI against the store in `home`/.logstore (created by the `store` fixture or by the test)."""

    def invoke(*args, input=None, env=None):
        return runner.invoke(cli, [str(a) for a in args], input=input, env=env)

    return invoke


def _build(root, name, *commands):
    """Run CLI commands against a fresh store under root/name; return the store directory (a template to copy)."""
    store_dir = root / name / ".logstore"
    (root / "people.csv").write_text(CSV)
    runner = CliRunner()
    for args in (["init"], *commands):
        full = ["--store", str(store_dir), *[str(a) for a in args]]
        if args[0] not in ("init", "tag") and "--author" not in args:
            full += ["--author", "tester"]
        result = runner.invoke(cli, full)
        assert result.exit_code == 0, result.output
    return store_dir


@pytest.fixture(scope="session")
def templates(tmp_path_factory):
    """Stores built once per session and copied into each test: commits are the slow part of these tests."""
    import logstore.storage

    saved = logstore.storage._fsync
    logstore.storage._fsync = lambda path: None
    try:
        root = tmp_path_factory.mktemp("templates")
        create = ["create", "people", root / "people.csv", "--key", "id", "-m", "first import", "--timestamp", "2021-01-01"]
        return {
            "people": _build(root, "people", create),
            "history": _build(
                root,
                "history",
                create,
                ["update", "people", "--set", "name=upper(name)", "--where", "id = 1", "--timestamp", "2021-06-01", "-m", "caps", "--author", "ada"],
                ["delete", "people", "--where", "id = 3", "--timestamp", "2022-03-01"],
                ["tag", "people", "v1", "--version", "1"],
            ),
        }
    finally:
        logstore.storage._fsync = saved


def _copy(template, home):
    shutil.copytree(template, home / ".logstore")
    return logstore.open(home / ".logstore").table("people")


@pytest.fixture
def people(templates, home):
    """A store with table `people` (key id) created from CSV at 2021-01-01 by tester: version 0."""
    return _copy(templates["people"], home)


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def fails(result, code: int, *fragments: str):
    assert result.exit_code == code, (result.exit_code, result.output)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    if code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.output
    return result


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


# --- help ------------------------------------------------------------------------------------------------------


def test_commands_are_all_of_the_cli():
    assert len(COMMANDS) >= 23
    assert {"repair", "sql", "verify", "vacuum", "diff", "changes", "compact", "init", "checkout"} <= set(COMMANDS)


def test_help_lists_every_command(run):
    result = ok(run("--help"))
    for name in COMMANDS:
        assert f"  {name} " in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(run, name):
    lines = [line.strip() for line in ok(run(name, "--help")).output.splitlines()]
    assert any(line.startswith("Example") for line in lines), lines  # an "Example:" (or "Examples:") line
    assert any(line.startswith(f"logstore {name}") or f"| logstore {name}" in line for line in lines), lines


def test_version(run):
    assert logstore.__version__ in ok(run("--version")).output


def test_unknown_command_is_a_usage_error(run):
    assert run("frobnicate").exit_code == 2


# --- init and store discovery ------------------------------------------------------------------------------


def test_init_creates_dot_logstore_in_the_current_directory(run, home):
    result = ok(run("init"))
    assert (home / ".logstore" / "logstore.json").exists()
    assert str(home / ".logstore") in result.output


def test_init_path(run, home):
    ok(run("init", "sub/dir"))
    assert (home / "sub" / "dir" / ".logstore" / "logstore.json").exists()


def test_init_with_store_option_creates_exactly_there(run, home):
    ok(run("--store", home / "elsewhere", "init"))
    assert (home / "elsewhere" / "logstore.json").exists()


def test_init_twice_fails(run):
    ok(run("init"))
    fails(run("init"), 1, "error: a store already exists")


def test_store_found_from_a_subdirectory(run, people, home, monkeypatch):
    (home / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(home / "a" / "b")
    assert "people" in ok(run("tables")).output


def test_store_from_environment_variable(run, people, home, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert "people" in ok(run("tables", env={"LOGSTORE_DIR": str(home / ".logstore")})).output


def test_store_option_may_name_the_directory_holding_dot_logstore(run, people, home, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert "people" in ok(run("--store", home, "tables")).output


def test_no_store_found(run, home):
    fails(run("tables"), 1, "no logstore store in", "logstore init")


def test_store_option_pointing_nowhere(run, home):
    fails(run("--store", home / "missing", "tables"), 1, "no logstore store at", "logstore init")


# --- tables ----------------------------------------------------------------------------------------------------


def test_tables_empty(run):
    ok(run("init"))
    assert "no tables" in ok(run("tables")).output
    assert json.loads(ok(run("tables", "--format", "json")).stdout) == []


def test_tables_formats(run, people):
    assert "people" in ok(run("tables")).output
    [entry] = json.loads(ok(run("tables", "-f", "json")).stdout)
    assert entry == {"name": "people", "version": 0, "num_rows": 3, "last_commit": "2021-01-01T00:00:00.000000Z"}
    parsed = list(csv.DictReader(io.StringIO(ok(run("tables", "-f", "csv")).stdout)))
    assert parsed == [{"name": "people", "version": "0", "num_rows": "3", "last_commit": "2021-01-01T00:00:00.000000Z"}]


# --- create ------------------------------------------------------------------------------------------------


def test_create_from_csv(run, home):
    ok(run("init"))
    ok(run("create", "people", "people.csv", "--key", "id", "-m", "first import", "--timestamp", "2021-01-01"))
    people = logstore.open(home / ".logstore").table("people")
    assert rows(people.read()) == [
        {"id": 1, "name": "ann", "score": 1.5},
        {"id": 2, "name": "bob", "score": 2.5},
        {"id": 3, "name": "cy", "score": 3.5},
    ]
    assert people.key == ("id",)
    first = people.history()[-1]
    assert (first.message, first.author, first.timestamp.year) == ("first import", "tester", 2021)


@pytest.mark.parametrize("suffix", ["parquet", "tsv", "json", "ndjson", "csv.gz", "jsonl"])
def test_create_from_every_input_format(run, home, suffix):
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["a", "b"]})
    path = home / f"in.{suffix}"
    if suffix == "parquet":
        pq.write_table(data, path)
    elif suffix == "tsv":
        path.write_text("id\tname\n1\ta\n2\tb\n")
    elif suffix == "json":
        path.write_text(json.dumps(data.to_pylist()))
    elif suffix in ("ndjson", "jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in data.to_pylist()))
    else:
        path.write_bytes(gzip.compress(b"id,name\n1,a\n2,b\n"))
    ok(run("init"))
    ok(run("create", "t", path))
    assert rows(logstore.open(home / ".logstore").table("t").read()) == data.to_pylist()


def test_create_from_stdin(run, home):
    ok(run("init"))
    ok(run("create", "t", "-", "--key", "id", input="id,kind\n1,x\n2,y\n"))
    assert rows(logstore.open(home / ".logstore").table("t").read()) == [{"id": 1, "kind": "x"}, {"id": 2, "kind": "y"}]


def test_create_from_stdin_with_file_format(run, home):
    ok(run("init"))
    ok(run("create", "t", "-", "--file-format", "ndjson", input='{"id": 1}\n{"id": 2}\n'))
    assert rows(logstore.open(home / ".logstore").table("t").read()) == [{"id": 1}, {"id": 2}]


def test_create_from_empty_stdin_fails(run):
    ok(run("init"))
    fails(run("create", "t", "-", input=""), 1, "no data on stdin")


def test_create_empty_with_schema_and_compound_key(run, home):
    ok(run("init"))
    result = ok(run("create", "t", "--schema", "a BIGINT, b VARCHAR, c DOUBLE", "--key", "a,b"))
    assert "t: version 0 CREATE +0 ~0 -0 (0 rows)" in result.output
    t = logstore.open(home / ".logstore").table("t")
    assert t.key == ("a", "b") and t.schema().names == ["a", "b", "c"] and t.read().num_rows == 0


def test_create_json_output(run):
    ok(run("init"))
    record = json.loads(ok(run("create", "t", "people.csv", "-f", "json", "--meta", "source=crm")).stdout)
    assert record["table"] == "t" and record["version"] == 0 and record["operation"] == "CREATE"
    assert record["rows_inserted"] == 3 and record["metadata"] == {"source": "crm"} and record["author"] == "tester"


def test_create_errors(run, people, home):
    fails(run("create", "t"), 2, "give a FILE")
    fails(run("create", "people", "people.csv"), 1, "table 'people' already exists")
    fails(run("create", "../evil", "people.csv"), 1, "invalid table name")
    fails(run("create", "t", "--schema", "id NOTATYPE"), 1, "cannot read schema")
    fails(run("create", "t", "people.csv", "--key", "nope"), 1, "key column 'nope' is not in the schema")
    fails(run("create", "t", "missing.csv"), 2, "does not exist")
    (home / "data.txt").write_text("x")
    fails(run("create", "t", "data.txt"), 1, "cannot tell the format")
    (home / "bad.parquet").write_text("not parquet")
    fails(run("create", "t", "bad.parquet"), 1, "cannot read", "PARQUET")
    assert logstore.open(home / ".logstore").tables() == ["people"]


# --- writes --------------------------------------------------------------------------------------------------


def test_append_several_files_is_one_commit(run, people, home):
    (home / "a.csv").write_text("id,name,score\n4,dee,4.5\n")
    (home / "b.csv").write_text("id,name,score\n5,eve,\n")
    result = ok(run("append", "people", "a.csv", "b.csv", "-m", "two files"))
    assert "people: version 1 APPEND +2 ~0 -0 (5 rows)" in result.output
    assert people.version == 1
    assert rows(people.read(where="id >= 4")) == [{"id": 4, "name": "dee", "score": 4.5}, {"id": 5, "name": "eve", "score": None}]


def test_append_from_stdin(run, people):
    ok(run("append", "people", "-", input="id,name,score\n9,zed,9.0\n"))
    assert people.read(where="id = 9").num_rows == 1


def test_append_csv_columns_take_the_table_types(run, people):
    """An all-empty CSV column would be inferred as text; the table's schema fixes it to DOUBLE."""
    ok(run("append", "people", "-", input="score,id,name\n,7,g\n"))
    assert rows(people.read(where="id = 7")) == [{"id": 7, "name": "g", "score": None}]


def test_append_schema_mismatch_changes_nothing(run, people, home):
    (home / "bad.csv").write_text("id,colour\n4,red\n")
    fails(run("append", "people", "bad.csv"), 1, "does not match the table schema", "colour")
    assert people.version == 0


def test_append_merge_schema(run, people, home):
    (home / "wide.csv").write_text("id,name,score,colour\n4,dee,1.0,red\n")
    ok(run("append", "people", "wide.csv", "--merge-schema"))
    assert people.schema().names == ["id", "name", "score", "colour"]


def test_append_duplicate_key_fails(run, people):
    fails(run("append", "people", "-", input="id,name,score\n1,again,0\n"), 1, "key")
    assert people.version == 0


def test_stdin_twice_is_a_usage_error(run, people):
    fails(run("append", "people", "-", "-", input="id,name,score\n"), 2, "stdin")


def test_upsert(run, people):
    result = ok(run("upsert", "people", "-", input="id,name,score\n2,BOB,2.5\n4,dee,4.5\n"))
    assert "+1 ~1 -0" in result.output
    assert rows(people.read(columns=["id", "name"])) == [
        {"id": 1, "name": "ann"}, {"id": 3, "name": "cy"}, {"id": 2, "name": "BOB"}, {"id": 4, "name": "dee"},
    ]  # fmt: skip  (row order: a changed row moves to its commit's place)


def test_upsert_without_key_fails(run, people, home):
    ok(run("create", "nokey", "people.csv"))
    fails(run("upsert", "nokey", "people.csv"), 1, "upsert needs a key")


def test_overwrite(run, people, home):
    (home / "new.csv").write_text("id,name,score\n1,ann,1.5\n4,dee,4.5\n")
    assert "+1 ~0 -2" in ok(run("overwrite", "people", "new.csv")).output
    assert [r["id"] for r in rows(people.read())] == [1, 4]


def test_overwrite_takes_one_file(run, people):
    assert run("overwrite", "people", "people.csv", "people.csv").exit_code == 2


def test_update(run, people):
    result = ok(run("update", "people", "--set", "name=upper(name)", "--set", "score = score * 2", "--where", "id <= 2"))
    assert "people: version 1 UPDATE +0 ~2 -0 (3 rows)" in result.output
    assert rows(people.read(columns=["name", "score"])) == [
        {"name": "cy", "score": 3.5}, {"name": "ANN", "score": 3.0}, {"name": "BOB", "score": 5.0},
    ]  # fmt: skip  (the updated rows come after the row version 0 wrote)


def test_update_errors(run, people):
    fails(run("update", "people", "--set", "name=upper(name)"), 2, "--where")
    fails(run("update", "people", "--where", "true"), 2, "--set")
    fails(run("update", "people", "--set", "novalue", "--where", "true"), 2, "COL=EXPR")
    fails(run("update", "people", "--set", "nope=1", "--where", "true"), 1, "nope")
    fails(run("update", "people", "--set", "name=upper(", "--where", "true"), 1, "invalid expression")
    fails(run("update", "people", "--set", "name='x'", "--where", "missing_col > 1"), 1, "missing_col")
    fails(run("update", "nobody", "--set", "name='x'", "--where", "true"), 1, "no table 'nobody'", "known tables: people")
    assert people.version == 0


def test_delete(run, people):
    assert "+0 ~0 -1 (2 rows)" in ok(run("delete", "people", "--where", "name = 'bob'")).output
    assert [r["id"] for r in rows(people.read())] == [1, 3]


def test_delete_errors(run, people):
    fails(run("delete", "people"), 2, "--where")
    fails(run("delete", "people", "--where", "id ==="), 1, "invalid expression")
    assert people.version == 0


def test_restore_by_version_time_and_tag(run, people):
    ok(run("delete", "people", "--where", "id = 1", "--timestamp", "2021-06-01"))
    ok(run("delete", "people", "--where", "id = 2", "--timestamp", "2021-07-01"))
    ok(run("tag", "people", "start", "--version", "0"))
    ok(run("restore", "people", "--version", "1", "-m", "back to one"))
    assert [r["id"] for r in rows(people.read())] == [3, 2]  # id 2 is back, written by the restore
    ok(run("restore", "people", "--at", "2021-01-15"))
    assert [r["id"] for r in rows(people.read())] == [3, 2, 1]
    ok(run("delete", "people", "--where", "true"))
    result = ok(run("restore", "people", "--tag", "start"))
    assert "RESTORE +3" in result.output and people.read().num_rows == 3


def test_restore_errors(run, people):
    fails(run("restore", "people"), 2, "give one of --version, --at or --tag")
    fails(run("restore", "people", "--version", "0", "--tag", "x"), 2, "at most one")
    fails(run("restore", "people", "--version", "7"), 1, "version 7 does not exist", "latest version is 0")
    fails(run("restore", "people", "--tag", "nope"), 1, "no tag 'nope'")
    fails(run("restore", "people", "--at", "2020-01-01"), 1, "2021-01-01")
    fails(run("restore", "people", "--at", "yesterday"), 1, "cannot read 'yesterday' as a timestamp")
    assert people.version == 0


def test_write_options_are_recorded(run, people):
    ok(run("update", "people", "--set", "score=0", "--where", "true", "-m", "zero", "--author", "ada", "--timestamp", "2021-02-03T04:05:06+02:00", "--meta", "ticket=42", "--meta", "note=a=b"))  # fmt: skip
    commit = people.history(limit=1)[0]
    assert (commit.message, commit.author, commit.metadata) == ("zero", "ada", {"ticket": "42", "note": "a=b"})
    assert logstore_iso(commit.timestamp) == "2021-02-03T02:05:06"


def logstore_iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def test_write_option_errors(run, people):
    fails(run("delete", "people", "--where", "true", "--meta", "novalue"), 2, "KEY=VALUE")
    fails(run("delete", "people", "--where", "true", "--timestamp", "2999-01-01"), 1, "in the future")
    fails(run("delete", "people", "--where", "true", "--timestamp", "2020-01-01"), 1, "not after the previous commit")
    fails(run("delete", "people", "--where", "true", "--timestamp", "soon"), 1, "cannot read 'soon'")
    assert people.version == 0


def test_default_author_is_git_user_name(tmp_path, monkeypatch):
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Grace Hopper\n")
    monkeypatch.delenv("LOGSTORE_AUTHOR")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)
    logstore.author.machine_author.cache_clear()
    try:
        assert logstore.author.default_author() == "Grace Hopper"
    finally:
        logstore.author.machine_author.cache_clear()


def test_default_author_falls_back_to_login_name(tmp_path, monkeypatch):
    monkeypatch.delenv("LOGSTORE_AUTHOR")
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the path
    monkeypatch.setenv("LOGNAME", "someone")
    logstore.author.machine_author.cache_clear()
    try:
        assert logstore.author.default_author() == "someone"
    finally:
        logstore.author.machine_author.cache_clear()


def test_writes_use_the_default_author(run, people):
    ok(run("delete", "people", "--where", "id = 1"))
    assert people.history(limit=1)[0].author == "tester"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_write_machine_output(run, people, fmt):
    out = ok(run("delete", "people", "--where", "id = 1", "--format", fmt)).stdout
    record = json.loads(out) if fmt == "json" else next(csv.DictReader(io.StringIO(out)))
    assert str(record["version"]) == "1" and record["operation"] == "DELETE" and str(record["rows_deleted"]) == "1"


# --- log ---------------------------------------------------------------------------------------------------


@pytest.fixture
def history(templates, home):
    """`people` plus: v1 UPDATE upper(name) of id 1 at 2021-06-01 by ada ('caps'), v2 DELETE id 3 at 2022-03-01,
    tag v1 -> version 1."""
    return _copy(templates["history"], home)


def test_log_table(run, history):
    lines = ok(run("log", "people")).output.splitlines()
    assert lines[0].split() == ["version", "time", "(UTC)", "author", "operation", "changes", "rows", "message", "tags"]
    assert lines[2].split()[:7] == ["2", "2022-03-01", "00:00:00", "tester", "DELETE", "+0", "~0"]
    assert lines[3].split() == ["1", "2021-06-01", "00:00:00", "ada", "UPDATE", "+0", "~1", "-0", "3", "caps", "v1"]
    assert len(lines) == 5


def test_log_json_is_one_document_with_stable_fields(run, history):
    records = json.loads(ok(run("log", "people", "--format", "json")).stdout)
    assert [r["version"] for r in records] == [2, 1, 0]
    assert list(records[1]) == [
        "version", "timestamp", "author", "operation", "rows_inserted", "rows_updated", "rows_deleted",
        "num_rows", "message", "metadata", "tags", "expired",
    ]  # fmt: skip
    assert records[1]["timestamp"] == "2021-06-01T00:00:00.000000Z" and records[1]["tags"] == ["v1"]
    assert records[0]["rows_deleted"] == 1 and records[0]["num_rows"] == 2


def test_log_csv_and_limit(run, history):
    parsed = list(csv.DictReader(io.StringIO(ok(run("log", "people", "-f", "csv", "--limit", "2")).stdout)))
    assert [r["version"] for r in parsed] == ["2", "1"] and parsed[1]["tags"] == "v1"
    fails(run("log", "people", "--limit", "0"), 2)


def test_log_unknown_table(run, people):
    fails(run("log", "nope"), 1, "no table 'nope' in this store (known tables: people)")


# --- show --------------------------------------------------------------------------------------------------


def test_show(run, history):
    lines = ok(run("show", "people")).output.splitlines()
    assert lines[0].split() == ["id", "name", "score"] and lines[2].split() == ["2", "bob", "2.5"] and lines[3].split() == ["1", "ANN", "1.5"] and len(lines) == 4


def test_show_selectors(run, history):
    def ids(*args):
        return [r["id"] for r in json.loads(ok(run("show", "people", "-f", "json", *args)).stdout)]

    assert ids("--version", "2") == [2, 1]  # id 1 was changed by version 1: after the rows of version 0
    assert ids("--at", "2022-01-01") == [2, 3, 1]
    assert ids("--tag", "v1") == [2, 3, 1]
    assert ids("--limit", "1") == [2]
    assert ids("--where", "score > 2", "--version", "0") == [2, 3]


def test_show_columns_and_csv(run, history):
    out = ok(run("show", "people", "--columns", "name, id", "-f", "csv", "--version", "0")).stdout
    assert out.splitlines() == ["name,id", "ann,1", "bob,2", "cy,3"]


def test_show_empty(run, people):
    assert "(no rows)" in ok(run("show", "people", "--where", "id > 100")).output
    assert json.loads(ok(run("show", "people", "--where", "id > 100", "-f", "json")).stdout) == []


def test_show_errors(run, history):
    fails(run("show", "people", "--columns", "nope"), 1, "unknown column 'nope'")
    fails(run("show", "people", "--where", "nope = 1"), 1, "nope")
    fails(run("show", "people", "--version", "9"), 1, "latest version is 2")
    fails(run("show", "people", "--version", "1", "--at", "2022-01-01"), 2, "at most one")
    fails(run("show", "people", "--version", "-1"), 2)
    fails(run("show", "people", "--at", "2020-06-01"), 1, "2021-01-01")
    fails(run("show", "people", "--format", "xml"), 2)


# --- checkout ----------------------------------------------------------------------------------------------


def test_checkout_default_path_is_table_parquet(run, history, home):
    result = ok(run("checkout", "people", "--at", "2022-01-01"))
    assert "wrote version 1 (3 rows" in result.output
    assert rows(pq.read_table(home / "people.parquet")) == rows(history.read(version=1))


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json", "ndjson"])
def test_checkout_is_byte_identical(run, history, home, fmt):
    ok(run("checkout", "people", "--version", "1", "--file-format", fmt, "-o", "a.out"))
    ok(run("checkout", "people", "--version", "1", "--file-format", fmt, "-o", "b.out"))
    assert (home / "a.out").read_bytes() == (home / "b.out").read_bytes()
    assert len((home / "a.out").read_bytes()) > 0


def test_checkout_formats_round_trip(run, history, home):
    expected = rows(history.read(version=2))
    ok(run("checkout", "people", "--version", "2", "-o", "v.csv"))
    ok(run("checkout", "people", "--version", "2", "-o", "v.json"))
    ok(run("checkout", "people", "--version", "2", "--file-format", "ndjson"))
    assert rows(logstore.read_file(home / "v.csv")) == expected
    assert json.loads((home / "v.json").read_text()) == expected
    assert [json.loads(line) for line in (home / "people.ndjson").read_text().splitlines()] == expected


def test_checkout_refuses_to_overwrite(run, history, home):
    (home / "people.parquet").write_bytes(b"precious")
    fails(run("checkout", "people"), 1, "already exists", "--force")
    assert (home / "people.parquet").read_bytes() == b"precious"
    ok(run("checkout", "people", "--force"))
    assert pq.read_table(home / "people.parquet").num_rows == 2
    assert [p for p in os.listdir(home) if p.endswith(".tmp")] == []


def test_checkout_to_stdout(run, history):
    result = ok(run("checkout", "people", "--version", "0", "-o", "-"))
    assert list(csv.reader(io.StringIO(result.stdout))) == [["id", "name", "score"], ["1", "ann", "1.5"], ["2", "bob", "2.5"], ["3", "cy", "3.5"]]
    assert "wrote version 0" in result.stderr
    ndjson = ok(run("checkout", "people", "--version", "0", "-o", "-", "--file-format", "ndjson")).stdout
    assert [json.loads(line)["id"] for line in ndjson.splitlines()] == [1, 2, 3]


def test_checkout_errors(run, history, home):
    fails(run("checkout", "people", "-o", "out.xlsx"), 1, "cannot tell the format")
    fails(run("checkout", "people", "-o", "nodir/out.parquet"), 1, "does not exist")
    fails(run("checkout", "people", "--at", "2020-01-01"), 1, "2021-01-01")
    fails(run("checkout", "people", "--tag", "nope"), 1, "no tag 'nope' (known tags: v1)")
    fails(run("checkout", "people", "--file-format", "xlsx"), 2)
    fails(run("checkout", "people", "--format", "csv"), 2, "--file-format")  # the old name: click suggests the new
    fails(run("checkout", "nope"), 1, "no table 'nope'")
    assert not (home / "people.parquet").exists()


# --- tags ------------------------------------------------------------------------------------------------------


def test_tag_tags_untag(run, history):
    assert "tagged version 2 as latest" in ok(run("tag", "people", "latest")).output
    assert "tagged version 1 as mid" in ok(run("tag", "people", "mid", "--at", "2021-12-31")).output
    lines = ok(run("tags", "people")).output.splitlines()
    assert [line.split()[:2] for line in lines[2:]] == [["latest", "2"], ["mid", "1"], ["v1", "1"]]
    assert json.loads(ok(run("tags", "people", "-f", "json")).stdout)[1] == {"tag": "mid", "version": 1, "timestamp": "2021-06-01T00:00:00.000000Z"}
    assert ok(run("tags", "people", "-f", "csv")).stdout.splitlines()[0] == "tag,version,timestamp"
    assert "deleted tag mid" in ok(run("untag", "people", "mid")).output
    assert sorted(history.tags()) == ["latest", "v1"]


def test_tags_empty(run, people):
    assert "no tags" in ok(run("tags", "people")).output


def test_tag_errors(run, history):
    fails(run("tag", "people", "v1"), 1, "tag 'v1' already exists (it points at version 1); delete it first with `logstore untag people v1`")
    fails(run("tag", "people", "x", "--version", "5"), 1, "latest version is 2")
    fails(run("tag", "people", "x", "--version", "1", "--at", "2022-01-01"), 2, "at most one")
    fails(run("tag", "people", "a/b"), 1, "invalid tag name")
    fails(run("untag", "people", "nope"), 1, "no tag 'nope' (known tags: v1)")


# --- info and snapshot -------------------------------------------------------------------------------------


def test_info_table(run, history):
    out = ok(run("info", "people")).output
    for fragment in ["table          people", "key            id", "version        2", "rows           2", "v1 (version 1)", "2021-01-01 00:00:00 UTC", "2022-03-01 00:00:00 UTC", "schema", "id     BIGINT", "score  DOUBLE"]:  # fmt: skip
        assert fragment in out


def test_info_json_and_csv(run, history):
    record = json.loads(ok(run("info", "people", "-f", "json")).stdout)
    assert record["name"] == "people" and record["key"] == ["id"] and record["version"] == 2 and record["num_rows"] == 2
    assert record["bytes_on_disk"] > 0 and record["tags"] == {"v1": 1}
    assert record["first_commit"] == "2021-01-01T00:00:00.000000Z" and record["last_commit"] == "2022-03-01T00:00:00.000000Z"
    assert record["columns"] == [{"name": "id", "type": "BIGINT"}, {"name": "name", "type": "VARCHAR"}, {"name": "score", "type": "DOUBLE"}]
    [flat] = list(csv.DictReader(io.StringIO(ok(run("info", "people", "-f", "csv")).stdout)))
    assert flat["schema"] == "id BIGINT, name VARCHAR, score DOUBLE" and flat["version"] == "2"


def test_snapshot(run, history):
    assert "snapshot of version 2" in ok(run("snapshot", "people")).output
    assert 2 in json.loads(ok(run("info", "people", "-f", "json")).stdout)["snapshots"]
    fails(run("snapshot", "nope"), 1, "no table 'nope'")


def test_compact(run, people, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    for i in range(12):
        people.append(pa.table({"id": [100 + i], "name": [f"n{i}"], "score": [float(i)]}))
    before = [people.read(version=v) for v in range(people.version + 1)]
    out = ok(run("compact", "people")).output
    assert out == "people: compacted versions 0-9 into 1 file, replacing 10 files\n"  # counts in the singular at 1
    assert [people.read(version=v) for v in range(people.version + 1)] == before
    assert "nothing to compact" in ok(run("compact", "people")).output
    fails(run("compact", "nope"), 1, "no table 'nope'")


# --- errors, colour, progress --------------------------------------------------------------------------------


def test_debug_shows_the_traceback(run, people):
    result = run("--debug", "log", "nope")
    assert result.exit_code == 1 and isinstance(result.exception, logstore.TableNotFoundError)
    assert "error:" not in result.stderr


def test_unexpected_errors_are_one_line(run, people, monkeypatch):
    def boom(self, limit=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(logstore.Table, "history", boom)
    fails(run("log", "people"), 1, "RuntimeError: disk on fire", "--debug")
    assert isinstance(run("--debug", "log", "people").exception, RuntimeError)


def test_no_colour_when_not_a_terminal(run, history):
    for args in (["log", "people"], ["log", "nope"], ["info", "people"]):
        result = run(*args)
        assert "\x1b[" not in result.output


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.setattr(output, "_isatty", lambda stream: True)
    assert "\x1b[" in output.style("x", bold=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.style("x", bold=True) == "x"


def test_progress_only_for_big_work_on_a_terminal(monkeypatch):
    assert isinstance(output.progress(10, "x", size_bytes=10**9), output._Silent)  # not a terminal
    monkeypatch.setattr(output, "_isatty", lambda stream: True)
    assert isinstance(output.progress(10, "x", size_bytes=10), output._Silent)  # too small to bother
    assert not isinstance(output.progress(10, "x", size_bytes=10**9), output._Silent)


def test_progress_bar_on_a_terminal(run, history, monkeypatch):
    monkeypatch.setattr(output, "_isatty", lambda stream: True)
    monkeypatch.setattr(output, "PROGRESS_MIN_BYTES", 0)
    result = ok(run("checkout", "people", "-o", "p.csv"))
    assert "writing people version 2" in result.stderr
    assert ok(run("append", "people", "-", input="id,name,score\n8,h,1\n")).exit_code == 0


def test_no_progress_output_when_not_a_terminal(run, history, monkeypatch):
    monkeypatch.setattr(output, "PROGRESS_MIN_BYTES", 0)
    assert ok(run("checkout", "people")).stderr == ""


def test_docs_describe_every_command():
    from pathlib import Path

    from logstore_cli import docs

    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    for name in COMMANDS:
        assert f"### logstore {name}\n" in text
    if os.environ.get("LOGSTORE_LOWEST") != "1":  # older click releases wrap and shorten help texts differently
        assert text == docs.render(), "docs/cli.md is stale: python -m logstore_cli.docs > docs/cli.md"
