"""The core benchmark: the standard workload (benchmarks/workload.py) on logstore, against the floor.

    .venv/bin/python benchmarks/core.py                          # full size: 1M rows, 300 commits
    .venv/bin/python benchmarks/core.py --rows 100000 --commits 30 --repeat 3    # a quick run

Prints one table: create time; median and p95 commit latency per kind; bytes on disk against the floor (the base
rows + the changed rows, each set written once as Parquet zstd with pyarrow), before and after `vacuum(older_than=0)`
(which removes only files no version needs: the small change files compactions replaced); and read times of versions 0, 1/6,
1/2, 5/6 and all of the commits, and of a timestamp, each next to the read of ONE plain Parquet file holding exactly
that version's rows (pyarrow zstd, read the same way: DuckDB `SELECT * FROM read_parquet(...)` to an Arrow table).
Read times are the median of --repeat warm reads, both sides measured alternately in the same run. Every read is
also checked: logstore's rows for that version must equal the expected rows exactly (same order, same values).
Goals (issue 2): bytes <= 1.3x floor, update median <= 50 ms, append median <= 15 ms, every read <= 1.5x.
Goals (issue 13): commit medians update <= 25 ms, delete <= 20 ms, append <= Lance's append median in the same run
(each append is followed by Lance appending the same rows to its own copy of the base rows, so both see the same
machine; `--no-lance` skips it), and every p95 <= 2x its median.
"""

from __future__ import annotations

import argparse
import gc
import json
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

import logstore  # noqa: E402

from workload import APPEND, DELETE, UPDATE, Workload  # noqa: E402

GOALS = {"bytes": 1.3, UPDATE: 0.050, APPEND: 0.015, "read": 1.5}
COMMIT_GOALS = {UPDATE: 0.025, DELETE: 0.020}  # issue 13; append: at most Lance's median, p95 at most 2x the median
P95_GOAL = 2.0
LANCE = "lance append"


def apply_step(table, step) -> None:
    """Commit one workload step to a logstore table."""
    if step.kind == UPDATE:
        table.update(set=step.assignments, where=step.where, timestamp=step.timestamp)
    elif step.kind == DELETE:
        table.delete(where=step.where, timestamp=step.timestamp)
    else:
        table.append(step.rows, timestamp=step.timestamp)


def run_logstore(w: Workload, root: str, progress, *, lance: bool = False) -> dict:
    """Create the table and run every commit; return timings and the table. With `lance`, each append is followed
    by Lance appending the same rows to a dataset of the same base rows (timed alike: wall clock of the call)."""
    store = logstore.init(os.path.join(root, "store"))
    t0 = time.perf_counter()
    table = store.create_table("bench", w.base, key="id", timestamp=w.start)
    create = time.perf_counter() - t0
    latency = {UPDATE: [], DELETE: [], APPEND: [], LANCE: []}
    lance_append = _lance_appender(w, root) if lance else None
    for step in w.steps:
        t0 = time.perf_counter()
        apply_step(table, step)
        latency[step.kind].append(time.perf_counter() - t0)
        if lance_append is not None and step.kind == APPEND:
            t0 = time.perf_counter()
            lance_append(step.rows)
            latency[LANCE].append(time.perf_counter() - t0)
        if step.version % 50 == 0:
            progress(f"  committed version {step.version}")
    return {"store": store, "table": table, "create": create, "latency": latency}


def _lance_appender(w: Workload, root: str):
    """A Lance dataset of the base rows, and the append compare.py's Lance driver makes (write_dataset, mode append)."""
    import lance

    path = os.path.join(root, "lance")
    lance.write_dataset(w.base, path)
    return lambda rows: lance.write_dataset(rows, path, mode="append")


def disk_bytes(path: str) -> int:
    total = 0
    for dirpath, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "_staging"]
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def write_floor(w: Workload, root: str) -> dict:
    """The byte floor: base rows + updated rows' new images + deleted ids + appended rows, each as Parquet zstd."""
    sizes = {}
    for name, table in {"base": w.base, **w.changes()}.items():
        path = os.path.join(root, f"floor-{name}.parquet")
        pq.write_table(table, path, compression="zstd")
        sizes[name] = os.path.getsize(path)
    return sizes


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_reads(w: Workload, table, root: str, repeat: int, progress) -> list[dict]:
    c = w.commits
    versions = [0, c // 6, c // 2, 5 * c // 6, c]
    moment = w.steps[(2 * c) // 3 + c // 12 - 1].timestamp + (w.steps[1].timestamp - w.steps[0].timestamp) / 2
    at_moment = w.version_at(moment)
    wanted = sorted(set(versions + [at_moment]))
    con = duckdb.connect()
    rows = []
    selectors = [(f"version {v}", {"version": v}, v) for v in versions] + [(f"as_of {moment:%Y-%m-%d %H:%M} (v{at_moment})", {"as_of": moment}, at_moment)]
    expected = {v: t for v, t, _ in w.replay(wanted)}
    for label, selector, version in selectors:
        floor_path = os.path.join(root, f"floor-v{version}.parquet")
        if not os.path.exists(floor_path):
            pq.write_table(expected[version], floor_path, compression="zstd")
        sql = f"SELECT * FROM read_parquet('{floor_path}')"
        # warm both once, then alternate so that noise hits both sides alike
        got = table.read(**selector)
        con.sql(sql).to_arrow_table()
        ls_times, floor_times = [], []
        for _ in range(repeat):
            ls_times.append(timed(lambda: table.read(**selector), 1)[0])
            floor_times.append(timed(lambda: con.sql(sql).to_arrow_table(), 1)[0])
        ok = got.cast(expected[version].schema).equals(expected[version]) if got.schema.names == expected[version].schema.names else False
        row = {
            "read": label,
            "version": version,
            "rows": got.num_rows,
            "logstore_s": statistics.median(ls_times),
            "floor_s": statistics.median(floor_times),
            "correct": ok,
        }
        row["ratio"] = row["logstore_s"] / row["floor_s"]
        rows.append(row)
        progress(f"  read {label}: {row['logstore_s'] * 1000:.1f} ms vs {row['floor_s'] * 1000:.1f} ms, correct={ok}")
    return rows


def report(w: Workload, run: dict, on_disk: int, floor: dict, reads: list[dict]) -> tuple[str, dict]:
    lat = run["latency"]
    floor_total = sum(floor.values())
    lines = [f"workload: {w.describe()}", ""]
    lines.append(f"{'measure':<44} {'logstore':>12} {'floor':>12} {'ratio':>7}  goal")

    def line(name, value, floor_value="", ratio="", goal=""):
        lines.append(f"{name:<44} {value:>12} {floor_value:>12} {ratio:>7}  {goal}")

    def verdict(ok):
        return "met" if ok else "MISSED"

    results = {"create_s": run["create"]}
    line("create (version 0)", f"{run['create']:.2f} s")
    lance = statistics.median(lat[LANCE]) if lat.get(LANCE) else None
    commit_met = {}
    for kind in (UPDATE, DELETE, APPEND):
        med, p95 = statistics.median(lat[kind]), percentile(lat[kind], 0.95)
        goals = []
        if kind in GOALS:
            goals.append(f"median <= {GOALS[kind] * 1000:.0f} ms: {verdict(med <= GOALS[kind])}")
        limit = COMMIT_GOALS.get(kind, lance)
        if limit is not None:
            commit_met[f"{kind} median"] = med <= limit
            commit_met[f"{kind} p95"] = p95 <= P95_GOAL * med
            goals.append(f"issue 13: <= {limit * 1000:.1f} ms: {verdict(med <= limit)}, p95 <= {P95_GOAL:g}x: {verdict(p95 <= P95_GOAL * med)}")
        line(f"{kind} commit latency median / p95 (ms)", f"{med * 1000:.1f} / {p95 * 1000:.1f}", goal="; ".join(goals))
        results[f"{kind}_median_s"], results[f"{kind}_p95_s"] = med, p95
    if lance is not None:
        lance_p95 = percentile(lat[LANCE], 0.95)
        line("Lance append median / p95 (ms), same run", f"{lance * 1000:.1f} / {lance_p95 * 1000:.1f}")
        results["lance_append_median_s"], results["lance_append_p95_s"] = lance, lance_p95
    before, on_disk = on_disk
    line("bytes on disk before vacuum (MB)", f"{before / 1e6:.1f}", f"{floor_total / 1e6:.1f}", f"{before / floor_total:.2f}x")
    ratio = on_disk / floor_total
    line("bytes on disk after vacuum (MB)", f"{on_disk / 1e6:.1f}", f"{floor_total / 1e6:.1f}", f"{ratio:.2f}x", f"<= {GOALS['bytes']}x: {verdict(ratio <= GOALS['bytes'])}")
    floor_parts = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in floor.items())
    lines.append(f"{'':<44} (floor MB: {floor_parts})")
    results.update(bytes=on_disk, bytes_before_vacuum=before, floor_bytes=floor_total, bytes_ratio=ratio)
    worst = max(r["ratio"] for r in reads)
    for r in reads:
        ok = r["ratio"] <= GOALS["read"]
        line(f"read {r['read']} (ms)", f"{r['logstore_s'] * 1000:.1f}", f"{r['floor_s'] * 1000:.1f}", f"{r['ratio']:.2f}x",
             f"<= {GOALS['read']}x: {verdict(ok)}{'' if r['correct'] else '  WRONG ROWS'}")
    results["reads"] = reads
    results["worst_read_ratio"] = worst
    correct = all(r["correct"] for r in reads)
    lines.append("")
    lines.append(f"correctness: {'every read equals the expected rows' if correct else 'SOME READS DIFFER FROM THE EXPECTED ROWS'}")
    met = {
        "bytes": ratio <= GOALS["bytes"],
        "update": results[f"{UPDATE}_median_s"] <= GOALS[UPDATE],
        "append": results[f"{APPEND}_median_s"] <= GOALS[APPEND],
        "reads": worst <= GOALS["read"],
    }
    lines.append("goals: " + ", ".join(f"{k} {verdict(v)}" for k, v in met.items()))
    if commit_met:
        lines.append("commit goals (issue 13): " + ", ".join(f"{k} {verdict(v)}" for k, v in commit_met.items()))
    results["correct"], results["goals_met"], results["commit_goals_met"] = correct, met, commit_met
    return "\n".join(lines), results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300, help="a multiple of 3: equal blocks of updates, deletes, appends")
    parser.add_argument("--repeat", type=int, default=5, help="reads per measurement (the median is reported)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--keep", help="run in this directory (kept) instead of a temporary one")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--no-lance", action="store_true", help="do not time Lance's appends next to logstore's")
    args = parser.parse_args()

    def progress(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    progress("generating the workload ...")
    w = Workload(args.rows, args.commits)
    with tempfile.TemporaryDirectory(prefix="logstore-bench-") as tmp:
        root = args.keep or tmp
        os.makedirs(root, exist_ok=True)
        progress("running the commits on logstore ...")
        run = run_logstore(w, root, progress, lance=not args.no_lance)
        on_disk = disk_bytes(os.path.join(root, "store"))
        # vacuum removes only files no version needs (here: the small change files compactions replaced), so
        # every version still reads the same; the reads below run after it and check every row
        run["table"].vacuum(dry_run=False, older_than=0)
        on_disk = (on_disk, disk_bytes(os.path.join(root, "store")))
        floor = write_floor(w, root)
        progress("reading ...")
        reads = bench_reads(w, run["table"], root, args.repeat, progress)
        text, results = report(w, run, on_disk, floor, reads)
    print(text)
    if args.json:
        results["workload"] = {"rows": args.rows, "commits": args.commits, "repeat": args.repeat}
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0 if results["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
