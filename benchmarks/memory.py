"""Peak memory of reads and writes larger than memory (issue 17): today's way beside the streaming one.

Builds the standard workload's table (benchmarks/workload.py: `--rows` base rows, id the key, then `--commits`
commits of updates, deletes and appends) and a Parquet file of `--rows` new rows, then runs every case as a fresh
child process (started by a small launcher, so that its peak RSS is its own, cli_stream.py's way) and prints the
peak RSS and wall time of each:

    checkout    today: t.read() then pyarrow.parquet.write_table      new: `logstore checkout` (DuckDB COPY)
    append      today: t.append(pyarrow.parquet.read_table(file))     new: t.append(file)  (ingest.py)
    upsert      today: t.upsert(pyarrow.parquet.read_table(changed))  new: t.upsert(changed)  (ingest.rewrite)
    overwrite   today: t.overwrite(pq.read_table(changed))            new: t.overwrite(changed)  (ingest.rewrite)
                (`changed`: the `--rows` base rows with every 10th row's value changed: updates of the live rows,
                inserts of the rows the workload deleted, and for overwrite deletes of the rows it appended)
    iterate     today: t.read() then its batches                      new: for b in t.to_batches(): ...
    dask sum    today: one process, t.read(columns).to_pandas().sum() new: t.to_dask(columns).sum() on a
                                                                      2-worker LocalCluster (time; cluster start and the workers'
                                                                      import of logstore not counted)
    ray sum     new: t.to_ray(columns).sum(columns) on a local Ray of 2 CPUs (run with dask sum, against its "today")

Goals (10M rows): checkout <= 1 GB, append, upsert and overwrite <= 1.5 GB, iterate <= 500 MB, dask sum <= 1.2x one process's read.

    python benchmarks/memory.py --rows 10000000 --commits 30
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

import logstore

from core import run_logstore
from workload import Workload

GOALS_MB = {"checkout": 1024, "append": 1536, "upsert": 1536, "overwrite": 1536, "iterate": 500}
DASK_GOAL = 1.2
CHANGED = "changed_rows.parquet"  # beside the new rows' file
NUMERIC = ["id", "user_id", "value"]
LAUNCH = (
    "import os, sys\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "os.write(2, b'\\nmaxrss_kb=%d\\n' % usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))"
)

CODE = {
    "checkout/today": "t = logstore.open(S).table('bench'); pq.write_table(t.read(), OUT, compression='zstd')",
    "append/today": "t = logstore.open(S).table('bench'); t.append(pq.read_table(FILE))",
    "append/new": "t = logstore.open(S).table('bench'); t.append(FILE)",
    "upsert/today": "t = logstore.open(S).table('bench'); t.upsert(pq.read_table(CHANGED))",
    "upsert/new": "t = logstore.open(S).table('bench'); t.upsert(CHANGED)",
    "overwrite/today": "t = logstore.open(S).table('bench'); t.overwrite(pq.read_table(CHANGED))",
    "overwrite/new": "t = logstore.open(S).table('bench'); t.overwrite(CHANGED)",
    "iterate/today": "t = logstore.open(S).table('bench'); n = sum(b.num_rows for b in t.read().to_batches())",
    "iterate/new": "t = logstore.open(S).table('bench'); n = sum(b.num_rows for b in t.to_batches())",
    "dask sum/today": (
        "t = logstore.open(S).table('bench')\n"
        "for _ in range(2):  # cold (first use of the files: their checksums), then warm\n"
        "    t0 = time.perf_counter(); t.read(columns=COLS).to_pandas().sum()\n"
        "    sys.stderr.write('seconds=%f\\n' % (time.perf_counter() - t0))"
    ),
    "dask sum/new": (
        "import distributed\n"
        "if __name__ == '__main__':\n"
        "    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)\n"
        "    client = distributed.Client(cluster)\n"
        "    client.run(lambda: __import__('logstore.fragments'))  # workers start with the library loaded\n"
        "    t = logstore.open(S).table('bench')\n"
        "    for _ in range(2):  # cold (every process checks the files it reads once), then warm\n"
        "        t0 = time.perf_counter(); client.compute(t.to_dask(columns=COLS).sum()).result()\n"
        "        sys.stderr.write('seconds=%f\\n' % (time.perf_counter() - t0))\n"
        "    client.close(); cluster.close()"
    ),
    "ray sum/new": (
        "import ray\n"
        "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)\n"
        "ray.data.DataContext.get_current().enable_progress_bars = False\n"
        "t = logstore.open(S).table('bench')\n"
        "for _ in range(2):  # cold (the workers' first use of the files), then warm\n"
        "    t0 = time.perf_counter(); t.to_ray(columns=COLS).sum(COLS)\n"
        "    sys.stderr.write('seconds=%f\\n' % (time.perf_counter() - t0))\n"
        "ray.shutdown()"
    ),
}


def run(case: str, store: str, file: str, out: str) -> tuple[float, float, list[float]]:
    """Peak RSS (MB), wall seconds of the child, and the seconds it reported itself (dask cases: cold, warm)."""
    if case == "checkout/new":
        argv = [sys.executable, "-m", "logstore_cli", "--store", store, "checkout", "bench", "-o", out, "--force"]
    else:
        changed = os.path.join(os.path.dirname(file), CHANGED)
        head = f"import sys, time, logstore, pyarrow.parquet as pq\nS, FILE, CHANGED, OUT, COLS = {store!r}, {file!r}, {changed!r}, {out!r}, {NUMERIC!r}\n"
        script = os.path.join(os.path.dirname(out), "case.py")
        with open(script, "w") as f:
            f.write(head + CODE[case] + "\n")
        argv = [sys.executable, script]
    t0 = time.perf_counter()
    child = subprocess.run([sys.executable, "-S", "-c", LAUNCH, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    seconds = time.perf_counter() - t0
    err = child.stderr.decode(errors="replace")
    if child.returncode != 0:
        raise SystemExit(f"{case} failed:\n{err}")
    reported = [float(line.split("=", 1)[1]) for line in err.splitlines() if line.startswith("seconds=")]
    rss = int(err.rsplit("maxrss_kb=", 1)[1].split()[0]) / 1024
    return rss, seconds, reported


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--dir", default=None, help="work directory, kept (default: a temporary one)")
    parser.add_argument("--cases", default=None, help="comma-separated case names to run (default: all), e.g. iterate,dask sum")
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="logstore-memory-")
    os.makedirs(root, exist_ok=True)
    print(f"building {args.rows:,} rows and {args.commits} commits in {root} ...", flush=True)
    store = os.path.join(root, "store")
    file = os.path.join(root, "new_rows.parquet")
    if os.path.exists(file):  # a store built by an earlier run with --dir
        table = logstore.open(store).table("bench")
    else:
        w = Workload(rows=args.rows, commits=args.commits)
        table = run_logstore(w, root, lambda m: None)["table"]
        fresh = w.base.set_column(0, "id", pa.array(w.base.column("id").to_numpy() + 10 * args.rows))  # new keys
        pq.write_table(fresh, file, compression="zstd")
        value = w.base.column("value").to_numpy().copy()
        value[::10] += 1  # every 10th row changed
        changed = w.base.set_column(w.base.column_names.index("value"), "value", pa.array(value))
        pq.write_table(changed, os.path.join(root, CHANGED), compression="zstd")
        del fresh, w, changed, value
    print(f"version {table.version}: {table.commit_info().num_rows:,} rows")
    out = os.path.join(root, "out.parquet")
    results = {}
    names = ["checkout", "iterate", "dask sum", "append", "upsert", "overwrite"]
    chosen = [n.strip() for n in args.cases.split(",")] if args.cases else names
    cases = [f"{n}/{which}" for n in names if n in chosen for which in ("today", "new")]
    if "dask sum" in chosen:  # ray beside it, against the same one-process read
        cases.append("ray sum/new")
    for case in cases:
        target = store
        if case.split("/")[0] in ("append", "upsert", "overwrite"):  # each write on its own copy of the store
            target = os.path.join(root, "copy")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(store, target)
        results[case] = run(case, target, file, out)
        rss, seconds, reported = results[case]
        work = f"   (work: cold {reported[0]:.1f} s, warm {reported[1]:.1f} s)" if reported else ""
        print(f"  {case:16} peak RSS {rss:8.0f} MB   {seconds:6.1f} s{work}", flush=True)
    print("\ncase       today MB    new MB   goal")
    for name, goal in GOALS_MB.items():
        if f"{name}/new" not in results:
            continue
        today, new = results[f"{name}/today"][0], results[f"{name}/new"][0]
        print(f"{name:9} {today:9.0f} {new:9.0f}   <= {goal} MB: {'met' if new <= goal else 'MISSED'}")
    for i, label in enumerate(("cold", "warm") if "dask sum/new" in results else ()):
        ratio = results["dask sum/new"][2][i] / results["dask sum/today"][2][i]
        print(f"dask sum ({label}): {ratio:.2f}x one process's read (goal <= {DASK_GOAL}x: {'met' if ratio <= DASK_GOAL else 'MISSED'})")
    for i, label in enumerate(("cold", "warm") if "ray sum/new" in results else ()):
        ratio = results["ray sum/new"][2][i] / results["dask sum/today"][2][i]
        print(f"ray sum ({label}): {ratio:.2f}x one process's read")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
