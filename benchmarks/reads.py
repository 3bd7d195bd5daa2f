"""Reads and GROUP BY of versions against one plain Parquet file holding the same rows (issue 13's read goals).

    .venv/bin/python benchmarks/reads.py                        # builds the standard workload (1M rows, 300 commits)
    .venv/bin/python benchmarks/reads.py --store DIR            # an existing store with a table `bench` (kept)
    CODE=/path/to/other/checkout .venv/bin/python benchmarks/reads.py --store DIR    # the same, with other code

For versions 0, 1/6, 1/2, 3/4 and all of the commits: the median wall and CPU time (user + system of every thread of
the process, steadier than wall time on a shared machine) of `table.read(version=v)` (every column, to Arrow) and of
a GROUP BY category over `table.to_duckdb(version=v)`, each next to the same over ONE plain Parquet file holding
exactly that version's rows (pyarrow zstd), read alternately in the same run. Goals (issue 13): every read at most
1.15x, every GROUP BY at most 1.3x the plain file. `CODE` points at another checkout's root to measure its code on
the same store (an A/B: the store must be in a format both read).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, os.environ.get("CODE", str(HERE.parent)))

import duckdb  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import logstore  # noqa: E402

from core import apply_step  # noqa: E402
from workload import Workload  # noqa: E402

GROUP_BY = "SELECT category, count(*) AS n, round(sum(value), 2) AS total FROM x GROUP BY category ORDER BY category"
GOALS = {"read": 1.15, "group by": 1.3}


def build(root: str, rows: int, commits: int) -> None:
    w = Workload(rows=rows, commits=commits)
    store = logstore.init(root)
    table = store.create_table("bench", w.base, key="id", timestamp=w.start)
    for step in w.steps:
        apply_step(table, step)
    table.vacuum(dry_run=False, older_than=0)


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an existing store (table `bench`); default: build the standard workload")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="logstore-reads-")
    try:
        root = args.store or os.path.join(tmp, "store")
        if not args.store:
            print("building the workload ...", file=sys.stderr, flush=True)
            build(root, args.rows, args.commits)
        table = logstore.open(root).table("bench")
        last = table.version
        con = duckdb.connect()
        print(f"{'version':>8}  {'read wall':>16}  {'read cpu':>16}  {'GROUP BY wall':>16}  {'GROUP BY cpu':>16}")
        worst = {"read": 0.0, "group by": 0.0}
        for v in sorted({0, last // 6, last // 2, 3 * last // 4, last}):
            plain = os.path.join(tmp, f"plain-{v}.parquet")
            pq.write_table(table.read(version=v), plain, compression="zstd")
            ours_read = timed(lambda: table.read(version=v), args.repeat)
            their_read = timed(lambda: con.sql(f"SELECT * FROM read_parquet('{plain}')").to_arrow_table(), args.repeat)
            ours_gb = timed(lambda: table.to_duckdb(version=v).query("x", GROUP_BY).fetchall(), args.repeat)
            their_gb = timed(lambda: con.sql(GROUP_BY.replace("FROM x", f"FROM read_parquet('{plain}')")).fetchall(), args.repeat)
            cells = []
            for name, ours, theirs in (("read", ours_read, their_read), ("group by", ours_gb, their_gb)):
                for i in (0, 1):
                    ratio = ours[i] / theirs[i]
                    cells.append(f"{ours[i] * 1000:6.1f}/{theirs[i] * 1000:6.1f} {ratio:4.2f}x")
                worst[name] = max(worst[name], ours[0] / theirs[0])
            print(f"{v:>8}  " + "  ".join(cells), flush=True)
        print(f"(ms, logstore / plain Parquet file, median of {args.repeat})")
        for name, goal in GOALS.items():
            print(f"goal {name} <= {goal}x the plain file (wall): worst {worst[name]:.2f}x: {'met' if worst[name] <= goal else 'MISSED'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
