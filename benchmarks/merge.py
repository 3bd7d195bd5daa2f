"""MERGE into the standard 1M-row table (benchmarks/workload.py): logstore against Delta Lake's merge and Lance's
merge_insert (issue 19).

    .venv/bin/python benchmarks/merge.py                      # 1M rows, 5 merges per system
    .venv/bin/python benchmarks/merge.py --rows 100000        # a quick run

Each merge has a source of `--source` rows (default 10,000) drawn from the table's current live ids and fresh ones:
half of them match a row and update it (value + 1, a new text: update all columns), a quarter are new ids (insert
all), and a quarter match a row the source marks deleted (`deleted = true`: when matched and source.deleted,
delete), the CDC shape of "update the rows that match, insert the new ones, delete those the source says are gone".
logstore and Delta Lake run it as one merge:

    t.merge(source, on="id").when_matched_delete("source.deleted").when_matched_update_all().when_not_matched_insert_all()

Lance's merge_insert has no delete-when-matched clause (its deletes are only "not matched by source"), so Lance runs
the same change as merge_insert (update all, insert all; the flagged rows are left out of its source) followed by
`delete("id IN (...)")` of the flagged ids; its time is the sum of the two calls, its bytes those of both versions.

Every system merges `--merges` sources one after another into the same table (a CDC pipeline merges repeatedly);
the table reports the median time of a merge (each merge timed alone, wall clock of the call, the first included in
the median) and the median bytes it wrote (growth of the directory), against the floor: the changed rows written
once as one Parquet zstd file (the new images of updated and inserted rows, the ids of deleted rows). After every
merge the row count and sum(value) are checked against the expected state.

Goals (issue 19): logstore at least 3x faster than Delta Lake's merge, faster than Lance, bytes written at most 1.5x
the floor.
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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from compare import dir_bytes, log  # noqa: E402

import logstore  # noqa: E402

from workload import Workload  # noqa: E402

SPEED_GOAL_DELTA = 3.0  # Delta's merge time / logstore's, at least
BYTES_GOAL = 1.5  # bytes written / floor, at most


class Merges:
    """The sources of the merges, and the expected state after each (rows live, sum of value), from one seed."""

    def __init__(self, start: pa.Table, n_source: int, merges: int, seed: int = 19):
        """`start`: the table's rows before the first merge (the standard columns); new ids follow its largest."""
        rng = np.random.default_rng(seed)
        state = {"next": int(pc.max(start.column("id")).as_py()) + 1}
        values = dict(zip(start.column("id").to_pylist(), start.column("value").to_pylist()))
        self.sources, self.expected, self.floors = [], [], []
        template = start.slice(0, n_source)
        for m in range(merges):
            live = np.fromiter(values.keys(), np.int64)
            picked = rng.choice(live, size=n_source // 2 + n_source // 4, replace=False)
            updated, deleted = picked[: n_source // 2], picked[n_source // 2 :]
            fresh = np.arange(state["next"], state["next"] + n_source - len(picked), dtype=np.int64)
            state["next"] += len(fresh)
            ids = np.concatenate([updated, fresh, deleted])
            new_values = [values[i] + 1 for i in updated.tolist()] + [float(i % 1000) for i in fresh.tolist()] + [values[i] for i in deleted.tolist()]
            source = pa.table(
                {
                    "id": pa.array(ids, pa.int64()),
                    "user_id": template.column("user_id"),
                    "category": template.column("category"),
                    "value": pa.array(new_values, pa.float64()),
                    "text": pa.array([f"merged {m} row {i}" for i in ids.tolist()], pa.string()),
                    "ts": template.column("ts"),
                    "deleted": pa.array([False] * (len(updated) + len(fresh)) + [True] * len(deleted)),
                }
            )
            for i, v in zip(updated.tolist() + fresh.tolist(), new_values):
                values[i] = v
            for i in deleted.tolist():
                del values[i]
            self.sources.append(source)
            self.expected.append((len(values), round(sum(values.values()), 3)))
            changed = source.filter(pc.invert(source.column("deleted"))).drop_columns(["deleted"])
            self.floors.append((changed, pa.table({"id": pa.array(deleted, pa.int64())})))


def floor_bytes(parts, root: str) -> int:
    """The changed rows written once as Parquet zstd (one file each: new images, deleted ids)."""
    total = 0
    for n, part in enumerate(parts):
        path = os.path.join(root, f"floor-{n}.parquet")
        pq.write_table(part, path, compression="zstd")
        total += os.path.getsize(path)
        os.unlink(path)
    return total


def check(name: str, m: int, table: pa.Table, expected) -> None:
    got = (table.num_rows, round(pc.sum(table.column("value")).as_py(), 3))
    if got != expected:
        raise AssertionError(f"{name} after merge {m}: {got}, expected {expected}")


def merge_logstore(table, source: pa.Table) -> None:
    table.merge(source, on="id").when_matched_delete("source.deleted").when_matched_update_all().when_not_matched_insert_all().execute()


def merge_delta(path: str, source: pa.Table) -> None:
    import deltalake

    merger = deltalake.DeltaTable(path).merge(source, predicate="target.id = source.id", source_alias="source", target_alias="target")
    merger.when_matched_delete(predicate="source.deleted").when_matched_update_all().when_not_matched_insert_all().execute()


def merge_lance(path: str, source: pa.Table) -> None:
    """Lance's merge_insert has no delete-when-matched clause: merge_insert of the kept rows, then a delete."""
    import lance

    flagged = source.column("deleted")
    upserts = source.filter(pc.invert(flagged)).drop_columns(["deleted"])
    lance.dataset(path).merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(upserts)
    gone = source.filter(flagged).column("id").to_pylist()
    lance.dataset(path).delete(f"id IN ({', '.join(str(i) for i in gone)})")


class Logstore:
    name = "logstore"

    def create(self, base: pa.Table, root: str) -> str:
        self.table = logstore.init(os.path.join(root, "store")).create_table("bench", base, key="id")
        return os.path.join(root, "store")

    def merge(self, source: pa.Table) -> None:
        merge_logstore(self.table, source)

    def read(self) -> pa.Table:
        return self.table.read(columns=["id", "value"])


class Delta:
    name = "Delta Lake"

    def create(self, base: pa.Table, root: str) -> str:
        import deltalake

        self.path = os.path.join(root, "delta")
        deltalake.write_deltalake(self.path, base)
        return self.path

    def merge(self, source: pa.Table) -> None:
        merge_delta(self.path, source)

    def read(self) -> pa.Table:
        import deltalake

        return deltalake.DeltaTable(self.path).to_pyarrow_table(columns=["id", "value"])


class Lance:
    name = "Lance"

    def create(self, base: pa.Table, root: str) -> str:
        import lance

        self.path = os.path.join(root, "lance")
        lance.write_dataset(base, self.path)
        return self.path

    def merge(self, source: pa.Table) -> None:
        merge_lance(self.path, source)

    def read(self) -> pa.Table:
        import lance

        return lance.dataset(self.path).to_table(columns=["id", "value"])


def run(system, w: Workload, merges: Merges, root: str) -> dict:
    path = system.create(w.base, root)
    times, written = [], []
    for m, source in enumerate(merges.sources):
        before = dir_bytes(path)
        t0 = time.perf_counter()
        system.merge(source)
        times.append(time.perf_counter() - t0)
        written.append(dir_bytes(path) - before)
        check(system.name, m, system.read(), merges.expected[m])
        log(f"  {system.name}: merge {m} {times[-1]:.3f} s, {written[-1]:,} bytes")
    return {"time": statistics.median(times), "first": times[0], "bytes": statistics.median(written)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--source", type=int, default=10_000)
    parser.add_argument("--merges", type=int, default=5)
    parser.add_argument("--systems", default="logstore,delta,lance")
    args = parser.parse_args()
    w = Workload(rows=args.rows, commits=3)
    merges = Merges(w.base, args.source, args.merges)
    root = tempfile.mkdtemp(prefix="logstore-merge-bench-")
    try:
        floor = statistics.median(floor_bytes(parts, root) for parts in merges.floors)
        systems = {"logstore": Logstore, "delta": Delta, "lance": Lance}
        results = {}
        for key in args.systems.split(","):
            system = systems[key]()
            log(f"{system.name} ...")
            sub = os.path.join(root, key)
            os.makedirs(sub)
            results[system.name] = run(system, w, merges, sub)
            shutil.rmtree(sub)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"MERGE of {args.source:,} source rows into {args.rows:,} rows, {args.merges} merges per system (median; first merge in brackets)")
    print(f"{'system':<12} {'time (s)':>16} {'bytes written':>14} {'x floor':>8}")
    for name, r in results.items():
        print(f"{name:<12} {r['time']:>8.3f} ({r['first']:.3f}) {r['bytes']:>14,.0f} {r['bytes'] / floor:>8.2f}")
    print(f"floor (changed rows, Parquet zstd): {floor:,.0f} bytes")
    ours = results.get("logstore")
    if ours:
        for name, r in results.items():
            if name != "logstore":
                print(f"{name} time / logstore time: {r['time'] / ours['time']:.2f}x (first merge {r['first'] / ours['first']:.2f}x)")
        ratio = ours["bytes"] / floor
        print(f"logstore bytes / floor: {ratio:.2f} (goal <= {BYTES_GOAL})")
        if "Delta Lake" in results:
            speed = results["Delta Lake"]["time"] / ours["time"]
            print(f"goal: >= {SPEED_GOAL_DELTA}x faster than Delta: {'met' if speed >= SPEED_GOAL_DELTA else 'missed'} ({speed:.2f}x)")
        if "Lance" in results:
            print(f"goal: faster than Lance: {'met' if results['Lance']['time'] > ours['time'] else 'missed'}")
        print(f"goal: bytes <= {BYTES_GOAL}x floor: {'met' if ratio <= BYTES_GOAL else 'missed'}")


if __name__ == "__main__":
    main()
