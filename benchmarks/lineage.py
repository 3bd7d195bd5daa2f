"""What lineage costs (issue 18): read_uri against read, and MLflow's log_input, measured in one run.

    .venv/bin/python benchmarks/lineage.py [--rows 1000000]

- `logstore.read_uri(uri)` reads the version like `t.read(version=v)` and also hashes every row it returns (with its
  row id) to check the URI's fingerprint: the median wall and CPU time of each, read alternately, and their ratio.
- `t.uri()`: the time to make a URI (a record read: no scan).
- `log_input` (if mlflow is installed): the time to log one version to a local file tracking store, and the cold
  import time of logstore.integrations.mlflow (a fresh interpreter, which imports mlflow) against `import logstore`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

import logstore  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def rows(n: int, start: int = 0) -> pa.Table:
    rng = np.random.default_rng(start)
    return pa.table({
        "id": np.arange(start, start + n, dtype=np.int64),
        "category": pa.array([f"c{i % 50}" for i in range(n)]),
        "value": rng.random(n),
        "flag": rng.random(n) < 0.5,
    })


def cold_import(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout) for _ in range(3)]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = logstore.init(Path(tmp) / "store")
        t = store.create_table("bench", rows(args.rows), key="id")
        t.update(set={"value": "value + 1"}, where="id % 10 = 0")
        t.append(rows(args.rows // 10, args.rows))
        uri = t.uri(version=1)
        t.read(version=1), logstore.read_uri(uri)  # warm: files hashed once per process, metadata cached
        reads, uris = [], []
        for _ in range(args.repeat):
            reads.append(timed(lambda: t.read(version=1), 1))
            uris.append(timed(lambda: logstore.read_uri(uri), 1))
        read_wall, read_cpu = (statistics.median(x) for x in zip(*reads))
        uri_wall, uri_cpu = (statistics.median(x) for x in zip(*uris))
        make_wall, _ = timed(lambda: t.uri(version=1), 50)
        print(f"rows in version 1: {t.commit_info(version=1).num_rows:,}")
        print(f"t.read(version=1):     wall {read_wall * 1000:8.1f} ms  cpu {read_cpu * 1000:8.1f} ms")
        print(f"logstore.read_uri(uri): wall {uri_wall * 1000:8.1f} ms  cpu {uri_cpu * 1000:8.1f} ms")
        print(f"read_uri / read: wall {uri_wall / read_wall:.2f}x  cpu {uri_cpu / read_cpu:.2f}x (the fingerprint check of every row returned)")
        print(f"t.uri(version=1): {make_wall * 1e6:.0f} us")
        try:
            import mlflow
        except ImportError:
            print("mlflow not installed: log_input not measured")
            return
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        mlflow.set_tracking_uri((Path(tmp) / "mlruns").as_uri())
        from logstore.integrations import mlflow as lm

        with mlflow.start_run():
            lm.log_input(t, version=0)
            log_wall, _ = timed(lambda: lm.log_input(t, version=1), 10)
        print(f"lm.log_input (file tracking store): {log_wall * 1000:.1f} ms")
        base, integration = cold_import("logstore"), cold_import("logstore.integrations.mlflow")
        print(f"cold import: logstore {base:.2f} s, logstore.integrations.mlflow {integration:.2f} s (+{integration - base:.2f} s, mlflow's own import)")


if __name__ == "__main__":
    main()
