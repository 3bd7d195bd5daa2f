"""One end-to-end scenario through the real `python -m logstore_cli` in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq


def test_checkout_at_a_date_gives_the_last_commit_before_it(tmp_path):
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("LOGSTORE_DIR", None)

    def logstore(*args, input=None):
        done = subprocess.run(
            [sys.executable, "-m", "logstore_cli", *args], cwd=tmp_path, env=env, input=input, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    (tmp_path / "events.csv").write_text("id,kind,amount\n1,click,10\n2,view,20\n3,click,30\n")
    (tmp_path / "more.csv").write_text("id,kind,amount\n4,buy,40\n5,view,50\n")

    logstore("init")
    logstore("create", "events", "events.csv", "--key", "id", "--timestamp", "2021-02-01", "-m", "import", "--author", "e2e")
    logstore("append", "events", "more.csv", "--timestamp", "2021-05-01", "--author", "e2e")
    logstore("update", "events", "--set", "amount = amount * 2", "--where", "kind = 'click'", "--timestamp", "2021-09-01", "--author", "e2e")
    logstore("delete", "events", "--where", "id = 2", "--timestamp", "2021-12-31T23:59:59", "--author", "e2e")
    # one second into 2022: `--at 2022-01-01` (midnight UTC) must not include it
    logstore("upsert", "events", "-", "--timestamp", "2022-01-01T00:00:01", "--author", "e2e", input="id,kind,amount\n6,buy,60\n1,click,11\n")
    logstore("delete", "events", "--where", "kind = 'buy'", "--timestamp", "2022-06-15", "--author", "e2e")

    history = json.loads(logstore("log", "events", "--format", "json"))
    assert [c["timestamp"][:10] for c in history][::-1] == ["2021-02-01", "2021-05-01", "2021-09-01", "2021-12-31", "2022-01-01", "2022-06-15"]
    assert [(c["version"], c["operation"], c["num_rows"]) for c in history] == [
        (5, "DELETE", 3), (4, "UPSERT", 5), (3, "DELETE", 4), (2, "UPDATE", 5), (1, "APPEND", 5), (0, "CREATE", 3),
    ]  # fmt: skip

    out = logstore("checkout", "events", "--at", "2022-01-01", "-o", "new-year.parquet")
    assert "wrote version 3 " in out
    # version 3 (2021-12-31T23:59:59): clicks doubled, id 2 deleted; nothing of 2022 (in row order: the rows
    # version 1 appended, then those version 2 changed)
    assert pq.read_table(tmp_path / "new-year.parquet").to_pylist() == [
        {"id": 4, "kind": "buy", "amount": 40},
        {"id": 5, "kind": "view", "amount": 50},
        {"id": 1, "kind": "click", "amount": 20},
        {"id": 3, "kind": "click", "amount": 60},
    ]


def test_cli_and_python_default_to_the_same_author(tmp_path):
    """Without --author / author=, both record `git config user.name` (LOGSTORE_AUTHOR unset), in real processes."""
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Grace Hopper\n")
    env = {**os.environ, "NO_COLOR": "1", "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1"}
    for name in ("LOGSTORE_DIR", "LOGSTORE_AUTHOR"):
        env.pop(name, None)

    def run(*args, input=None):
        done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, input=input, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    run("-m", "logstore_cli", "init")
    run("-m", "logstore_cli", "create", "t", "-", "--key", "id", input="id,kind\n1,a\n")
    append = "import logstore, pyarrow as pa; logstore.open('.logstore').table('t').append(pa.table({'id': [2], 'kind': ['b']}))"
    run("-c", append)
    history = json.loads(run("-m", "logstore_cli", "log", "t", "--format", "json"))
    assert [(c["operation"], c["author"]) for c in history] == [("APPEND", "Grace Hopper"), ("CREATE", "Grace Hopper")]
