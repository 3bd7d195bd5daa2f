"""CLI streaming benchmark (issue 13): the CLI's data output against DuckDB's own COPY of the same rows.

    .venv/bin/python benchmarks/cli_stream.py                           # 1M rows, 300 commits
    .venv/bin/python benchmarks/cli_stream.py --rows 100000 --commits 30 --repeat 1   # a quick run
    .venv/bin/python benchmarks/cli_stream.py --dir /tmp/cli-stream --keep          # build once, reuse later
    .venv/bin/python benchmarks/cli_stream.py --dir /tmp/cli-stream --keep --before /tmp/old   # and an older checkout

Builds the standard workload (benchmarks/workload.py: `--rows` base rows, `--commits` commits in blocks of updates,
deletes and appends) in a store (reused with --keep), writes plain Parquet files (pyarrow, zstd) holding exactly the
rows each command outputs, then runs every case below as a FRESH PROCESS, --repeat times, each next to a fresh
`python -c` process running DuckDB's own `COPY (SELECT * FROM read_parquet(<plain file>)) TO <file> (FORMAT ...)`
of the same rows to the same format and compression. Wall time is the best of the runs (ours and the baseline
alternated: on a shared machine the fastest run is the one least disturbed); CPU time (user + system) and memory
(peak RSS) are the medians, from os.wait4 in a small launcher process. Commands printing to stdout write into a file (a shell
redirect). Goals (issue 13): time <= 1.5x the baseline, peak memory <= 2x.

--before DIR measures the CLI of another checkout of logstore (e.g. `git archive <commit> | tar -x -C DIR`) in the
same run: each repeat runs it, this checkout's CLI and the baseline in turn, so both see the same machine state, and
the first run's output files of the two are compared byte for byte ("same bytes").

    sql -f csv / -f json           logstore sql "SELECT * FROM bench" > file   (the latest version)
    sql -o x.parquet               logstore sql "SELECT * FROM bench" -o file
    checkout parquet / csv / json  logstore checkout bench -o file
    changes -f csv / -f json       logstore changes bench 0 <last>  (every change: the base rows' inserts and all commits)
    diff -f csv                    logstore diff bench 0 <last>
    show -f csv                    logstore show bench --limit <rows> -f csv
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import logstore  # noqa: E402

from core import run_logstore  # noqa: E402
from workload import Workload  # noqa: E402

GOALS = {"time": 1.5, "memory": 2.0}
COPY = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json, ARRAY true", "ndjson": "FORMAT json", "parquet": "FORMAT parquet, COMPRESSION zstd"}


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # logstore arguments; "{out}" is the output file, else stdout goes to it
    plain: str  # the plain Parquet file of the rows it outputs
    fmt: str  # the baseline's format
    rows: int


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float
    cpu_seconds: float


# A child's ru_maxrss starts at its parent's peak (Linux keeps it across fork and exec), and this process holds whole
# versions while it prepares the plain files: every measured process is started by a small launcher instead.
LAUNCH = (
    "import os, sys\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "os.write(2, b'\\nmaxrss_kb=%d cpu_s=%.3f\\n' % (usage.ru_maxrss, usage.ru_utime + usage.ru_stime))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


def child_env(root: str, *, bytecode: bool) -> dict[str, str]:
    """The environment of the measured processes. With `bytecode`, Python may cache compiled modules (under
    root/pycache), as an installed package's are (pip compiles them): a PYTHONDONTWRITEBYTECODE=1 in this
    environment would otherwise make every fresh logstore process compile its ~80 modules again (0.15-0.3 s of
    CPU), a cost DuckDB's own process does not pay (its modules were compiled when it was installed)."""
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(root, "pycache")
    return env


ENV: dict[str, str] | None = None  # set by main(): child_env(...)


def before_env(root: str, checkout: str, *, bytecode: bool) -> dict[str, str]:
    """child_env for the CLI of another checkout of logstore: its directory first on PYTHONPATH, and `logstore_cli`
    mapped onto its cli/ (as .pp does here)."""
    mapping = os.path.join(root, "before-pp")
    os.makedirs(mapping, exist_ok=True)
    link = os.path.join(mapping, "logstore_cli")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.join(os.path.abspath(checkout), "cli"), link)
    env = child_env(root, bytecode=bytecode)
    env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(checkout), mapping])
    return env


def timed(argv: list[str], stdout_path: str | None, cwd: str, env: dict[str, str] | None = None) -> Run:
    """Run argv as a fresh process (stdout into stdout_path, if given); its wall time and peak RSS."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        child = subprocess.run([sys.executable, "-S", "-c", LAUNCH, *argv], stdout=out, stderr=subprocess.PIPE, cwd=cwd, env=env or ENV)
        seconds = time.perf_counter() - t0
    finally:
        if stdout_path:
            out.close()
    err = child.stderr.decode(errors="replace")
    if child.returncode != 0:
        raise SystemExit(f"failed ({child.returncode}): {' '.join(argv)}\n{err}")
    tail = err.rsplit("maxrss_kb=", 1)[1].split()
    return Run(seconds, int(tail[0]) / 1024, float(tail[1].removeprefix("cpu_s=")))


def baseline_argv(plain: str, target: str, fmt: str) -> list[str]:
    query = f"COPY (SELECT * FROM read_parquet('{plain}')) TO '{target}' ({COPY[fmt]})"
    return [sys.executable, "-c", "import sys, duckdb; duckdb.connect().execute(sys.argv[1])", query]


def ours_argv(store: str, case: Case, target: str) -> tuple[list[str], str | None]:
    args = [a.replace("{out}", target) for a in case.args]
    argv = [sys.executable, "-m", "logstore_cli", "--store", store, *args]
    return argv, (None if any("{out}" in a for a in case.args) else target)


def build(args, root: str, progress) -> logstore.Table:
    store_dir = os.path.join(root, "store")
    if os.path.exists(os.path.join(store_dir, "logstore.json")):
        table = logstore.open(store_dir).table("bench")
        if table.version == args.commits and table.read(version=0, columns=["id"]).num_rows == args.rows:
            progress(f"reusing the store in {store_dir}")
            return table
        shutil.rmtree(store_dir)
    progress("generating the workload ...")
    w = Workload(rows=args.rows, commits=args.commits)
    progress(f"running {args.commits} commits on logstore ...")
    return run_logstore(w, root, progress)["table"]


def plain_files(table: logstore.Table, root: str, rows: int, progress) -> dict[str, tuple[str, int]]:
    """The plain Parquet files of each command's rows: (path, rows)."""
    plain = os.path.join(root, "plain")
    os.makedirs(plain, exist_ok=True)
    latest = table.version
    out = {}
    wanted = {
        "latest": lambda: table.read(),
        "changes": lambda: table.changes(0, latest),
        "diff": lambda: table.diff(0, latest).replace_schema_metadata(None),
        "show": lambda: table.read().slice(0, rows),
    }
    for name, make in wanted.items():
        path = os.path.join(plain, f"{name}-{latest}.parquet")
        if not os.path.exists(path):
            progress(f"writing {path} ...")
            pq.write_table(make(), path, compression="zstd")
        out[name] = (path, pq.read_metadata(path).num_rows)
    return out


def cases(latest: int, rows: int, plain: dict[str, tuple[str, int]], only: list[str] | None) -> list[Case]:
    def case(name, args, which, fmt):
        return Case(name, tuple(args), plain[which][0], fmt, plain[which][1])

    every = [
        case("sql -f csv", ["sql", "SELECT * FROM bench", "-f", "csv"], "latest", "csv"),
        case("sql -f json", ["sql", "SELECT * FROM bench", "-f", "json"], "latest", "json"),
        case("sql -o parquet", ["sql", "SELECT * FROM bench", "-o", "{out}", "--force"], "latest", "parquet"),
        case("checkout parquet", ["checkout", "bench", "-o", "{out}", "--file-format", "parquet", "--force"], "latest", "parquet"),
        case("checkout csv", ["checkout", "bench", "-o", "{out}", "--file-format", "csv", "--force"], "latest", "csv"),
        case("checkout json", ["checkout", "bench", "-o", "{out}", "--file-format", "json", "--force"], "latest", "json"),
        case("changes -f csv", ["changes", "bench", "0", str(latest), "-f", "csv"], "changes", "csv"),
        case("changes -f json", ["changes", "bench", "0", str(latest), "-f", "json"], "changes", "json"),
        case("diff -f csv", ["diff", "bench", "0", str(latest), "-f", "csv"], "diff", "csv"),
        case("show -f csv", ["show", "bench", "--limit", str(rows), "-f", "csv"], "show", "csv"),
    ]
    return [c for c in every if not only or any(o in c.name for o in only)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to build the store and outputs [default: a temporary directory]")
    parser.add_argument("--keep", action="store_true", help="keep --dir (and reuse a store built there before)")
    parser.add_argument("--only", action="append", help="run only the cases whose name contains this (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as it is set here (every process compiles logstore again)")
    parser.add_argument("--before", metavar="DIR", help="also measure the CLI of this other checkout of logstore, alternately with this one")
    args = parser.parse_args()

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    root = args.dir or os.path.join(os.environ.get("TMPDIR", "/tmp"), f"logstore-cli-stream-{os.getpid()}")
    os.makedirs(root, exist_ok=True)
    try:
        table = build(args, root, progress)
        latest = table.version
        plain = plain_files(table, root, args.rows, progress)
        store = os.path.join(root, "store")
        outputs = os.path.join(root, "out")
        os.makedirs(outputs, exist_ok=True)
        global ENV
        ENV = child_env(root, bytecode=not args.no_bytecode_cache)
        subprocess.run([sys.executable, "-m", "logstore_cli", "--help"], stdout=subprocess.DEVNULL, env=ENV, check=True, cwd=root)  # compiles once
        old_env = before_env(root, args.before, bytecode=not args.no_bytecode_cache) if args.before else None
        if old_env is not None:
            subprocess.run([sys.executable, "-m", "logstore_cli", "--help"], stdout=subprocess.DEVNULL, env=old_env, check=True, cwd=root)
        subprocess.run([sys.executable, "-c", "import duckdb"], env=ENV, check=True, cwd=root)
        results = []
        load_start = os.getloadavg()
        for c in cases(latest, args.rows, plain, args.only):
            ext = c.fmt if c.fmt != "ndjson" else "ndjson"
            mine, base, old = [], [], []
            for i in range(args.repeat):
                if old_env is not None:
                    old_target = os.path.join(outputs, f"before.{ext}")
                    argv, stdout_path = ours_argv(store, c, old_target)
                    old.append(timed(argv, stdout_path, root, old_env))
                target = os.path.join(outputs, f"ours.{ext}")
                argv, stdout_path = ours_argv(store, c, target)
                mine.append(timed(argv, stdout_path, root))
                reference = os.path.join(outputs, f"baseline.{ext}")
                base.append(timed(baseline_argv(c.plain, reference, c.fmt), None, root))
                if i == 0:
                    size, base_size = os.path.getsize(target), os.path.getsize(reference)
                    same = _same_bytes(target, old_target) if old_env is not None else None
            row = {
                "case": c.name,
                "rows": c.rows,
                "seconds": min(r.seconds for r in mine),
                "baseline_seconds": min(r.seconds for r in base),
                "cpu_seconds": statistics.median(r.cpu_seconds for r in mine),
                "baseline_cpu_seconds": statistics.median(r.cpu_seconds for r in base),
                "rss_mb": statistics.median(r.rss_mb for r in mine),
                "baseline_rss_mb": statistics.median(r.rss_mb for r in base),
                "bytes": size,
                "baseline_bytes": base_size,
            }
            row["time_ratio"] = row["seconds"] / row["baseline_seconds"]
            row["memory_ratio"] = row["rss_mb"] / row["baseline_rss_mb"]
            row["cpu_ratio"] = row["cpu_seconds"] / row["baseline_cpu_seconds"]
            if old:
                row["before_seconds"] = min(r.seconds for r in old)
                row["before_cpu_seconds"] = statistics.median(r.cpu_seconds for r in old)
                row["before_rss_mb"] = statistics.median(r.rss_mb for r in old)
                row["before_time_ratio"] = row["before_seconds"] / row["baseline_seconds"]
                row["before_cpu_ratio"] = row["before_cpu_seconds"] / row["baseline_cpu_seconds"]
                row["before_memory_ratio"] = row["before_rss_mb"] / row["baseline_rss_mb"]
                row["same_bytes"] = same
            results.append(row)
            progress(f"  {c.name}: {row['time_ratio']:.2f}x time, {row['memory_ratio']:.2f}x memory")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"logstore CLI output against DuckDB COPY: {args.rows:,} base rows, {args.commits} commits; {os.cpu_count()} CPUs; "
          f"fresh processes; wall time the best of {args.repeat}, CPU time and peak RSS the median; "
          f"load average {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"{'case':<18} {'rows':>10} {'logstore':>9} {'COPY':>8} {'time':>6} {'CPU':>6} {'RSS MB':>7} {'COPY MB':>8} {'memory':>7}  goals (<= {GOALS['time']}x, <= {GOALS['memory']}x)")
    missed = 0
    for r in results:
        ok = r["time_ratio"] <= GOALS["time"] and r["memory_ratio"] <= GOALS["memory"]
        missed += not ok
        print(f"{r['case']:<18} {r['rows']:>10,} {r['seconds']:>8.2f}s {r['baseline_seconds']:>7.2f}s {r['time_ratio']:>5.2f}x {r['cpu_ratio']:>5.2f}x "
              f"{r['rss_mb']:>7.0f} {r['baseline_rss_mb']:>8.0f} {r['memory_ratio']:>6.2f}x  {'ok' if ok else 'MISSED'}")
    if args.before:
        print()
        print(f"before ({args.before}) and after (this checkout), alternately in the same run: time / CPU / memory ratios to COPY")
        print(f"{'case':<18} {'before':>22} {'after':>22}  {'after CPU s':>11} {'before CPU s':>12}  same bytes")
        for r in results:
            b = f"{r['before_time_ratio']:.2f}x / {r['before_cpu_ratio']:.2f}x / {r['before_memory_ratio']:.2f}x"
            a = f"{r['time_ratio']:.2f}x / {r['cpu_ratio']:.2f}x / {r['memory_ratio']:.2f}x"
            print(f"{r['case']:<18} {b:>22} {a:>22}  {r['cpu_seconds']:>11.2f} {r['before_cpu_seconds']:>12.2f}  {'yes' if r['same_bytes'] else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 1 if missed else 0


def _same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


if __name__ == "__main__":
    sys.exit(main())
