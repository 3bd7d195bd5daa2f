"""What a CLI process imports (issue 13, round 3): a command pays only for the modules it uses.

`import logstore` loads its public names lazily (PEP 562), the CLI's modules import the library, DuckDB and pyarrow
inside the commands that need them, and reading a version never goes through pyarrow's numpy conversions (which
import pandas, 0.3-0.5 s, on their first use): the read plan takes row ids, versions and delete flags from the Arrow
buffers (scan.integers, scan.equals). Each case runs the real `python -m logstore_cli` in a fresh process and looks
at sys.modules when it exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

import logstore
from logstore import scan

# at exit, the names of every module the process imported, into the file named by the first argument
RUNNER = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "logstore"
runpy.run_module("logstore_cli", run_name="__main__", alter_sys=True)
"""
NEVER_ON_READS = {"pandas", "polars", "pyarrow.dataset"}
HEAVY = {"duckdb", "pyarrow", "numpy", "pandas", "polars"}


def _modules(tmp_path, *args: str) -> tuple[set[str], str]:
    """Run `logstore ARGS` in a fresh process: the modules it imported and what it printed."""
    report = tmp_path / "modules.json"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("LOGSTORE_DIR", None)
    done = subprocess.run([sys.executable, "-c", RUNNER, str(report), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return set(json.loads(report.read_text())), done.stdout


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A table with inserts, updates and deletes in change files (none snapshotted after version 0): reading any
    version after 0 plans dead rows from the change files' row ids, versions and delete flags."""
    root = tmp_path_factory.mktemp("imports")
    store = logstore.init(root / "store")
    t = store.create_table("events", pa.table({"id": list(range(50)), "kind": ["a", "b"] * 25, "amount": [float(i) for i in range(50)]}), key="id")
    t.update({"amount": "amount + 1"}, where="id < 10")
    t.delete(where="id >= 45")
    t.append(pa.table({"id": [100, 101], "kind": ["c", "c"], "amount": [1.0, 2.0]}))
    t.update({"kind": "'z'"}, where="id IN (3, 100)")
    return root, t


def test_help_imports_no_data_library(tmp_path):
    modules, out = _modules(tmp_path, "--help")
    assert "checkout" in out
    assert modules & HEAVY == set()
    light = {"logstore.errors", "logstore.selectors", "logstore.timestamps"}  # the version options' checks
    assert {m for m in modules if m.startswith("logstore.")} <= light


@pytest.mark.parametrize(
    "args",
    [
        ("sql", "SELECT * FROM events", "-f", "csv"),
        ("sql", "SELECT kind, count(*) AS n FROM events AS OF VERSION 3 GROUP BY kind ORDER BY kind", "-f", "json"),
        ("sql", "SELECT * FROM events AS OF VERSION 2", "-o", "{dir}/q.parquet"),
        ("checkout", "events", "-o", "{dir}/e.parquet"),
        ("checkout", "events", "--version", "3", "-o", "{dir}/e.csv"),
        ("show", "events", "--limit", "100", "-f", "csv"),
        ("show", "events", "--version", "2"),
        ("changes", "events", "0", "4", "-f", "csv"),
        ("diff", "events", "0", "4", "-f", "json"),
        ("diff", "events", "1", "4", "-f", "csv"),
        ("diff", "events", "4", "0", "-o", "{dir}/d.parquet"),
        ("diff", "events", "0", "4", "--summary", "-f", "json"),
        ("diff", "events", "0", "4"),
    ],
    ids=lambda args: " ".join(args[:2]) + " " + args[-1].rsplit("/", 1)[-1],
)
def test_reads_never_import_pandas(history, tmp_path, args):
    root, t = history
    args = tuple(a.replace("{dir}", str(tmp_path)) for a in args)
    modules, out = _modules(tmp_path, "--store", str(root / "store"), *args)
    assert modules & NEVER_ON_READS == set(), args
    if "-o" not in args:
        assert out.strip()
    if args[:2] == ("sql", "SELECT * FROM events"):  # the output itself: the latest version's rows
        assert out.count("\n") == t.read().num_rows + 1


def test_import_logstore_is_light():
    code = "import json, sys, logstore; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('logstore', 'duckdb', 'pyarrow', 'numpy'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == ["logstore", "logstore.errors"]


def test_every_public_name_and_submodule_resolves_in_a_fresh_process():
    code = (
        "import logstore\n"
        "from logstore import *\n"
        "names = [n for n in logstore.__all__ if getattr(logstore, n) is None]\n"
        "assert not names, names\n"
        "assert set(logstore.__all__) <= set(dir(logstore))\n"
        "from logstore import Table, open, read_uri\n"
        "assert Table.__module__ == 'logstore.table' and open.__module__ == 'logstore.store'\n"
        "assert logstore.read_uri is logstore.uri.read and logstore.files.output_format\n"
        "for bad in ('no_such_name', '_no_such_module'):\n"
        "    try:\n"
        "        getattr(logstore, bad)\n"
        "    except AttributeError as e:\n"
        "        assert bad in str(e)\n"
        "    else:\n"
        "        raise SystemExit(bad)\n"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)


# --- Arrow buffers to numpy (scan.integers, scan.equals) -------------------------------------------------------


def test_integers_matches_pyarrow_on_chunks_offsets_and_widths():
    values = np.arange(-5, 1000, 7, dtype=np.int64)
    chunked = pa.chunked_array([pa.array(values[:40]), pa.array(values[40:]).slice(3, 50), pa.array([], pa.int64())])
    assert np.array_equal(scan.integers(chunked), chunked.to_numpy())
    for type_ in (pa.int8(), pa.int16(), pa.int32(), pa.uint32(), pa.uint64()):
        arr = pa.array(np.arange(0, 100, 3) % 120, type=type_).slice(5, 20)
        got = scan.integers(arr)
        assert got.dtype == arr.to_numpy().dtype and np.array_equal(got, arr.to_numpy())
    assert scan.integers(pa.chunked_array([], pa.int64())).tolist() == []


def test_integers_refuses_nulls_and_other_types():
    with pytest.raises(ValueError, match="NULL"):
        scan.integers(pa.chunked_array([pa.array([1, None, 3])]))
    with pytest.raises(ValueError, match="integers"):
        scan.integers(pa.chunked_array([pa.array([1.5])]))


def test_equals_on_dictionaries_with_nulls_and_offsets():
    plain = pa.array(["I", "D", None, "U", "D", "I", "D"] * 3)
    chunked = pa.chunked_array([plain.slice(0, 9).dictionary_encode(), plain.slice(9).dictionary_encode().slice(2)])
    expected = np.array([v == "D" for v in (plain.slice(0, 9).to_pylist() + plain.slice(11).to_pylist())])
    assert np.array_equal(scan.equals(chunked, "D"), expected)
    assert not scan.equals(chunked, "X").any()
    with pytest.raises(ValueError, match="dictionary"):
        scan.equals(pa.chunked_array([plain]), "D")


def test_a_change_file_with_null_row_ids_is_unreadable(tmp_path):
    import pyarrow.parquet as pq

    path = str(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"_row_id": [1, None], "_version": [1, 1], "_op": ["D", "U"]}), path)
    with pytest.raises(scan.Unreadable, match="NULL"):
        scan.change_rows(path, ("test", path))
