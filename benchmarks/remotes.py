"""Remotes (issue 14): push the standard workload store to a local S3 server, push again after 10 more commits,
then clone it back and read the latest version.

Reports bytes and requests (counted by the server, moto on 127.0.0.1, as in object_store.py) for each step, and
checks the goals: the first push sends at most 1.05x the store's bytes; the incremental push sends only the 10
commits' files and records (compared with the files those commits added to the local store); clone plus a read of
the latest version takes at most 2x the time of downloading that version's files alone (the same parallel GETs
into memory, nothing else).

    python benchmarks/remotes.py                          # 1,000,000 rows, 300 commits
    python benchmarks/remotes.py --rows 100000 --commits 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import numpy as np  # noqa: E402

import logstore  # noqa: E402
from logstore import testing  # noqa: E402
from logstore.storage import open_storage  # noqa: E402

from core import apply_step  # noqa: E402
from s3server import S3Server  # noqa: E402
from workload import APPEND, DELETE, UPDATE, Workload  # noqa: E402

EXTRA = 10  # commits between the first and the second push
GOALS = {"first_push": 1.05, "clone_read": 2.0}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def files_of(root: Path) -> dict[str, int]:
    """Every file of a local store that a push may send (path -> bytes): not the head hints, remotes, staging."""
    found = {}
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("_staging", "_quarantine", "_repairs")]
        for name in names:
            if name in ("_head.json", "remotes.json", "logstore.json"):
                continue
            full = Path(dirpath) / name
            found[str(full.relative_to(root))] = full.stat().st_size
    return found


def extra_steps(w: Workload, n: int) -> list:
    """n more commits after the workload: updates, deletes and appends of rows/1000 ids each, in turn."""
    rng = np.random.default_rng(7)
    steps, next_id = [], w.rows + len([s for s in w.steps if s.kind == APPEND]) * w.per_append
    for i in range(n):
        kind = (UPDATE, DELETE, APPEND)[i % 3]
        if kind == APPEND:
            rows = w._rows(rng, next_id, w.per_append)
            next_id += w.per_append
            steps.append(SimpleNamespace(kind=APPEND, rows=rows, timestamp=None))
        else:
            ids = np.sort(rng.choice(w.rows, w.per_update, replace=False))
            where = f"id IN ({', '.join(str(int(x)) for x in ids)})"
            assignments = {"value": "value + 1", "text": f"'extra {i}'"}
            steps.append(SimpleNamespace(kind=kind, where=where, assignments=assignments, timestamp=None))
    return steps


def measured(server: S3Server, fn):
    before = Counter(server.requests)
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    done = Counter(server.requests)
    done.subtract(before)
    return result, elapsed, {k: v for k, v in done.items() if v}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    w = Workload(rows=args.rows, commits=args.commits)
    server = S3Server()
    server.create_bucket("bench")
    for key, value in server.environment().items():
        os.environ[key] = value
    url = "s3://bench/remote"
    out = [f"# Remotes: {args.rows:,} rows, {args.commits} commits (+{EXTRA}), moto on 127.0.0.1", ""]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["LOGSTORE_CACHE_DIR"] = str(root / "cache-writer")
        log(f"building the store ({args.rows:,} rows, {args.commits} commits) ...")
        local = logstore.init(root / "local")
        table = local.create_table("bench", w.base, key="id", timestamp=w.start)
        for step in w.steps:
            apply_step(table, step)
        store_files = files_of(root / "local")
        store_bytes = sum(store_files.values())
        logstore.init(url)
        local.add_remote("origin", url)

        log("first push ...")
        first, t_first, r_first = measured(server, local.push)
        ratio = first.bytes / store_bytes
        out += ["| step | seconds | versions | data files | bytes sent | requests (server) |", "|---|---|---|---|---|---|"]
        out.append(f"| first push | {t_first:.2f} | {first.versions} | {first.files} | {first.bytes:,} | {_requests(r_first)} |")

        log(f"{EXTRA} more commits, second push ...")
        for step in extra_steps(w, EXTRA):
            apply_step(table, step)
        new_files = {p: s for p, s in files_of(root / "local").items() if p not in store_files}
        new_data = {p: s for p, s in new_files.items() if p.endswith(".parquet")}
        second, t_second, r_second = measured(server, local.push)
        out.append(f"| push after {EXTRA} commits | {t_second:.2f} | {second.versions} | {second.files} | {second.bytes:,} | {_requests(r_second)} |")
        again, t_again, r_again = measured(server, local.push)
        out.append(f"| push, nothing new | {t_again:.2f} | {again.versions} | {again.files} | {again.bytes:,} | {_requests(r_again)} |")

        log("clone and read the latest version ...")
        os.environ["LOGSTORE_CACHE_DIR"] = str(root / "cache-clone")

        cloned_store, t_clone_only, r_clone = measured(server, lambda: logstore.clone(url, root / "clone"))
        t0 = time.perf_counter()
        rows = cloned_store.table("bench").read().num_rows
        t_read = time.perf_counter() - t0
        t_clone = t_clone_only + t_read
        cloned = logstore.open(root / "clone").table("bench")
        clone_files = files_of(root / "clone")
        out.append(f"| clone | {t_clone_only:.2f} | {cloned.version + 1} | {len(clone_files)} files | {sum(clone_files.values()):,} on disk | {_requests(r_clone)} |")
        out.append(f"| read latest from the clone ({rows:,} rows) | {t_read:.2f} | | | | |")

        # a lazy clone: the records only, then the latest version's files on its first read
        lazy_store, t_lazy_only, r_lazy = measured(server, lambda: logstore.clone(url, root / "lazy", lazy=True))
        t0 = time.perf_counter()
        lazy_rows = lazy_store.table("bench").read().num_rows
        t_lazy_read = time.perf_counter() - t0
        t_lazy = t_lazy_only + t_lazy_read
        lazy_files = files_of(root / "lazy")
        out.append(f"| clone --lazy | {t_lazy_only:.2f} | {cloned.version + 1} | records only | | {_requests(r_lazy)} |")
        out.append(f"| read latest from the lazy clone ({lazy_rows:,} rows; fetches its files) | {t_lazy_read:.2f} | | {len(lazy_files)} files | {sum(lazy_files.values()):,} on disk | |")

        # a reader of the remote without a clone: the latest version read straight from S3, cache empty
        os.environ["LOGSTORE_CACHE_DIR"] = str(root / "cache-direct")
        t0 = time.perf_counter()
        logstore.open(url).table("bench").read()
        t_direct = time.perf_counter() - t0
        out.append(f"| read latest straight from S3, empty cache | {t_direct:.2f} | | | | |")

        # the floor: GET the files the latest version's plan reads, in parallel, into memory
        plan = testing.plan(table, table.version)
        sources = [s for s in (plan.snapshot, *plan.inserts, *plan.changes) if s is not None]
        paths = [os.path.relpath(s.url, root / "local") for s in sources]
        os.environ["LOGSTORE_CACHE_DIR"] = str(root / "cache-floor")
        storage = open_storage(url)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            got = sum(map(len, pool.map(storage.read, paths)))
        t_floor = time.perf_counter() - t0
        out.append(f"| download the latest version's {len(paths)} files alone | {t_floor:.2f} | | {len(paths)} | {got:,} | {len(paths)} GET |")
        out.append("")
        out.append(f"store on disk: {store_bytes:,} bytes in {len(store_files)} files (without head hints and staging)")
        out.append(f"the {EXTRA} commits added {len(new_files)} files locally ({len(new_data)} Parquet, {sum(new_data.values()):,} bytes; {sum(new_files.values()):,} bytes in all)")
        out.append("")
        incremental_ok = second.versions == EXTRA and second.files == len(new_data) and second.bytes <= sum(new_files.values())
        out += [
            "| goal | measured | met |",
            "|---|---|---|",
            f"| first push bytes <= {GOALS['first_push']}x the store's | {ratio:.3f}x | {'yes' if ratio <= GOALS['first_push'] else 'NO'} |",
            f"| incremental push sends only the {EXTRA} commits' files and records | {second.versions} versions, {second.files} files, {second.bytes:,} bytes (their files: {len(new_data)}, {sum(new_files.values()):,} bytes) | {'yes' if incremental_ok else 'NO'} |",
            f"| clone + read latest <= {GOALS['clone_read']}x downloading its files | {t_clone / t_floor:.2f}x ({t_clone:.2f} s / {t_floor:.2f} s; the clone alone {t_clone_only / t_floor:.2f}x) | {'yes' if t_clone <= GOALS['clone_read'] * t_floor else 'NO'} |",
            f"| lazy clone + read latest <= {GOALS['clone_read']}x downloading its files | {t_lazy / t_floor:.2f}x ({t_lazy:.2f} s / {t_floor:.2f} s) | {'yes' if t_lazy <= GOALS['clone_read'] * t_floor else 'NO'} |",
            f"| (for comparison) clone + read latest vs reading it straight from S3 | {t_clone / t_direct:.2f}x ({t_clone:.2f} s / {t_direct:.2f} s) | |",
            "",
        ]
    server.stop()
    print("\n".join(out))


def _requests(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


if __name__ == "__main__":
    main()
