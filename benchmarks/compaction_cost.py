"""What automatic compaction adds to the commit that completes a block (issue 13: p95 at most 2x the median).

    .venv/bin/python benchmarks/compaction_cost.py                 # 1M base rows, blocks of 10 commits of each kind
    .venv/bin/python benchmarks/compaction_cost.py --rows 100000 --repeat 3

Builds a table of the standard workload's base rows (benchmarks/workload.py) with automatic compaction off, then,
for each kind of commit (update of rows/1000 rows, delete of rows/2000, append of rows/1000), --repeat times on a
fresh copy of the store: commits the ten versions of one level-1 block and times the level-1 compaction of that
block with the writer's own handle (compaction.after_commit, exactly what the tenth commit runs). Prints the median of the ten commits, the median
compaction and their ratio: with compaction on every tenth commit, the p95 of a run of 100 commits is about the
median commit plus one compaction, so the goal needs compaction <= the median commit.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ["LOGSTORE_AUTO_COMPACT"] = "0"  # the build and the timed commits; compaction is run (and timed) by hand

import logstore  # noqa: E402
from logstore import compaction  # noqa: E402

from core import apply_step  # noqa: E402
from workload import APPEND, DELETE, UPDATE, Workload  # noqa: E402


def run(w: Workload, root: str, repeat: int) -> list[dict]:
    base = os.path.join(root, "base")
    table = logstore.init(base).create_table("bench", w.base, key="id", timestamp=w.start)
    steps = {kind: [s for s in w.steps if s.kind == kind][:10] for kind in (UPDATE, DELETE, APPEND)}
    # versions 1..9 (updates), then on each copy the ten versions 10..19 of one kind: the level-1 block 10..19
    first = steps[UPDATE][:9]
    for i, step in enumerate(first):
        apply_step(table, _at(step, i + 1))
    results = []
    for kind in (UPDATE, DELETE, APPEND):
        commits, times = [], []
        for r in range(repeat):
            copy = os.path.join(root, f"{kind}-{r}")
            shutil.copytree(base, copy)
            table = logstore.open(copy).table("bench")
            version = len(first)
            for step in steps[kind]:
                version += 1
                t0 = time.perf_counter()
                apply_step(table, _at(step, version))
                commits.append(time.perf_counter() - t0)
            os.environ["LOGSTORE_AUTO_COMPACT"] = "1"
            try:  # what the tenth commit's _after_commit runs, with the writer's own (warm) handle
                t0 = time.perf_counter()
                done = compaction.after_commit(table._files, version)
                times.append(time.perf_counter() - t0)
            finally:
                os.environ["LOGSTORE_AUTO_COMPACT"] = "0"
            if not done:
                raise SystemExit(f"block ending at version {version} was not compacted")
            shutil.rmtree(copy)
        results.append({"kind": kind, "commit_ms": 1000 * statistics.median(commits), "compaction_ms": 1000 * statistics.median(times),
                        "compaction_min_ms": 1000 * min(times)})
    return results


def _at(step, version: int):
    """The workload step renumbered as `version` (its timestamp stays strictly increasing with the version)."""
    from dataclasses import replace

    return replace(step, version=version, timestamp=step.timestamp.__class__.fromtimestamp(1_700_000_000 + 3600 * version, step.timestamp.tzinfo))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="compactions timed per kind (fresh copies; the median is shown)")
    args = parser.parse_args()
    w = Workload(rows=args.rows, commits=300)
    with tempfile.TemporaryDirectory(prefix="logstore-compaction-cost-") as root:
        results = run(w, root, args.repeat)
    print(f"level-1 compaction of ten commits' change files, {args.rows:,} base rows; {os.getloadavg()[0]:.1f} load average")
    print(f"{'kind':<8} {'commit median':>14} {'compaction median':>18} {'(min)':>8} {'ratio':>6}")
    for r in results:
        print(f"{r['kind']:<8} {r['commit_ms']:>11.1f} ms {r['compaction_ms']:>15.1f} ms {r['compaction_min_ms']:>5.1f} ms {r['compaction_ms'] / r['commit_ms']:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
