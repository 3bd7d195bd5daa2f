"""How the `logstore` process leaves (cli/shutdown.py, issue 13 round 5): os._exit once a command is done, without
Python's teardown, and nothing lost by it: exit statuses, messages on stderr, buffered output, atexit handlers,
`-o FILE` published whole, DuckDB's spill files removed, a reader of stdout gone early, a thread still running.

Every case runs the real entry point (`python -m logstore_cli`, or main() from `python -c`) in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import logstore


def _env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("LOGSTORE_DIR", None)
    return env


def _logstore(cwd, *args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logstore_cli", *args], cwd=cwd, env=_env(), stdout=stdout, stderr=subprocess.PIPE, timeout=120)


def _python(cwd, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=_env(), capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("shutdown")
    store = logstore.init(root / "store")
    t = store.create_table("events", pa.table({"id": list(range(2000)), "kind": ["a", "b"] * 1000}), key="id")
    t.update({"kind": "'c'"}, where="id < 500")
    t.delete(where="id >= 1900")
    return root


def _leftovers(root) -> list[str]:
    """Files a command may have left behind: DuckDB's spill directory in the working directory, the store's staging
    directory's contents (pipes, temporary files)."""
    found = [".tmp"] if (root / ".tmp").exists() else []
    staging = root / "store" / "_staging"
    return found + (sorted(os.listdir(staging)) if staging.exists() else [])


def test_output_is_complete_and_the_status_is_zero(store_dir):
    done = _logstore(store_dir, "--store", "store", "diff", "events", "0", "2", "-f", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 600 and {r["_change_type"] for r in rows} == {"update", "delete"}
    small = _logstore(store_dir, "--store", "store", "log", "events", "-f", "json")  # printed by click.echo, buffered
    assert small.returncode == 0 and [c["version"] for c in json.loads(small.stdout)] == [2, 1, 0]
    assert _leftovers(store_dir) == []


def test_errors_keep_their_status_and_message(store_dir):
    missing = _logstore(store_dir, "--store", "store", "diff", "nope", "0", "1")
    assert missing.returncode == 1 and missing.stderr.decode().startswith("error: ") and b"nope" in missing.stderr
    assert missing.stdout == b""
    usage = _logstore(store_dir, "--store", "store", "diff", "events")
    assert usage.returncode == 2 and b"Usage:" in usage.stderr and b"Missing argument" in usage.stderr
    version = _logstore(store_dir, "--version")
    assert version.returncode == 0 and version.stdout.startswith(b"logstore, version ")
    reversed_range = _logstore(store_dir, "--store", "store", "changes", "events", "2", "1")
    assert reversed_range.returncode == 1 and b"error: " in reversed_range.stderr


def test_an_uncaught_error_still_prints_its_traceback(store_dir):
    """--debug re-raises: Python's own exit prints the traceback and returns 1."""
    done = _logstore(store_dir, "--store", "store", "--debug", "diff", "nope", "0", "1")
    assert done.returncode == 1
    assert b"Traceback (most recent call last)" in done.stderr and b"TableNotFoundError" in done.stderr


def test_output_file_is_published_whole(store_dir, tmp_path):
    target = tmp_path / "v2.parquet"
    done = _logstore(store_dir, "--store", "store", "checkout", "events", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert pq.read_table(target).equals(logstore.open(store_dir / "store").table("events").read())
    assert os.listdir(tmp_path) == ["v2.parquet"]  # no temporary file next to it
    again = _logstore(store_dir, "--store", "store", "checkout", "events", "-o", str(target))
    assert again.returncode == 1 and b"already exists" in again.stderr
    assert _leftovers(store_dir) == []


def test_a_reader_gone_early_gives_status_one_quietly(store_dir):
    """`logstore ... | head`: stdout's reader closed before the command writes (a large and a small output)."""
    for args in (["changes", "events", "0", "-f", "csv"], ["log", "events"], ["tables"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = _logstore(store_dir, "--store", "store", *args, stdout=write_end)
        finally:
            os.close(write_end)
        assert done.returncode == 1, (args, done.stderr)
        assert b"Traceback" not in done.stderr and b"Exception ignored" not in done.stderr, done.stderr
    assert _leftovers(store_dir) == []


def test_a_reader_closing_mid_stream(store_dir):
    """The reader takes a few bytes of a long output, then goes away: status 1, no message, no leftovers."""
    child = subprocess.Popen(
        [sys.executable, "-m", "logstore_cli", "--store", "store", "sql", "SELECT range AS i, md5(range::VARCHAR) AS s FROM range(3000000)", "-f", "csv"],
        cwd=store_dir, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.read(100).startswith(b"i,s\n")
    child.stdout.close()
    err = child.stderr.read()
    assert child.wait(timeout=120) == 1
    assert b"Traceback" not in err and b"Exception ignored" not in err, err
    assert _leftovers(store_dir) == []


def test_atexit_handlers_run_and_buffered_output_is_kept(store_dir):
    done = _python(
        store_dir,
        """
        import atexit, sys
        atexit.register(lambda: open("atexit.txt", "w").write("ran"))
        sys.stdout.write("buffered before the command\\n")  # not flushed yet
        sys.argv = ["logstore", "--store", "store", "tables", "-f", "csv"]
        from logstore_cli.main import main
        main()
        print("not reached")
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "buffered before the command" and lines[1].startswith("name,") and lines[2].startswith("events,")
    assert (store_dir / "atexit.txt").read_text() == "ran"
    (store_dir / "atexit.txt").unlink()


def test_exit_status_of_a_message(store_dir):
    """SystemExit with a message (as sys.exit("...") gives): the message on stderr, status 1, as Python does."""
    done = _python(
        store_dir,
        """
        from logstore_cli.shutdown import exiting
        with exiting():
            raise SystemExit("stopped: a message")
        """,
    )
    assert done.returncode == 1 and done.stderr.decode().strip() == "stopped: a message"
    assert _python(store_dir, "from logstore_cli.shutdown import leave; leave(None)").returncode == 0
    assert _python(store_dir, "from logstore_cli.shutdown import leave; leave(3)").returncode == 3


def test_duckdb_spill_files_are_removed(tmp_path):
    """A connection that spilled to disk: os._exit alone would leave DuckDB's temporary directory behind; leave()
    closes every connection logstore made first (connection.close_all), and DuckDB removes it."""
    spill = tmp_path / "spill"
    done = _python(
        tmp_path,
        f"""
        import os
        from logstore import connection
        from logstore_cli.shutdown import leave
        con = connection.new(settings={{"memory_limit": "30MB", "temp_directory": {str(spill)!r}, "threads": 1}})
        cursor = con.cursor()  # closed with it
        cursor.execute("CREATE TEMP TABLE x AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(2000000)")
        cursor.sql("SELECT * FROM x ORDER BY s DESC LIMIT 1").fetchall()
        print(len(os.listdir({str(spill)!r})))
        leave(0)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0  # it did spill
    assert not spill.exists()


def test_close_all_closes_connections_and_their_cursors():
    from logstore import connection

    first, second = connection.new(), connection.new(files=connection.Confined())
    cursor = first.cursor()
    second.close()
    connection.close_all()
    import duckdb

    for con in (first, cursor, second):
        with pytest.raises(duckdb.ConnectionException):
            con.sql("SELECT 1").fetchall()
    connection.close_all()  # nothing left: a no-op
    assert connection.new().sql("SELECT 42").fetchall() == [(42,)]  # new connections work as before


def test_a_thread_still_running_is_waited_for(tmp_path):
    """Another thread alive when the command ends: Python's own exit (it joins a non-daemon thread)."""
    done = _python(
        tmp_path,
        """
        import threading, time
        from logstore_cli.shutdown import leave
        def later():
            time.sleep(0.3)
            open("thread.txt", "w").write("done")
        threading.Thread(target=later).start()
        leave(0)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread.txt").read_text() == "done"


def test_close_all_of_spilled_connections_only(tmp_path):
    """What leave() does: a connection whose database spilled to disk is closed (DuckDB removes its temporary
    directory); one that did not is left open (closing it would only free memory, ~10 ms, before os._exit)."""
    from logstore import connection

    spill = tmp_path / "spill"
    spilled = connection.new(settings={"memory_limit": "30MB", "temp_directory": str(spill), "threads": 1})
    spilled.execute("CREATE TEMP TABLE x AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(2000000)")
    spilled.sql("SELECT * FROM x ORDER BY s DESC LIMIT 1").fetchall()
    quiet = connection.new(settings={"temp_directory": str(tmp_path / "never")})
    quiet.sql("SELECT count(*) FROM range(1000)").fetchall()
    closed = connection.new()
    closed.close()
    assert spill.exists()
    connection.close_all(only_spilled=True)
    assert not spill.exists()
    import duckdb

    with pytest.raises(duckdb.ConnectionException):
        spilled.sql("SELECT 1").fetchall()
    assert quiet.sql("SELECT 1").fetchall() == [(1,)]
    quiet.close()


def test_the_store_is_kept_only_when_leaving_through_main(store_dir):
    """cli/context.py hands the command's store to shutdown.keep (so its connection is not closed one by one before
    os._exit); `cli` called from Python (tests, CliRunner) keeps nothing: no store outlives its command there."""
    from click.testing import CliRunner

    from logstore_cli import shutdown
    from logstore_cli.main import cli

    result = CliRunner().invoke(cli, ["--store", str(store_dir / "store"), "tables"])
    assert result.exit_code == 0, result.output
    assert shutdown._kept == []
