"""The standard benchmark workload, independent of any store: data, commits, and the expected state per version.

    base      `rows` rows (default 1,000,000): id BIGINT (0..rows-1, the key), user_id BIGINT, category VARCHAR
              (50 values), value DOUBLE, text VARCHAR (~40 chars), ts TIMESTAMP
    commits   `commits` (default 300) in three equal blocks, with backdated, strictly increasing timestamps:
              updates   of rows/1000 random live ids each:  SET value = value + 1, text = '<a new text>'
              deletes   of rows/2000 random live ids each
              appends   of rows/1000 new rows each (fresh ids continuing after the last one)

Everything is drawn from one seeded generator, so every run (and every store driven by it: logstore, Delta Lake,
Lance) sees the same data and the same commits. `Workload.replay()` applies the commits to an in-memory model and
yields the expected rows of each version (in logstore's row order: by the version that wrote each row, then id), plus the changed
rows each commit produced, from which the "floor" (the bytes of the data that actually changed) is computed.

A driver only needs: `w.base`, `w.start`, and for each `step` in `w.steps`: step.kind, step.timestamp,
step.assignments / step.where (SQL, for update and delete), step.ids (the ids touched) and step.rows (appends).

    python benchmarks/workload.py --rows 10000 --commits 30    # prints a summary of the workload
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEED = 20240101
START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)  # version 0; commit k is k hours later
STEP = dt.timedelta(hours=1)
CATEGORIES = [f"category_{i:02d}" for i in range(50)]
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("user_id", pa.int64()),
        ("category", pa.string()),
        ("value", pa.float64()),
        ("text", pa.string()),
        ("ts", pa.timestamp("us")),
    ]
)
UPDATE, DELETE, APPEND = "update", "delete", "append"


@dataclass(frozen=True)
class Step:
    version: int
    kind: str  # update | delete | append
    timestamp: dt.datetime  # tz-aware UTC
    ids: np.ndarray  # ids updated, deleted or appended (sorted)
    rows: pa.Table | None = None  # appended rows
    assignments: dict = field(default_factory=dict)  # update: column -> SQL expression
    new_text: str | None = None  # update: the text the rows get

    @property
    def where(self) -> str:
        """The SQL predicate selecting the rows of an update or delete."""
        return f"id IN ({', '.join(str(int(i)) for i in self.ids)})"


class Workload:
    def __init__(self, rows: int = 1_000_000, commits: int = 300, seed: int = SEED):
        if commits % 3:
            raise ValueError("commits must be a multiple of 3 (equal blocks of updates, deletes and appends)")
        self.rows, self.commits, self.seed = rows, commits, seed
        self.per_update = max(rows // 1000, 1)
        self.per_delete = max(rows // 2000, 1)
        self.per_append = max(rows // 1000, 1)
        self.start = START
        rng = np.random.default_rng(seed)
        self._words = _vocabulary(rng)
        self.base = self._rows(rng, 0, rows)
        self.steps = self._steps(rng)

    # --- generation ----------------------------------------------------------------------------------------

    def _rows(self, rng, first_id: int, n: int) -> pa.Table:
        words = [pa.array(self._words[rng.integers(0, len(self._words), n)]) for _ in range(6)]
        seconds = rng.integers(0, 365 * 24 * 3600, n)
        ts = np.datetime64("2022-01-01T00:00:00", "us") + seconds.astype("timedelta64[s]").astype("timedelta64[us]")
        return pa.table(
            [
                pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
                pa.array(rng.integers(0, 100_000, n, dtype=np.int64)),
                pa.array(np.array(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), n)]),
                pa.array(np.round(rng.random(n) * 1000, 2)),
                pc.binary_join_element_wise(*words, " "),
                pa.array(ts),
            ],
            schema=SCHEMA,
        )

    def _steps(self, rng) -> list[Step]:
        block = self.commits // 3
        live = np.ones(self.rows, dtype=bool)
        next_id = self.rows
        steps = []
        for version in range(1, self.commits + 1):
            moment = self.start + version * STEP
            if version <= block:
                ids = np.sort(rng.choice(np.flatnonzero(live), self.per_update, replace=False))
                text = f"updated in commit {version:04d} of the benchmark"  # ~40 chars
                steps.append(Step(version, UPDATE, moment, ids, assignments={"value": "value + 1", "text": f"'{text}'"}, new_text=text))
            elif version <= 2 * block:
                ids = np.sort(rng.choice(np.flatnonzero(live), self.per_delete, replace=False))
                live[ids] = False
                steps.append(Step(version, DELETE, moment, ids))
            else:
                rows = self._rows(rng, next_id, self.per_append)
                ids = np.arange(next_id, next_id + self.per_append, dtype=np.int64)
                live = np.concatenate([live, np.ones(self.per_append, dtype=bool)])
                next_id += self.per_append
                steps.append(Step(version, APPEND, moment, ids, rows=rows))
        return steps

    # --- expected results ----------------------------------------------------------------------------------

    def version_at(self, moment: dt.datetime) -> int:
        """The latest version committed at or before `moment`."""
        return max([0] + [s.version for s in self.steps if s.timestamp <= moment])

    def replay(self, versions=None):
        """Yield (version, expected rows in the table's row order, change) for each version (only `versions` if given).

        change is None for version 0, else a dict: kind, and "rows" (the new images of updated rows, or the
        appended rows) or "ids" (the deleted ids, as a one-column table).
        """
        wanted = None if versions is None else set(versions)
        model = _Model(self.base)
        if wanted is None or 0 in wanted:
            yield 0, model.table(), None
        for step in self.steps:
            if step.kind == UPDATE:
                model.update(step.ids, step.new_text)
                change = {"kind": UPDATE, "rows": model.table(step.ids)}
            elif step.kind == DELETE:
                model.delete(step.ids)
                change = {"kind": DELETE, "ids": pa.table({"id": pa.array(step.ids, pa.int64())})}
            else:
                model.append(step.rows)
                change = {"kind": APPEND, "rows": step.rows}
            if wanted is None or step.version in wanted:
                yield step.version, model.table(), change
            elif wanted is not None and step.version > max(wanted):
                return

    def changes(self) -> dict[str, pa.Table]:
        """All changed rows, by kind: updated rows' new images, deleted ids, appended rows (for the byte floor)."""
        model = _Model(self.base)
        updated, deleted, appended = [], [], []
        for step in self.steps:
            if step.kind == UPDATE:
                model.update(step.ids, step.new_text)
                updated.append(model.table(step.ids))
            elif step.kind == DELETE:
                model.delete(step.ids)
                deleted.append(pa.table({"id": pa.array(step.ids, pa.int64())}))
            else:
                model.append(step.rows)
                appended.append(step.rows)
        out = {}
        for name, parts in (("updated", updated), ("deleted", deleted), ("appended", appended)):
            if parts:
                out[name] = pa.concat_tables(parts)
        return out

    def describe(self) -> str:
        block = self.commits // 3
        return (
            f"{self.rows:,} rows; {block} updates of {self.per_update:,} ids, {block} deletes of {self.per_delete:,} ids, "
            f"{block} appends of {self.per_append:,} rows (seed {self.seed})"
        )


def _vocabulary(rng, size: int = 2000) -> np.ndarray:
    """Pseudo-words of 3-9 lower-case letters; six of them joined by spaces make a ~40-character text."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 10, size)
    return np.array(["".join(letters[rng.integers(0, 26, n)]) for n in lengths], dtype=object)


class _Model:
    """The table in memory. Ids are dense (0..n-1, appends continue), so an id is its own array position."""

    def __init__(self, base: pa.Table):
        self.parts = [base]
        self.value = base.column("value").to_numpy().copy()
        self.text = np.array(base.column("text").to_pylist(), dtype=object)
        self.live = np.ones(base.num_rows, dtype=bool)
        self.written = np.zeros(base.num_rows, dtype=np.int64)  # the version that wrote each row's current values
        self.version = 0
        self.text_changed = False

    def update(self, ids, text: str) -> None:
        self.version += 1
        self.value[ids] += 1
        self.text[ids] = text
        self.written[ids] = self.version

    def delete(self, ids) -> None:
        self.version += 1
        self.live[ids] = False

    def append(self, rows: pa.Table) -> None:
        self.version += 1
        self.written = np.concatenate([self.written, np.full(rows.num_rows, self.version, dtype=np.int64)])
        self.parts.append(rows)
        self.value = np.concatenate([self.value, rows.column("value").to_numpy()])
        self.text = np.concatenate([self.text, np.array(rows.column("text").to_pylist(), dtype=object)])
        self.live = np.concatenate([self.live, np.ones(rows.num_rows, dtype=bool)])

    def table(self, ids=None) -> pa.Table:
        """The live rows in the table's row order (by the version that wrote each row's values, then by id), or the
        rows `ids` in id order."""
        if ids is None:
            live = np.flatnonzero(self.live)
            positions = live[np.lexsort((live, self.written[live]))]
        else:
            positions = np.asarray(ids)
        whole = pa.concat_tables(self.parts).combine_chunks()
        taken = whole.take(pa.array(positions))
        return taken.set_column(3, "value", pa.array(self.value[positions])).set_column(
            4, "text", pa.array(self.text[positions], pa.string())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=300)
    args = parser.parse_args()
    w = Workload(args.rows, args.commits)
    print(w.describe())
    print(w.base.slice(0, 3).to_pandas().to_string() if _has_pandas() else w.base.slice(0, 3))
    for name, table in w.changes().items():
        print(f"{name}: {table.num_rows:,} rows")


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
