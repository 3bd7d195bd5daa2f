"""logstore against its peers on the standard workload (benchmarks/workload.py): Delta Lake (deltalake) and Lance.

    .venv/bin/python benchmarks/compare.py                               # full size: 1M rows, 300 commits
    .venv/bin/python benchmarks/compare.py --rows 100000 --commits 30    # a quick run

One process, one system after another, each in a fresh temporary directory, the same data and the same commits
(same seed). Prints one table: create time; median and p95 commit latency per kind; bytes on disk against the floor
(the base rows plus the changed rows, each written once as Parquet zstd with pyarrow), for logstore before and after
`vacuum(older_than=0)` (which removes only files no version needs; the peers' clean-ups would delete old versions,
so they get none); reads as of versions 0, 1/6,
1/2, 5/6 and all of the commits and as of a timestamp (median of --repeat reads; each read opens the version and
materializes every column to an Arrow table); the GROUP BY category query as of version 1/2 (DuckDB over each
system's relation/dataset). The last columns are the ratios logstore/peer (below 1 means logstore is faster/smaller).

Versions: logstore and Delta number the creation 0 and each commit +1; Lance numbers the creation 1, so Lance
version v+1 is compared with version v. The timestamp read asks for "the time of version 1/2 plus a moment": for
logstore the (backdated) commit time of that version, for Delta and Lance the wall-clock time right after that
commit (neither can backdate a commit). Every read's row count and sum(value) are checked against the workload's
expected state, and the GROUP BY answers must agree across systems.

Goals (issue 7): bytes below Lance's and at least 50x below Delta's; update and delete commits at least 2x faster
than Lance's; reads no slower than Delta's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import logstore  # noqa: E402

from core import apply_step  # noqa: E402
from core import timed as median_of  # noqa: E402
from workload import APPEND, DELETE, UPDATE, Workload  # noqa: E402

KINDS = (UPDATE, DELETE, APPEND)
GROUP_BY = "SELECT category, count(*) AS n, round(sum(value), 2) AS total FROM x GROUP BY category ORDER BY category"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def dir_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except FileNotFoundError:
                pass
    return total


def floor_bytes(w: Workload, root: str) -> int:
    """The bytes of the data that actually exists: base and each set of changed rows once, Parquet zstd."""
    total = 0
    for name, table in [("base", w.base)] + sorted(w.changes().items()):
        path = os.path.join(root, f"floor-{name}.parquet")
        pq.write_table(table, path, compression="zstd")
        total += os.path.getsize(path)
        os.unlink(path)
    return total


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# --- the three systems: each returns a dict of measurements -----------------------------------------------------


class System:
    name = "?"
    version_offset = 0

    def __init__(self, root: str):
        self.root = root

    def run(self, w: Workload, read_versions, ts_version: int, repeat: int, expected) -> dict:
        result = {"latency": {k: [] for k in KINDS}}
        result["create"], _ = timed(lambda: self.create(w))
        ts_wall = None
        for step in w.steps:
            t, _ = timed(lambda: self.commit(step))
            result["latency"][step.kind].append(t)
            if step.version == ts_version:
                ts_wall = dt.datetime.now(dt.UTC)
                time.sleep(0.002)
            if step.version % 50 == 0:
                log(f"  {self.name}: committed version {step.version}")
        result["bytes_before"] = dir_bytes(self.path)
        self.maintain()
        result["bytes"] = dir_bytes(self.path)
        result["files"] = sum(len(f) for _d, _s, f in os.walk(self.path))
        reads = {}
        for v in read_versions:
            reads[f"read v{v}"], table = median_of(lambda: self.read(v), repeat)
            check(self.name, f"v{v}", table, expected[v])
        moment = self.moment(w, ts_version, ts_wall)
        reads["read as of timestamp"], table = median_of(lambda: self.read_as_of(moment), repeat)
        check(self.name, "timestamp", table, expected[ts_version])
        reads[f"GROUP BY as of v{ts_version}"], answer = median_of(lambda: self.group_by(ts_version), repeat)
        result["reads"], result["group_by"] = reads, answer
        return result

    def moment(self, w, version, wall):
        return wall

    def maintain(self):
        """Routine clean-up that keeps every version readable (reads below check it); none for the peers, whose
        vacuum / cleanup_old_versions would delete the old versions the reads need."""


class Logstore(System):
    name = "logstore"

    def maintain(self):
        self.table.vacuum(dry_run=False, older_than=0)  # only files no version needs: those compactions replaced

    def create(self, w):
        self.store = logstore.init(os.path.join(self.root, "store"))
        self.path = self.store.path
        self.table = self.store.create_table("bench", w.base, key="id", timestamp=w.start)

    def commit(self, step):
        apply_step(self.table, step)

    def moment(self, w, version, wall):
        return w.steps[version - 1].timestamp + dt.timedelta(minutes=30)

    def _open(self):
        # a fresh table handle (no commit record or plan cached from the commits) on one reader store opened once,
        # so its DuckDB connection (~25 ms to create) is set up once, as a reading process would
        if not hasattr(self, "reader"):
            self.reader = logstore.open(self.path)
        return self.reader.table("bench")

    def read(self, v):
        return self._open().read(version=v)

    def read_as_of(self, moment):
        return self._open().read(as_of=moment)

    def group_by(self, v):
        rel = self._open().to_duckdb(version=v)
        return rel.query("x", GROUP_BY).fetchall()


class Delta(System):
    name = "delta"

    def create(self, w):
        from deltalake import DeltaTable, write_deltalake

        self.path = os.path.join(self.root, "delta")
        write_deltalake(self.path, w.base)
        self.dt = DeltaTable(self.path)

    def commit(self, step):
        from deltalake import write_deltalake

        if step.kind == UPDATE:
            self.dt.update(updates=step.assignments, predicate=step.where)
        elif step.kind == DELETE:
            self.dt.delete(step.where)
        else:
            write_deltalake(self.dt, step.rows, mode="append")

    def read(self, v):
        from deltalake import DeltaTable

        return DeltaTable(self.path, version=v).to_pyarrow_table()

    def read_as_of(self, moment):
        from deltalake import DeltaTable

        t = DeltaTable(self.path)
        t.load_as_version(moment)
        return t.to_pyarrow_table()

    def group_by(self, v):
        from deltalake import DeltaTable

        x = DeltaTable(self.path, version=v).to_pyarrow_dataset()  # noqa: F841 - DuckDB scans it by name
        return duckdb.sql(GROUP_BY).fetchall()


class Lance(System):
    name = "lance"
    version_offset = 1

    def create(self, w):
        import lance

        self.path = os.path.join(self.root, "lance")
        self.ds = lance.write_dataset(w.base, self.path)

    def commit(self, step):
        import lance

        if step.kind == UPDATE:
            self.ds.update(step.assignments, where=step.where)
        elif step.kind == DELETE:
            self.ds.delete(step.where)
        else:
            self.ds = lance.write_dataset(step.rows, self.path, mode="append")

    def read(self, v):
        import lance

        return lance.dataset(self.path, version=v + 1).to_table()

    def read_as_of(self, moment):
        import lance

        local = dt.datetime.fromtimestamp(moment.timestamp())  # lance compares naive local times
        return lance.dataset(self.path, asof=local).to_table()

    def group_by(self, v):
        import lance

        x = lance.dataset(self.path, version=v + 1)  # noqa: F841 - DuckDB scans it by name
        return duckdb.sql(GROUP_BY).fetchall()


def check(system: str, what: str, table: pa.Table, expected: tuple[int, float]) -> None:
    rows, total = expected
    got = (table.num_rows, round(pc.sum(table.column("value")).as_py() or 0.0, 2))
    if got[0] != rows or abs(got[1] - total) > 1e-6 * max(1.0, abs(total)):
        raise AssertionError(f"{system} read {what}: {got}, expected {(rows, total)}")


# --- report -----------------------------------------------------------------------------------------------------


def fmt_time(s: float) -> str:
    return f"{s * 1000:,.1f} ms" if s < 10 else f"{s:,.1f} s"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1024
    return str(n)


def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def report(results: dict, floor: int, names) -> str:
    rows = []

    def add(metric, values, fmt):
        cells = [fmt(values[n]) if n in values else "-" for n in names]
        ratios = []
        for peer in names[1:]:
            if names[0] in values and peer in values and values[peer]:
                ratios.append(f"{values[names[0]] / values[peer]:.2f}x")
            else:
                ratios.append("-")
        rows.append([metric] + cells + ratios)

    add("create", {n: r["create"] for n, r in results.items()}, fmt_time)
    for kind in KINDS:
        add(f"{kind} commit median", {n: statistics.median(r["latency"][kind]) for n, r in results.items()}, fmt_time)
        add(f"{kind} commit p95", {n: p95(r["latency"][kind]) for n, r in results.items()}, fmt_time)
    add("bytes on disk, no clean-up", {n: r["bytes_before"] for n, r in results.items()}, fmt_bytes)
    add("bytes on disk", {n: r["bytes"] for n, r in results.items()}, fmt_bytes)
    add("  x floor", {n: r["bytes"] / floor for n, r in results.items()}, lambda x: f"{x:.2f}x")
    add("files on disk", {n: r["files"] for n, r in results.items()}, lambda x: f"{x:,}")
    for metric in next(iter(results.values()))["reads"]:
        add(metric, {n: r["reads"][metric] for n, r in results.items()}, fmt_time)
    header = ["metric"] + list(names) + [f"{names[0]}/{p}" for p in names[1:]]
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    line = lambda row: "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |"  # noqa: E731
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    out.append(f"\nfloor: {fmt_bytes(floor)} (base + changed rows, each once, Parquet zstd)")
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="reads per measurement (the median is shown)")
    parser.add_argument("--systems", default="logstore,delta,lance")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)

    w = Workload(args.rows, args.commits)
    c = args.commits
    read_versions = sorted({0, c // 6, c // 2, 5 * c // 6, c})
    ts_version = c // 2
    log(f"workload: {w.describe()}")
    expected = {}
    for v, rows, _change in w.replay(read_versions):
        expected[v] = (rows.num_rows, round(pc.sum(rows.column("value")).as_py(), 2))

    classes = {"logstore": Logstore, "delta": Delta, "lance": Lance}
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    results = {}
    with tempfile.TemporaryDirectory(prefix="logstore-compare-") as scratch:
        floor = floor_bytes(w, scratch)
        for name in names:
            root = tempfile.mkdtemp(prefix=f"{name}-", dir=scratch)
            log(f"{name}: running in {root}")
            gc.collect()
            results[name] = classes[name](root).run(w, read_versions, ts_version, args.repeat, expected)
            if args.keep:
                kept = tempfile.mkdtemp(prefix=f"logstore-compare-{name}-")
                shutil.copytree(root, kept, dirs_exist_ok=True)
                log(f"{name}: kept in {kept}")
            shutil.rmtree(root, ignore_errors=True)
    answers = {n: r["group_by"] for n, r in results.items()}
    if len({repr(a) for a in answers.values()}) > 1:
        raise AssertionError(f"GROUP BY answers differ: {answers}")
    print(f"compare: {w.describe()}; reads are the median of {args.repeat}")
    print(report(results, floor, names))


if __name__ == "__main__":
    main()
