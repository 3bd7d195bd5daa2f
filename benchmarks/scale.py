"""Scale: many small commits on a large table, and one large table.

    .venv/bin/python benchmarks/scale.py                                  # full size: 1M rows, 10,000 commits; 10M rows
    .venv/bin/python benchmarks/scale.py --rows 100000 --commits 1000     # scaled down (the big table is 10x --rows)

Part 1: a table of --rows rows (the standard workload's columns, key id), then --commits commits of 100 rows each,
cycling update (SET value = value + 1, text = ...) / delete / append, with automatic compaction on (the default).
At commits 10, commits/10 and commits it reports:
  - commit latency: the median (and max) of the 9 commits around that point;
  - open: a fresh `logstore.open(path).table(name)` plus finding the latest version (median of 5);
  - version_at: on a fresh handle, resolving the timestamp of a commit half-way back (median of 5);
  - files a read of the latest version opens, and files on disk.
Then reads (fresh handle, median of --repeat) of the latest version and of the version half-way back, before and
after `Table.compact()`, each next to reading ONE plain Parquet file holding exactly that version's rows (pyarrow
zstd, read by DuckDB to Arrow).
Part 2: a table of 10 x --rows rows: create, one update commit of 10,000 rows, read of the latest version.

Goals (issue 7): commit latency at commit 10,000 within 1.2x of commit 10; open and version_at under 20 ms at
10,000 commits; after compact, a read of any version within 1.5x of the plain Parquet file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import logstore  # noqa: E402
from logstore import testing  # noqa: E402

from core import timed  # noqa: E402
from workload import Workload  # noqa: E402

START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
PER_COMMIT = 100
WINDOW = 9


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def files_under(path: str) -> int:
    return sum(len(f) for _d, _s, f in os.walk(path))


def files_by_kind(path: str) -> str:
    parquet = sum(1 for _d, _s, f in os.walk(path) for name in f if name.endswith(".parquet"))
    return f"{files_under(path):,} files ({parquet:,} Parquet)"


def vacuum_line(store, root: str, versions) -> str:
    """Vacuum with no minimum age (it removes only files no version needs); every version read must not change."""
    before = files_by_kind(store.path)
    report = logstore.open(store.path).table("t").vacuum(dry_run=False, older_than=0)
    fresh = logstore.open(store.path).table("t")
    for v in versions:
        assert fresh.read(version=v).equals(pq.read_table(os.path.join(root, f"plain-{v}.parquet"))), v
    return f"vacuum(older_than=0): {before} -> {files_by_kind(store.path)}, {len(report.removals):,} removed; reads unchanged"


def new_rows(rng, first_id: int, n: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
            "user_id": pa.array(rng.integers(0, 100_000, n, dtype=np.int64)),
            "category": pa.array([f"category_{i:02d}" for i in rng.integers(0, 50, n)]),
            "value": pa.array(np.round(rng.random(n) * 1000, 2)),
            "text": pa.array([f"appended row {first_id + i} of the scale benchmark" for i in range(n)]),
            "ts": pa.array(np.full(n, np.datetime64("2022-06-01T00:00:00", "us"))),
        }
    )


def plain_read(path: str, repeat: int) -> float:
    con = duckdb.connect()
    quoted = path.replace("'", "''")
    t, _ = timed(lambda: con.sql(f"SELECT * FROM read_parquet('{quoted}')").to_arrow_table(), repeat)
    return t


def part1(root: str, rows: int, commits: int, repeat: int) -> list[str]:
    out = []
    rng = np.random.default_rng(7)
    base = Workload(rows, 3).base
    store = logstore.init(os.path.join(root, "scale"))
    table = store.create_table("t", base, key="id", timestamp=START)
    del base
    live = np.ones(rows, dtype=bool)
    next_id = rows
    points = sorted({min(10, commits), max(commits // 10, 1), commits})
    latency = [0.0] * (commits + 1)
    measured = {}
    for k in range(1, commits + 1):
        moment = START + dt.timedelta(minutes=k)
        kind = k % 3
        t0 = time.perf_counter()
        if kind == 1:
            ids = np.sort(rng.choice(np.flatnonzero(live), PER_COMMIT, replace=False))
            where = f"id IN ({', '.join(map(str, ids))})"
            table.update(set={"value": "value + 1", "text": f"'updated in commit {k}'"}, where=where, timestamp=moment)
        elif kind == 2:
            ids = np.sort(rng.choice(np.flatnonzero(live), PER_COMMIT, replace=False))
            live[ids] = False
            table.delete(where=f"id IN ({', '.join(map(str, ids))})", timestamp=moment)
        else:
            table.append(new_rows(rng, next_id, PER_COMMIT), timestamp=moment)
            live = np.concatenate([live, np.ones(PER_COMMIT, dtype=bool)])
            next_id += PER_COMMIT
        latency[k] = time.perf_counter() - t0
        if k in points:
            back = max(k // 2, 1)
            target = START + dt.timedelta(minutes=back, seconds=30)
            t_open, v = timed(lambda: logstore.open(store.path).table("t").version, 5)
            assert v == k, (v, k)
            handles = [logstore.open(store.path).table("t") for _ in range(5)]
            for h in handles:
                h.version  # the open is measured above; this measures resolving the timestamp alone
            it = iter(handles)
            t_at, found = timed(lambda: next(it).version_at(target), 5)
            assert found == back, (found, back)
            plan = testing.plan(logstore.open(store.path).table("t"), k)
            measured[k] = {"open": t_open, "version_at": t_at, "plan_files": len(plan.sources()), "disk_files": files_under(store.path)}
        if k % 500 == 0:
            log(f"  committed {k} ({ms(latency[k])})")
    for k in points:
        window = [latency[i] for i in range(max(1, k - WINDOW + 1), k + 1)] if k >= WINDOW else latency[1 : WINDOW + 1]
        measured[k]["commit"] = statistics.median(window)
        measured[k]["commit_max"] = max(window)
    first = points[0]
    out.append(f"Part 1: {rows:,} rows, {commits:,} commits of {PER_COMMIT} rows (update/delete/append in turn), automatic compaction on")
    out.append("")
    out.append("| at commit | commit median (9 around) | max of the 9 | vs commit 10 | open + latest version | version_at | files a read opens | files on disk |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in points:
        m = measured[k]
        out.append(
            f"| {k:,} | {ms(m['commit'])} | {ms(m['commit_max'])} | {m['commit'] / measured[first]['commit']:.2f}x | {ms(m['open'])} | "
            f"{ms(m['version_at'])} | {m['plan_files']} | {m['disk_files']:,} |"
        )
    out.append("")

    # reads before and after compact, against one plain Parquet file of the same rows
    versions = [commits, commits // 2]
    plain = {}
    for v in versions:
        path = os.path.join(root, f"plain-{v}.parquet")
        pq.write_table(logstore.open(store.path).table("t").read(version=v).drop_columns([]), path, compression="zstd")
        plain[v] = plain_read(path, repeat)
    reads = {}
    reader = logstore.open(store.path)  # one reading process: its DuckDB connection is created once
    for phase in ("before compact", "after compact"):
        if phase == "after compact":
            t0 = time.perf_counter()
            made = logstore.open(store.path).table("t").compact()
            compact_time = time.perf_counter() - t0
        for v in versions:
            handle = logstore.open(store.path).table("t")
            handle.read(version=v)  # first use hashes new files once per process; measure warm reads
            reads[(phase, v)], _ = timed(lambda: reader.table("t").read(version=v), repeat)
            reads[(phase, v, "files")] = len(testing.plan(handle, v).sources())
    out.append(f"compact: {len(made)} blocks in {compact_time:.2f} s")
    out.append(vacuum_line(store, root, versions))
    out.append("")
    out.append("| read of version | plain Parquet file | before compact | files | ratio | after compact | files | ratio |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in versions:
        b, a = reads[("before compact", v)], reads[("after compact", v)]
        out.append(
            f"| {v:,} | {ms(plain[v])} | {ms(b)} | {reads[('before compact', v, 'files')]} | {b / plain[v]:.2f}x | "
            f"{ms(a)} | {reads[('after compact', v, 'files')]} | {a / plain[v]:.2f}x |"
        )
    return out


def part2(root: str, rows: int, repeat: int) -> list[str]:
    log(f"part 2: generating {rows:,} rows")
    w = Workload(rows, 3)
    store = logstore.init(os.path.join(root, "big"))
    t0 = time.perf_counter()
    table = store.create_table("t", w.base, key="id", timestamp=START)
    create = time.perf_counter() - t0
    rng = np.random.default_rng(11)
    ids = np.sort(rng.choice(rows, min(10_000, rows), replace=False))
    t0 = time.perf_counter()
    table.update(set={"value": "value + 1", "text": "'updated by the big commit'"}, where=f"id IN ({', '.join(map(str, ids))})", timestamp=START + dt.timedelta(hours=1))
    update = time.perf_counter() - t0
    del w
    logstore.open(store.path).table("t").read()  # first use hashes the files once per process
    reader = logstore.open(store.path)
    read, result = timed(lambda: reader.table("t").read(), repeat)
    path = os.path.join(root, "plain-big.parquet")
    pq.write_table(result, path, compression="zstd")
    plain = plain_read(path, repeat)
    return [
        f"Part 2: a table of {rows:,} rows",
        "",
        "| create | update commit of 10,000 rows | read latest | plain Parquet file | ratio |",
        "|---:|---:|---:|---:|---:|",
        f"| {create:.2f} s | {ms(update)} | {ms(read)} | {ms(plain)} | {read / plain:.2f}x |",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true", help="skip part 2 (the 10 x --rows table)")
    parser.add_argument("--only-big", action="store_true", help="run only part 2")
    args = parser.parse_args(argv)
    lines = []
    with tempfile.TemporaryDirectory(prefix="logstore-scale-") as root:
        if not args.only_big:
            lines += part1(root, args.rows, args.commits, args.repeat) + [""]
        if not args.skip_big:
            lines += part2(root, 10 * args.rows, args.repeat)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
