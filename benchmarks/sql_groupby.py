"""SQL time travel benchmark (issue 4): a GROUP BY over one pinned version, against one plain Parquet file.

    .venv/bin/python benchmarks/sql_groupby.py                                   # 1M rows, 300 commits, version 150
    .venv/bin/python benchmarks/sql_groupby.py --rows 100000 --commits 30 --version 15 --repeat 5   # quick

Builds the standard workload (benchmarks/workload.py, driven by core.run_logstore), then times

    logstore: store.sql("SELECT category, count(*), avg(value) FROM bench AS OF VERSION 150 GROUP BY category")
    floor:    the same query over read_parquet('<one zstd Parquet file holding exactly version 150's rows>')

each fetched to Python rows (median of --repeat warm runs, both sides alternated). The logstore time includes the
whole SQL path: tokenizing, parsing, resolving the version, planning the view, and running it. Both results are
checked to be equal. Goal: logstore within 1.5x of the floor.

Two more lines separate the SQL layer from the materialization it runs: "plan SQL" is the same GROUP BY over
logstore's materialization SQL for that version run directly (no rewriting), and "with snapshot" repeats the
logstore query after writing a snapshot of exactly that version (what a read costs once the plan is one file).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import logstore  # noqa: E402,F401
from logstore import testing  # noqa: E402
from logstore.sql import version_sql  # noqa: E402

from core import run_logstore  # noqa: E402
from workload import Workload  # noqa: E402

QUERY = "SELECT category, count(*), avg(value) FROM {source} GROUP BY category"
GOAL = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--version", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    progress("generating the workload ...")
    w = Workload(rows=args.rows, commits=args.commits)
    with tempfile.TemporaryDirectory(prefix="logstore-sql-bench-") as root:
        progress(f"running {args.commits} commits on logstore ...")
        run = run_logstore(w, root, lambda m: None)
        store = run["store"]
        (version, expected, _), = list(w.replay([args.version]))
        floor_path = os.path.join(root, f"floor-v{version}.parquet")
        pq.write_table(expected, floor_path, compression="zstd")

        ours = QUERY.format(source=f"bench AS OF VERSION {version}")
        floor = QUERY.format(source="read_parquet('" + floor_path.replace("'", "''") + "')")
        con = duckdb.connect()

        def run_ours():
            return store.sql(ours).fetchall()

        def run_floor():
            return con.sql(floor).fetchall()

        got, want = sorted(run_ours()), sorted(run_floor())  # also warms both
        correct = _same(got, want)
        table = store.table("bench")
        plan = testing.plan(table, version)
        direct = QUERY.format(source=f"({version_sql(table, version)})")
        cursor = store._connection().cursor()

        def run_plan():
            return cursor.sql(direct).fetchall()

        run_plan()
        ours_t, floor_t, bind_t, plan_t = [], [], [], []
        for _ in range(args.repeat):
            ours_t.append(_time(run_ours))
            floor_t.append(_time(run_floor))
            plan_t.append(_time(run_plan))
            bind_t.append(_time(lambda: store.sql(ours)))  # rewrite + bind only, nothing executed
        table._write_snapshot(version)
        run_ours()
        snap_t = [_time(run_ours) for _ in range(args.repeat)]
        snap_correct = _same(sorted(run_ours()), want)

    ours_s, floor_s, bind_s = statistics.median(ours_t), statistics.median(floor_t), statistics.median(bind_t)
    plan_s, snap_s = statistics.median(plan_t), statistics.median(snap_t)
    ratio = ours_s / floor_s
    print(f"workload: {w.describe()}")
    print(f"query:    {ours}")
    print(f"version {version}: {expected.num_rows:,} rows; plan reads snapshot of version {plan.snapshot_version} "
          f"+ {len(plan.inserts)} insert files + {len(plan.changes)} change files")
    print(f"logstore  {ours_s * 1000:8.1f} ms   (of which rewrite+bind {bind_s * 1000:.1f} ms)")
    print(f"floor     {floor_s * 1000:8.1f} ms   (one Parquet file, zstd)")
    print(f"ratio     {ratio:8.2f} x   goal <= {GOAL}x: {'ok' if ratio <= GOAL else 'MISSED'}; results equal: {correct}")
    print(f"plan SQL  {plan_s * 1000:8.1f} ms   (the same GROUP BY over the version's materialization SQL, no rewriting)")
    print(f"with snapshot of v{version}  {snap_s * 1000:.1f} ms = {snap_s / floor_s:.2f}x floor; results equal: {snap_correct}")
    return 0 if correct and snap_correct else 1


def _same(got, want) -> bool:
    return len(got) == len(want) and all(
        a[0] == b[0] and a[1] == b[1] and math.isclose(a[2], b[2], rel_tol=1e-9) for a, b in zip(got, want)
    )


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
