"""logstore and Delta Lake on the same local S3-compatible server (moto on 127.0.0.1), the standard workload.

For each system: median latency and requests per kind of commit (GET, PUT, LIST, HEAD, DELETE, counted by the
server), requests per commit near version 10 and at the end (they must not grow with the log), bytes stored, and
reads of versions 0, 1/2 and latest with a cold cache (a fresh process-level cache directory) and a warm one; the
warm logstore read is also compared with the same read on local disk.

    python benchmarks/object_store.py                       # 200,000 rows, 300 commits
    python benchmarks/object_store.py --rows 20000 --commits 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import logstore  # noqa: E402

from core import apply_step  # noqa: E402
from s3server import S3Server  # noqa: E402
from workload import APPEND, DELETE, UPDATE, Workload  # noqa: E402

KINDS = (UPDATE, DELETE, APPEND)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median_ms(values) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def run_commits(w: Workload, server: S3Server, commit) -> dict:
    """Apply every step through `commit(step)`; per kind the latencies and the server's request counts."""
    latency = {k: [] for k in KINDS}
    requests = {k: Counter() for k in KINDS}
    per_commit = []
    for step in w.steps:
        before = Counter(server.requests)
        t0 = time.perf_counter()
        commit(step)
        latency[step.kind].append(time.perf_counter() - t0)
        done = Counter(server.requests)
        done.subtract(before)
        requests[step.kind].update(done)
        per_commit.append(sum(done.values()))
    return {"latency": latency, "requests": requests, "per_commit": per_commit}


def bench_logstore(w: Workload, server: S3Server, url: str, cache: Path) -> dict:
    os.environ["LOGSTORE_CACHE_DIR"] = str(cache / "writer")
    store = logstore.init(url, storage_options=server.options())
    table = store.create_table("bench", w.base, key="id", timestamp=w.start)
    result = run_commits(w, server, lambda step: apply_step(table, step))
    result["reads"] = {}
    for v in (0, len(w.steps) // 2, len(w.steps)):
        os.environ["LOGSTORE_CACHE_DIR"] = str(cache / f"cold-{v}")
        reader = logstore.open(url, storage_options=server.options()).table("bench")
        t0 = time.perf_counter()
        rows = reader.read(version=v).num_rows
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        reader.read(version=v)
        warm = time.perf_counter() - t0
        result["reads"][v] = (cold, warm, rows)
    return result


def bench_local(w: Workload, root: Path) -> dict:
    store = logstore.init(root / "local")
    table = store.create_table("bench", w.base, key="id", timestamp=w.start)
    for step in w.steps:
        apply_step(table, step)
    reads = {}
    for v in (0, len(w.steps) // 2, len(w.steps)):
        fresh = logstore.open(root / "local").table("bench")
        fresh.read(version=v)
        t0 = time.perf_counter()
        fresh.read(version=v)
        reads[v] = time.perf_counter() - t0
    return reads


def bench_delta(w: Workload, server: S3Server, url: str) -> dict:
    from deltalake import DeltaTable, write_deltalake

    options = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "aws_conditional_put": "etag",
    }
    write_deltalake(url, w.base, storage_options=options)
    dt = DeltaTable(url, storage_options=options)

    def commit(step):
        if step.kind == UPDATE:
            dt.update(predicate=step.where, updates=step.assignments)
        elif step.kind == DELETE:
            dt.delete(step.where)
        else:
            write_deltalake(dt, step.rows, mode="append")

    result = run_commits(w, server, commit)
    result["reads"] = {}
    for v in (0, len(w.steps) // 2, len(w.steps)):
        t0 = time.perf_counter()
        rows = DeltaTable(url, version=v, storage_options=options).to_pyarrow_table().num_rows
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        DeltaTable(url, version=v, storage_options=options).to_pyarrow_table()
        warm = time.perf_counter() - t0
        result["reads"][v] = (cold, warm, rows)
    return result


def stored_bytes(server: S3Server, bucket: str, prefix: str) -> int:
    import obstore
    from obstore.store import from_url

    store = from_url(f"s3://{bucket}/{prefix}", config={k: v for k, v in server.options().items() if k != "allow_http"}, client_options={"allow_http": True})
    return sum(m["size"] for batch in obstore.list(store) for m in batch)


def report(name: str, r: dict, stored: int, local_reads: dict | None = None) -> list[str]:
    lines = [f"## {name}", "", "| commit | median ms | GET | PUT | LIST | HEAD | DELETE | other (per commit) |", "|---|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        n = max(len(r["latency"][kind]), 1)
        c = r["requests"][kind]
        other = sum(v for k, v in c.items() if k not in ("GET", "PUT", "LIST", "HEAD", "DELETE"))
        cells = " | ".join(f"{c[k] / n:.1f}" for k in ("GET", "PUT", "LIST", "HEAD", "DELETE"))
        lines.append(f"| {kind} | {median_ms(r['latency'][kind]):.0f} | {cells} | {other / n:.1f} |")
    early, late = r["per_commit"][5:15], r["per_commit"][-10:]
    lines += ["", f"requests per commit: median {statistics.median(early):.0f} near version 10, {statistics.median(late):.0f} at the end; bytes stored {stored:,}", ""]
    lines += ["| read | rows | cold ms | warm ms |" + (" warm / local disk |" if local_reads else ""), "|---|---|---|---|" + ("---|" if local_reads else "")]
    for v, (cold, warm, rows) in r["reads"].items():
        ratio = f" {warm / local_reads[v]:.2f}x |" if local_reads else ""
        lines.append(f"| v{v} | {rows:,} | {cold * 1000:.0f} | {warm * 1000:.0f} |{ratio}")
    return lines + [""]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--no-delta", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    w = Workload(rows=args.rows, commits=args.commits)
    server = S3Server()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server.create_bucket("bench")
        log("logstore on S3 ...")
        ls = bench_logstore(w, server, "s3://bench/logstore", root / "cache")
        log("logstore on local disk ...")
        local = bench_local(w, root)
        out = [f"# Object store: {args.rows:,} rows, {args.commits} commits, moto on 127.0.0.1", ""]
        out += report("logstore", ls, stored_bytes(server, "bench", "logstore"), local)
        if not args.no_delta:
            log("Delta Lake on S3 ...")
            delta = bench_delta(w, server, "s3://bench/delta")
            out += report("Delta Lake", delta, stored_bytes(server, "bench", "delta"))
            ratios = [f"{k}: logstore/delta median {median_ms(ls['latency'][k]) / median_ms(delta['latency'][k]):.2f}x" for k in KINDS]
            reads = [f"v{v} cold: {ls['reads'][v][0] / delta['reads'][v][0]:.2f}x" for v in ls["reads"]]
            out += ["## Ratios", "", "; ".join(ratios), "", "reads logstore/delta " + "; ".join(reads), ""]
    server.stop()
    print("\n".join(out))


if __name__ == "__main__":
    main()
