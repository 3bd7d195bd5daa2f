"""The CLI edges of issue 11: one meaning per flag, only real changes counted, empty inputs, --timestamp checked
first, statements named as written, readable output (counts, plurals, info, verify, vacuum, repair), one author rule.

CLI tests run click's CliRunner against a real store in tmp_path; the Python API is checked alongside wherever the
rule is the library's.
"""

from __future__ import annotations

import json
import re

import click
import pyarrow as pa
import pytest
from click.testing import CliRunner

import logstore
import logstore.author
from logstore import testing
from logstore_cli.main import cli
from logstore_cli.output import FORMATS

CSV = "id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cy,3.5\n"


pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def home(tmp_path, monkeypatch):
    (tmp_path / "people.csv").write_text(CSV)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run(home):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture
def people(run, home):
    """Table `people` (key id; ann 1.5, bob 2.5, cy 3.5) created at 2021-01-01: version 0."""
    ok(run("init"))
    ok(run("create", "people", "people.csv", "--key", "id", "--timestamp", "2021-01-01"))
    return logstore.open(home / ".logstore").table("people")


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def error_line(result) -> str:
    """The one `error: ...` line of a failed command (exit 1)."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- 1. one meaning per flag -----------------------------------------------------------------------------------


def _options():
    for name, command in sorted(cli.commands.items()):
        for param in command.params:
            if isinstance(param, click.Option):
                yield name, param


def test_every_flag_means_one_thing_across_commands():
    """The same option string names the same parameter everywhere (-f is never --file, --format never a file's)."""
    meanings: dict[str, set[str]] = {}
    for _name, param in _options():
        for opt in param.opts + param.secondary_opts:
            meanings.setdefault(opt, set()).add(param.name)
    assert {opt: names for opt, names in meanings.items() if len(names) > 1} == {}


def test_format_is_always_the_output_format_and_file_format_the_data_files():
    for name, param in _options():
        if "-f" in param.opts or "--format" in param.opts:
            assert param.opts == ["-f", "--format"], name
            assert list(param.type.choices) == list(FORMATS) and param.default == "table", name
        if "--file-format" in param.opts:
            # the data files a command reads (create, ...) or writes (checkout, and -o FILE of sql, changes, diff)
            assert name in ("create", "append", "upsert", "overwrite", "merge", "checkout", "sql", "changes", "diff"), name
    renamed = {"--input-format", "--file", "--query-file"} & {o for _n, p in _options() for o in p.opts if _n != "sql"}
    assert renamed == set()


def test_sql_reads_a_query_file_with_query_file(run, people, home):
    (home / "q.sql").write_text("SELECT count(*) AS n FROM people")
    assert json.loads(ok(run("sql", "--query-file", "q.sql", "-f", "json")).stdout) == [{"n": 3}]


def test_file_format_reads_and_writes(run, people, home):
    ok(run("append", "people", "-", "--file-format", "ndjson", input='{"id": 4, "name": "dee", "score": 4.5}\n'))
    out = ok(run("checkout", "people", "-o", "-", "--file-format", "ndjson")).stdout
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 2, 3, 4]


# --- 2. only real changes ------------------------------------------------------------------------------------


def test_update_counts_and_stores_only_rows_whose_values_change(people):
    commit = people.update(set={"score": "greatest(score, 2.5)"}, where="true")  # ann 1.5 -> 2.5; bob, cy stay
    assert (commit.rows_inserted, commit.rows_updated, commit.rows_deleted, commit.num_rows) == (0, 1, 0, 3)
    feed = people.changes(1, 1)
    assert [(r["id"], r["_change_type"], r["score"]) for r in feed.to_pylist()] == [
        (1, "update_preimage", 1.5), (1, "update_postimage", 2.5),
    ]  # fmt: skip
    assert people.diff_summary(0, 1).updated == 1
    assert people.verify(full=True).ok  # the incremental fingerprint agrees with a full recomputation


def test_update_several_columns_is_a_change_if_any_differs(people):
    commit = people.update(set={"name": "name", "score": "CASE WHEN id = 2 THEN 9.0 ELSE score END"}, where="true")
    assert commit.rows_updated == 1 and people.changes(1, 1).column("id").to_pylist() == [2, 2]
    assert people.update(set={"score": "NULL"}, where="id = 3").rows_updated == 1  # a value to NULL is a change
    assert people.update(set={"score": "NULL"}, where="id = 3").rows_updated == 0  # NULL to NULL is not
    assert people.verify(full=True).ok


def test_an_update_that_changes_nothing_still_commits_an_empty_version(people):
    commit = people.update(set={"name": "name"}, where="true")
    assert (commit.version, commit.rows_updated, commit.num_rows) == (1, 0, 3)
    assert people.changes(1, 1).num_rows == 0 and people.read().equals(people.read(version=0))
    assert people.verify(full=True).ok


def test_cli_update_line_and_diff_summary_agree(run, people):
    line = ok(run("update", "people", "--set", "score = 2.5", "--where", "true")).stdout
    assert line == "people: version 1 UPDATE +0 ~2 -0 (3 rows)\n"  # bob already had 2.5
    summary = json.loads(ok(run("diff", "people", "0", "1", "--summary", "-f", "json")).stdout)
    assert summary["updated"] == 2
    assert len(json.loads(ok(run("changes", "people", "1", "-f", "json")).stdout)) == 4  # two pre/post pairs


def test_upsert_and_overwrite_of_unchanged_rows_change_nothing(run, people, home):
    assert ok(run("upsert", "people", "people.csv")).stdout == "people: version 1 UPSERT +0 ~0 -0 (3 rows)\n"
    assert ok(run("overwrite", "people", "people.csv")).stdout == "people: version 2 OVERWRITE +0 ~0 -0 (3 rows)\n"
    assert people.changes(1, 2).num_rows == 0


# --- 3. empty inputs ---------------------------------------------------------------------------------------------


def test_append_of_a_header_only_csv_commits_nothing_and_says_so(run, people, home):
    (home / "none.csv").write_text("id,name,score\n")
    result = ok(run("append", "people", "none.csv"))
    assert result.stdout == "people: no rows in none.csv; nothing committed (still version 0)\n"
    assert people.version == 0


def test_upsert_of_no_rows_commits_nothing_and_machine_output_stays_empty(run, people, home):
    (home / "none.csv").write_text("id,name,score\n")
    result = ok(run("upsert", "people", "none.csv", "-", "-f", "json", input="id,name\n"))
    assert result.stdout == ""
    assert result.stderr == "people: no rows in none.csv, stdin; nothing committed (still version 0)\n"
    assert people.version == 0


def test_no_rows_with_a_new_column_and_merge_schema_is_a_schema_change(run, people, home):
    (home / "wider.csv").write_text("id,name,score,colour\n")
    assert ok(run("append", "people", "wider.csv", "--merge-schema")).stdout == "people: version 1 APPEND +0 ~0 -0 (3 rows)\n"
    assert people.schema().names == ["id", "name", "score", "colour"]


def test_no_rows_with_a_column_the_table_lacks_is_still_refused(run, people, home):
    (home / "wrong.csv").write_text("id,colour\n")
    assert "does not match the table schema" in error_line(run("append", "people", "wrong.csv"))
    assert people.version == 0


@pytest.mark.parametrize(
    "name,content,problem",
    [
        ("empty.csv", "", "is empty (0 bytes)"),
        ("blank.csv", "\n  \n", "is blank (no header line)"),
        ("empty.parquet", "", "is empty (0 bytes)"),
        ("none.json", " [ ] ", "holds no records ([])"),
        ("blank.ndjson", "\n", "is blank (no records)"),
    ],
)
def test_a_file_naming_no_columns_is_refused_naming_it(run, home, name, content, problem):
    (home / name).write_text(content)
    ok(run("init"))
    assert error_line(run("create", "t", name)) == f"error: input file {name!r} {problem}: it names no columns, so there is nothing to read"
    assert logstore.open(home / ".logstore").tables() == []
    with pytest.raises(logstore.InvalidInputError) as e:
        logstore.read_file(home / name)
    assert e.value.value == str(home / name)


def test_an_empty_gzip_csv_is_refused_too(run, home):
    import gzip

    (home / "empty.csv.gz").write_bytes(gzip.compress(b""))
    ok(run("init"))
    assert "'empty.csv.gz' is blank (no header line)" in error_line(run("create", "t", "empty.csv.gz"))


def test_create_from_a_header_only_csv_makes_an_empty_table_with_its_columns(run, home):
    (home / "header.csv").write_text("id,name\n")
    ok(run("init"))
    assert ok(run("create", "t", "header.csv")).stdout == "t: version 0 CREATE +0 ~0 -0 (0 rows)\n"
    t = logstore.open(home / ".logstore").table("t")
    assert t.schema().names == ["id", "name"] and t.read().num_rows == 0


def test_overwrite_with_a_header_only_csv_empties_the_table(run, people, home):
    (home / "none.csv").write_text("id,name,score\n")
    assert ok(run("overwrite", "people", "none.csv")).stdout == "people: version 1 OVERWRITE +0 ~0 -3 (0 rows)\n"


def test_python_append_of_no_rows_commits_a_version(people):
    """The Python API's rule: every write call is one version, even one changing no rows (schema_mode='merge'
    adds columns this way); the CLI skips input files without rows."""
    commit = people.append(people.schema().empty_table())
    assert (commit.version, commit.rows_inserted, commit.num_rows) == (1, 0, 3)


# --- 4. --timestamp is checked first -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp,message",
    [
        ("soon", "cannot read 'soon' as a timestamp"),
        ("2999-01-01", "is in the future"),
        ("2020-01-01", "is not after the previous commit at 2021-01-01T00:00:00.000000Z"),
    ],
)
def test_a_bad_timestamp_is_reported_before_the_input_is_read(run, people, timestamp, message):
    duplicate = "id,name,score\n1,again,0\n"
    assert message in error_line(run("append", "people", "-", "--timestamp", timestamp, input=duplicate))
    unreadable = "id,name,score\nx,y,z\n"
    assert message in error_line(run("upsert", "people", "-", "--timestamp", timestamp, input=unreadable))
    assert message in error_line(run("update", "people", "--set", "nope = 1", "--where", "true", "--timestamp", timestamp))
    assert people.version == 0


def test_python_writes_check_the_timestamp_before_computing_changes(people):
    with pytest.raises(logstore.TimestampError, match="cannot read 'soon'"):
        people.update(set={"nope": "1"}, where="true", timestamp="soon")
    with pytest.raises(logstore.TimestampError, match="in the future"):
        people.append(pa.table({"id": [1], "name": ["again"], "score": [0.0]}), timestamp="2999-01-01")
    assert people.version == 0


# --- 5. statements named as written ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement,kind",
    [("INSTALL httpfs", "INSTALL"), ("force install httpfs", "FORCE INSTALL"), ("LOAD httpfs", "LOAD"), ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS")],
)
def test_sql_refusals_name_the_statement_as_written(people, statement, kind):
    store = logstore.open(testing.store(people).path)
    with pytest.raises(logstore.LogstoreError) as e:
        store.sql(statement)
    assert isinstance(e.value, logstore.errors.ReadOnlyError) and e.value.statement == kind
    assert str(e.value).startswith(f"{kind} statements are refused")


def test_sql_statements_that_are_not_queries_are_named_as_written(people):
    store = logstore.open(testing.store(people).path)
    for statement, kind in [("CHECKPOINT", "CHECKPOINT"), ("USE memory", "USE"), ("SET threads = 1", "SET")]:
        with pytest.raises(logstore.errors.SQLError, match=f"^{kind} statements are not supported"):
            store.sql(statement)


# --- 6. output for people --------------------------------------------------------------------------------------


def _line(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(label))


def test_info_shows_snapshots_as_a_count_and_the_versions(run, people):
    assert _line(ok(run("info", "people")).stdout, "snapshots") == "snapshots      (none)"
    ok(run("snapshot", "people"))
    ok(run("tag", "people", "v1"))
    out = ok(run("info", "people")).stdout
    assert _line(out, "snapshots") == "snapshots      1 (version 0)"
    assert _line(out, "tags") == "tags           v1 (version 0)"
    assert json.loads(ok(run("info", "people", "-f", "json")).stdout)["snapshots"] == [0]


def test_info_abbreviates_a_long_list_of_versions():
    from logstore_cli.records import versions_list

    assert versions_list([0, 100, 200]) == "3 (versions 0, 100, 200)"
    assert versions_list(range(0, 400, 10)) == "40 (versions 0, 10, 20, ..., 380, 390)"


def test_verify_json_is_one_object_with_the_summary_and_the_problems(run, people):
    record = json.loads(ok(run("verify", "-f", "json")).stdout)
    assert list(record) == ["ok", "tables", "problems"] and record["ok"] is True and record["problems"] == []
    [checked] = record["tables"]
    assert checked["bytes_checked"] > 0
    assert {k: v for k, v in checked.items() if k != "bytes_checked"} == {
        "table": "people", "ok": True, "version": 0, "all_versions": False, "records_checked": 1,
        "files_checked": 1, "snapshots_checked": 0, "fingerprints_checked": 1, "problems": 0,
        "unreferenced": [], "notes": [],
    }  # fmt: skip


def test_verify_json_lists_problems_and_exits_1(run, people, home):
    [change_file] = (home / ".logstore/tables/people/data").iterdir()
    change_file.write_bytes(change_file.read_bytes()[:-1] + b"\0")
    result = run("verify", "people", "-f", "json")
    assert result.exit_code == 1
    record = json.loads(result.stdout)
    assert record["ok"] is False and record["tables"][0]["problems"] == len(record["problems"]) >= 1
    assert record["problems"][0]["table"] == "people" and record["problems"][0]["kind"] == "checksum"


def test_verify_line_counts_in_the_singular(run, people):
    line = ok(run("verify")).stdout
    assert re.fullmatch(r"people: OK; version 0, 1 record, 1 file \(\d+(\.\d)? [KB]+\), 0 snapshots, 1 fingerprint checked\n", line), line


def test_vacuum_with_nothing_to_remove_prints_one_line(run, people):
    assert ok(run("vacuum")).stdout == "nothing to remove\n"
    assert ok(run("vacuum", "--apply", "--older-than", "0")).stdout == "nothing to remove\n"
    assert json.loads(ok(run("vacuum", "-f", "json")).stdout) == []


def test_vacuum_counts_in_the_singular(run, people, home):
    (home / ".logstore/tables/people/data/junk.parquet").write_bytes(b"leftover")
    out = ok(run("vacuum", "--older-than", "0")).stdout.splitlines()
    assert out[-1] == "would remove (dry run; --apply removes them): 1 file, 8 B"
    assert "nothing to remove; 1 file newer than 1h kept" == ok(run("vacuum")).stdout.strip()


def test_repair_with_nothing_to_repair_prints_one_line(run, people):
    assert ok(run("repair", "people")).stdout == "people: nothing to repair (version 0)\n"


def test_write_and_checkout_lines_count_in_the_singular(run, people):
    assert ok(run("delete", "people", "--where", "id > 1")).stdout == "people: version 1 DELETE +0 ~0 -2 (1 row)\n"
    result = ok(run("checkout", "people", "-o", "-"))
    # DuckDB's CSV writer (streamed, issue 13) quotes only what needs quoting, as `-f csv` always did
    assert result.stdout.splitlines() == ["id,name,score", "1,ann,1.5"]
    assert re.fullmatch(r"people: wrote version 1 \(1 row, \d+ bytes, csv\) to stdout\n", result.stderr), result.stderr


def test_limited_listings_say_so_in_the_singular(run, people):
    ok(run("delete", "people", "--where", "id > 1"))
    assert ok(run("changes", "people", "1", "--limit", "1")).stdout.splitlines()[-1] == "(first 1 row shown; raise --limit to see more)"
    assert ok(run("diff", "people", "0", "1", "--limit", "1")).stdout.splitlines()[-1] == "(first 1 row shown; raise --limit to see more)"


def test_checkout_to_stdout_is_csv_as_its_help_says(run, people):
    assert "csv on stdout" in " ".join(ok(run("checkout", "--help")).stdout.split())
    out = ok(run("checkout", "people", "-o", "-")).stdout
    assert out.splitlines()[0] == "id,name,score"  # quoted only where needed (DuckDB's CSV writer, issue 13)


def test_tag_that_exists_names_untag(run, people):
    ok(run("tag", "people", "v1"))
    assert error_line(run("tag", "people", "v1")) == (
        "error: tag 'v1' already exists (it points at version 0); delete it first with `logstore untag people v1`"
    )


# --- 7. one author rule --------------------------------------------------------------------------------------


def test_python_and_cli_record_the_same_default_author(run, people, monkeypatch):
    assert people.commit_info(0).author == "tester"  # the CLI's create, no --author: LOGSTORE_AUTHOR
    assert people.append(pa.table({"id": [4], "name": ["dee"], "score": [4.0]})).author == "tester"
    monkeypatch.delenv("LOGSTORE_AUTHOR")
    monkeypatch.setattr(logstore.author, "machine_author", lambda: "from git")
    assert people.delete(where="id = 4").author == "from git"
    ok(run("delete", "people", "--where", "id = 3"))
    assert people.commit_info().author == "from git"
    ok(run("delete", "people", "--where", "id = 2", "--author", "ada"))
    assert people.commit_info().author == "ada"
    assert people.update(set={"score": "0"}, author="grace").author == "grace"


def test_blank_logstore_author_is_ignored(monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTHOR", "  ")
    monkeypatch.setattr(logstore.author, "machine_author", lambda: "someone")
    assert logstore.author.default_author() == "someone"
