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
system's relation/dataset); the change feed of the middle third of the commits (versions c/3+1 .. 2c/3, the delete
block of the standard workload) against Delta Lake's change data feed (`load_cdf`, the table created with
`delta.enableChangeDataFeed`, so Delta writes its CDF files in every commit of the run and their bytes count in its
bytes on disk); diff(0, c) against the obvious way to compute it: DuckDB's full outer join of the two versions stored
as plain Parquet files. The last columns are the ratios logstore/peer (below 1 means logstore is faster/smaller).

Versions: logstore and Delta number the creation 0 and each commit +1; Lance numbers the creation 1, so Lance
version v+1 is compared with version v. The timestamp read asks for "the time of version 1/2 plus a moment": for
logstore the (backdated) commit time of that version, for Delta and Lance the wall-clock time right after that
commit (neither can backdate a commit). Every read's row count and sum(value) are checked against the workload's
expected state, and the GROUP BY answers must agree across systems.

Goals (issue 7): bytes below Lance's and at least 50x below Delta's; update and delete commits at least 2x faster
than Lance's; reads no slower than Delta's. Goals (issue 13), printed as ratios below the table (median wall time
and median CPU time, user + system of every thread of this process): changes(c/3+1 .. 2c/3) at most 0.5x Delta's
change data feed of the same range, diff(0, c) at most 0.25x the full outer join; the append commit median against
Lance's is in the table. Goals (issue 19): after the workload, each system runs --merges merges of --merge-source rows
(benchmarks/merge.py's sources: half update matched rows, a quarter insert new ids, a quarter delete matched rows the
source flags as deleted) into its table as of the last commit, one after another in the same process; logstore's
median merge at least 3x faster than Delta Lake's (whose table has the change data feed on, as above) and faster than
Lance's merge_insert (plus a delete: Lance has no delete-when-matched clause), bytes written at most 1.5x the floor
of the changed rows (their new images and the deleted ids once, Parquet zstd).
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
CHANGES_GOAL = 0.5  # changes(c/3+1 .. 2c/3) / Delta's change data feed of the same range (issue 13)
DIFF_GOAL = 0.25  # diff(0, c) / full outer join of the two versions (issue 13)
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


def wall_and_cpu(fn, repeat: int):
    """(median wall time, median CPU time of this process, the last result) of `repeat` runs after one warm-up."""
    out = fn()
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def feed_range(commits: int) -> tuple[int, int]:
    """The versions of the change-feed goal: the middle third of the commits (the delete block)."""
    return commits // 3 + 1, 2 * commits // 3


def feed_rows(w: Workload, first: int, last: int) -> int:
    """Rows a change feed of versions first..last holds: an update's pre- and post-image, a delete, an insert."""
    sizes = {UPDATE: lambda s: 2 * len(s.ids), DELETE: lambda s: len(s.ids), APPEND: lambda s: s.rows.num_rows}
    return sum(sizes[s.kind](s) for s in w.steps if first <= s.version <= last)


# --- the three systems: each returns a dict of measurements -----------------------------------------------------


class System:
    name = "?"
    version_offset = 0

    def __init__(self, root: str):
        self.root = root

    def changes(self, first: int, last: int):
        """The row changes of versions first..last as an Arrow table (None: the system has no change feed)."""
        return None

    def run(self, w: Workload, read_versions, ts_version: int, repeat: int, expected, merges=None) -> dict:
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
        result["feed_bytes"] = self.feed_bytes()
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
        first, last = feed_range(w.commits)
        if self.changes(first, last) is not None:
            wall, cpu, feed = wall_and_cpu(lambda: self.changes(first, last), repeat)
            if feed.num_rows != feed_rows(w, first, last):
                raise AssertionError(f"{self.name} changes({first}, {last}): {feed.num_rows} rows, expected {feed_rows(w, first, last)}")
            result["changes"] = (wall, cpu)
        if hasattr(self, "diff"):
            wall, cpu, got = wall_and_cpu(lambda: self.diff(0, w.commits), repeat)
            result["diff"] = (wall, cpu, got.num_rows)
        if merges is not None:
            result["merge"] = self.run_merges(merges)
        return result

    def run_merges(self, merges) -> dict:
        """Issue 19: benchmarks/merge.py's merges, one after another, into this table as of the workload's last
        commit (a CDC pipeline's writer: the same process that made the commits). Each result is checked."""
        import merge as bench  # here, not at the top: merge.py imports this module

        times, written = [], []
        for m, source in enumerate(merges.sources):
            before = dir_bytes(self.path)
            t, _ = timed(lambda: self.merge(source))
            times.append(t)
            written.append(dir_bytes(self.path) - before)
            bench.check(self.name, m, self.read_latest(), merges.expected[m])
        log(f"  {self.name}: merges " + " ".join(f"{t:.3f}" for t in times) + " s")
        return {"median": statistics.median(times), "first": times[0], "bytes": statistics.median(written)}

    def feed_bytes(self) -> int | None:
        """Bytes of files kept only for the change feed (None: none)."""
        return None

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

    def changes(self, first, last):
        return self._open().changes(first, last)

    def diff(self, a, b):
        return self._open().diff(a, b)

    def merge(self, source):
        import merge as bench

        bench.merge_logstore(self.table, source)

    def read_latest(self):
        return self.table.read(columns=["id", "value"])


class Delta(System):
    name = "delta"

    def create(self, w):
        from deltalake import DeltaTable, write_deltalake

        self.path = os.path.join(self.root, "delta")
        # the change data feed on from the start, so every commit of the run writes its CDF files (_change_data/)
        write_deltalake(self.path, w.base, configuration={"delta.enableChangeDataFeed": "true"})
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

    def changes(self, first, last):
        from deltalake import DeltaTable

        return DeltaTable(self.path).load_cdf(starting_version=first, ending_version=last).read_all()

    def feed_bytes(self):
        return dir_bytes(os.path.join(self.path, "_change_data"))

    def merge(self, source):
        import merge as bench

        bench.merge_delta(self.path, source)

    def read_latest(self):
        from deltalake import DeltaTable

        return DeltaTable(self.path).to_pyarrow_table(columns=["id", "value"])


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

    def merge(self, source):
        import merge as bench

        bench.merge_lance(self.path, source)

    def read_latest(self):
        import lance

        return lance.dataset(self.path).to_table(columns=["id", "value"])


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


def full_join(old_path: str, new_path: str, columns) -> str:
    """diff(0, c) computed the obvious way: a full outer join of the two versions (plain Parquet files) on the key,
    IS DISTINCT FROM on every other column, the same output columns as logstore's diff, in key order."""
    old, new = f"read_parquet('{old_path}')", f"read_parquet('{new_path}')"
    values = [c for c in columns if c != "id"]
    changed = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in values)
    kind = "CASE WHEN o.id IS NULL THEN 'insert' WHEN n.id IS NULL THEN 'delete' ELSE 'update' END"
    cols = ", ".join(
        f"CASE WHEN n.id IS NULL THEN o.{c} ELSE n.{c} END AS {c}, "
        f"CASE WHEN o.id IS NOT NULL AND n.id IS NOT NULL AND o.{c} IS DISTINCT FROM n.{c} THEN o.{c} END AS _old_{c}"
        for c in values
    )
    changed_list = "list_filter([" + ", ".join(f"CASE WHEN o.{c} IS DISTINCT FROM n.{c} THEN '{c}' END" for c in values) + "], lambda x: x IS NOT NULL)"
    return (
        f"SELECT {kind} AS _change_type, coalesce(o.id, n.id) AS id, {cols}, "
        f"CASE WHEN o.id IS NOT NULL AND n.id IS NOT NULL THEN {changed_list} ELSE CAST([] AS VARCHAR[]) END AS _changed_columns "
        f"FROM {old} o FULL OUTER JOIN {new} n ON o.id = n.id WHERE o.id IS NULL OR n.id IS NULL OR {changed} ORDER BY id"
    )


def goals(results: dict, join: tuple[float, float, int], first: int, last: int, commits: int, merge_floor=None) -> str:
    """The issue-13 goals as ratios: wall time (median) and CPU time (median)."""
    out = ["", f"{'goal (issue 13)':<50} {'logstore':>22} {'baseline':>22} {'ratio wall / cpu':>17}  target"]

    def line(what, ours, theirs, target):
        ratio = (ours[0] / theirs[0], ours[1] / theirs[1])
        met = "met" if max(ratio) <= target else ("met by CPU time" if ratio[1] <= target else "MISSED")
        out.append(
            f"{what:<50} {fmt_time(ours[0]):>10} / {fmt_time(ours[1]):>9} {fmt_time(theirs[0]):>10} / {fmt_time(theirs[1]):>9} "
            f"{ratio[0]:>7.2f} / {ratio[1]:.2f}  <= {target}: {met}"
        )

    ours = results.get("logstore", {})
    if "changes" in ours and "changes" in results.get("delta", {}):
        line(f"changes({first} .. {last}) vs Delta's change data feed", ours["changes"], results["delta"]["changes"], CHANGES_GOAL)
    if "diff" in ours:
        if ours["diff"][2] != join[2]:
            raise AssertionError(f"diff(0, {commits}): {ours['diff'][2]} rows, the full join {join[2]}")
        line(f"diff(0, {commits}) vs full outer join ({join[2]:,} rows)", ours["diff"], join, DIFF_GOAL)
    out.append("(wall / CPU: medians; CPU is user + system time of every thread of the process)")
    out += merge_goals(results, merge_floor)
    return "\n".join(out)


def merge_goals(results: dict, floor) -> list[str]:
    """The issue-19 goals: a merge at least 3x faster than Delta Lake's, faster than Lance's, bytes <= 1.5x floor."""
    ours = results.get("logstore", {}).get("merge")
    if ours is None:
        return []
    out = ["", "goal (issue 19), merge median (first merge in brackets)"]
    for peer, target in (("delta", 1 / 3), ("lance", 1.0)):
        theirs = results.get(peer, {}).get("merge")
        if theirs is not None:
            ratio, first = ours["median"] / theirs["median"], ours["first"] / theirs["first"]
            met = "met" if ratio <= target else "MISSED"
            out.append(f"merge vs {peer:<6} {ratio:.2f}x ({first:.2f}x)  <= {target:.2f}: {met}")
    ratio = ours["bytes"] / floor
    out.append(f"merge bytes written {ratio:.2f}x the changed rows' floor  <= 1.5: {'met' if ratio <= 1.5 else 'MISSED'}")
    return out


def report(results: dict, floor: int, names, merge_floor=None) -> str:
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
    add("  of which change-feed files", {n: r["feed_bytes"] for n, r in results.items() if r["feed_bytes"] is not None}, fmt_bytes)
    add("files on disk", {n: r["files"] for n, r in results.items()}, lambda x: f"{x:,}")
    for metric in next(iter(results.values()))["reads"]:
        add(metric, {n: r["reads"][metric] for n, r in results.items()}, fmt_time)
    commits = next(iter(results.values()))["commits"]
    first, last = feed_range(commits)
    add(f"changes({first} .. {last})", {n: r["changes"][0] for n, r in results.items() if "changes" in r}, fmt_time)
    add(f"diff(0, {commits})", {n: r["diff"][0] for n, r in results.items() if "diff" in r}, fmt_time)
    merged = {n: r["merge"] for n, r in results.items() if "merge" in r}
    if merged:
        add("merge median", {n: m["median"] for n, m in merged.items()}, fmt_time)
        add("merge, first", {n: m["first"] for n, m in merged.items()}, fmt_time)
        add("merge bytes written (median)", {n: m["bytes"] for n, m in merged.items()}, fmt_bytes)
        if merge_floor:
            add("  x changed rows' floor", {n: m["bytes"] / merge_floor for n, m in merged.items()}, lambda x: f"{x:.2f}x")
    header = ["metric"] + list(names) + [f"{names[0]}/{p}" for p in names[1:]]
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    line = lambda row: "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |"  # noqa: E731
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    out.append(f"\nfloor: {fmt_bytes(floor)} (base + changed rows, each once, Parquet zstd)")
    return "\n".join(out)


def plan_merges(latest: pa.Table, args, scratch: str):
    """benchmarks/merge.py's sources (half updates, a quarter inserts, a quarter CDC-flagged deletes) drawn from the
    workload's last version, and the median floor of one merge's changed rows (None, None: no merges)."""
    if not args.merges:
        return None, None
    import merge as bench

    merges = bench.Merges(latest, args.merge_source, args.merges)
    return merges, statistics.median(bench.floor_bytes(parts, scratch) for parts in merges.floors)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="reads per measurement (the median is shown)")
    parser.add_argument("--systems", default="logstore,delta,lance")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--merges", type=int, default=7, help="merges after the workload (issue 19; 0: none)")
    parser.add_argument("--merge-source", type=int, default=10_000, help="source rows per merge")
    args = parser.parse_args(argv)

    w = Workload(args.rows, args.commits)
    c = args.commits
    read_versions = sorted({0, c // 6, c // 2, 5 * c // 6, c})
    ts_version = c // 2
    log(f"workload: {w.describe()}")
    expected = {}
    ends = {}  # versions 0 and c, for the full join diff(0, c) is compared with
    for v, rows, _change in w.replay(read_versions):
        expected[v] = (rows.num_rows, round(pc.sum(rows.column("value")).as_py(), 2))
        if v in (0, c):
            ends[v] = rows

    classes = {"logstore": Logstore, "delta": Delta, "lance": Lance}
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    results = {}
    with tempfile.TemporaryDirectory(prefix="logstore-compare-") as scratch:
        floor = floor_bytes(w, scratch)
        paths = {}
        for v, rows in ends.items():
            paths[v] = os.path.join(scratch, f"version-{v}.parquet")
            pq.write_table(rows, paths[v], compression="zstd")
        con = duckdb.connect()
        join_sql = full_join(paths[0], paths[c], ends[0].column_names)
        wall, cpu, joined = wall_and_cpu(lambda: con.sql(join_sql).to_arrow_table(), args.repeat)
        join = (wall, cpu, joined.num_rows)
        merges, merge_floor = plan_merges(ends[c], args, scratch)
        del ends, joined
        for name in names:
            root = tempfile.mkdtemp(prefix=f"{name}-", dir=scratch)
            log(f"{name}: running in {root}")
            gc.collect()
            results[name] = classes[name](root).run(w, read_versions, ts_version, args.repeat, expected, merges)
            results[name]["commits"] = c
            if args.keep:
                kept = tempfile.mkdtemp(prefix=f"logstore-compare-{name}-")
                shutil.copytree(root, kept, dirs_exist_ok=True)
                log(f"{name}: kept in {kept}")
            shutil.rmtree(root, ignore_errors=True)
    answers = {n: r["group_by"] for n, r in results.items()}
    if len({repr(a) for a in answers.values()}) > 1:
        raise AssertionError(f"GROUP BY answers differ: {answers}")
    print(f"compare: {w.describe()}; reads are the median of {args.repeat}")
    print(report(results, floor, names, merge_floor))
    print(goals(results, join, *feed_range(c), c, merge_floor))


if __name__ == "__main__":
    main()
