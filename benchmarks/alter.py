"""ALTER is O(1) in the table's size, and reads after a rename are as fast as before it (issue 19, schema evolution).

    .venv/bin/python benchmarks/alter.py            # 1M rows vs 1k rows
    .venv/bin/python benchmarks/alter.py --rows 200000

For a table of N rows (one append) and one of 1,000 rows: the median CPU time of each kind of ALTER (a rename, an
added column without default: no data read or written; a drop, a widening, an added default: no data written, one
hashing read to keep the content fingerprint exact) and the bytes it wrote, as the ratio big/small; then the median
time of `table.read()` of the big table just before and just after a rename (every file read under its old column
name, mapped by id) as the ratio after/before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

import logstore  # noqa: E402

REPEAT = 7


def make(store: logstore.Store, name: str, rows: int) -> logstore.Table:
    rng = np.random.default_rng(1)
    data = pa.table({
        "id": np.arange(rows, dtype=np.int64),
        "value": rng.normal(size=rows).astype(np.float32),
        "qty": rng.integers(0, 1000, rows, dtype=np.int32),
        "note": pa.array(rng.choice(["a", "b", "c", "d"], rows)),
        f"only_{name}": np.zeros(rows, dtype=np.int8),  # the tables' columns differ: each pays its own schema cache misses
    })
    return store.create_table(name, data, key=["id"])


def stored_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(fn) -> float:
    """CPU seconds (user + system, every thread of this process): steadier than wall time on a shared machine."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def alters(tables: dict[str, logstore.Table], root: Path) -> dict[str, dict[str, tuple[float, int]]]:
    """Per table, per kind of ALTER: (median seconds, bytes written by the last). Each kind runs REPEAT times,
    alternating between the tables so that both see the same load."""
    kinds = {
        "rename": lambda t, i: t.alter(rename={f"qty{i - 1}" if i else "qty": f"qty{i}"}),
        "add": lambda t, i: t.alter(add=f"extra{i} BIGINT"),
        "add with default": lambda t, i: t.alter(add=f"filled{i} BIGINT DEFAULT 7"),
        "drop": lambda t, i: t.alter(drop=f"extra{i}"),
        "widen": lambda t, i: t.alter(widen={f"filled{i}": "HUGEINT"}),
    }
    out: dict[str, dict[str, list[tuple[float, int]]]] = {name: {} for name in tables}
    for i in range(REPEAT):
        for kind, fn in kinds.items():
            for name, t in tables.items():
                before = stored_bytes(root / name)
                seconds = timed(lambda: fn(t, i))
                out[name].setdefault(kind, []).append((seconds, stored_bytes(root / name) - before))
    return {name: {k: (statistics.median(s for s, _ in v), v[-1][1]) for k, v in kinds_.items()} for name, kinds_ in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ["LOGSTORE_AUTO_COMPACT"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        store = logstore.init(Path(tmp) / "s")
        big, small = make(store, "big", args.rows), make(store, "small", 1000)
        root = Path(tmp) / "s" / "tables"
        measured = alters({"big": big, "small": small}, root)
        big_alters, small_alters = measured["big"], measured["small"]
        print(f"ALTER on {args.rows:,} rows vs 1,000 rows (median CPU ms of {REPEAT}; bytes written by one ALTER)")
        print(f"{'kind':<18} {'big ms':>9} {'small ms':>9} {'ratio':>7} {'big bytes':>10} {'small bytes':>11}")
        for kind in big_alters:
            (b, bb), (s, sb) = big_alters[kind], small_alters[kind]
            print(f"{kind:<18} {b * 1000:9.1f} {s * 1000:9.1f} {b / s:7.2f} {bb:10,} {sb:11,}")

        t = make(store, "reads", args.rows)
        t.read()  # warm the row-id caches and the OS cache
        before = [timed(t.read) for _ in range(REPEAT)]
        t.alter(rename={"qty": "quantity", "note": "label"})
        after = [timed(t.read) for _ in range(REPEAT)]
        again = [timed(t.read) for _ in range(REPEAT)]
        b, a = statistics.median(before), statistics.median(after + again)
        print(f"read() of {args.rows:,} rows (median CPU): before rename {b * 1000:.1f} ms, after {a * 1000:.1f} ms, ratio after/before {a / b:.2f}")


if __name__ == "__main__":
    main()
