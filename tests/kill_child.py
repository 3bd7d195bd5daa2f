"""Child process for test_kill.py: commit forever, printing one line per acknowledged commit.

The operation for version v is a pure function of v (see `operation`), so the parent can compute the exact rows
of every version with `model`, however many times the child was killed and restarted. A line is printed (and
flushed) only after commit() returned: every printed version is acknowledged.

usage: python kill_child.py STORE_PATH ACK_FILE
"""

from __future__ import annotations

import os
import sys

TABLE = "t"


def operation(v: int):
    """(kind, argument) of the commit that creates version v (v >= 1)."""
    kind = ("append", "update", "append", "delete", "upsert", "overwrite_small")[v % 6] if v % 37 else "snapshot_props"
    return kind


def rows_for(v: int):
    base = 10 * v
    return [{"id": base + i, "x": v * 100 + i, "s": f"v{v}-{i}"} for i in range(3)]


def apply(state: dict, v: int) -> None:
    """The model: state is {id: (x, s)}; apply the commit that creates version v."""
    kind = operation(v)
    if kind == "append":
        for r in rows_for(v):
            state[r["id"]] = (r["x"], r["s"])
    elif kind == "update":
        for k, (x, s) in list(state.items()):
            if k % 3 == v % 3:
                state[k] = (x + 1, s)
    elif kind == "delete":
        for k in list(state):
            if k % 7 == v % 7 and k < 10 * (v - 5):
                del state[k]
    elif kind == "upsert":
        for k in (10 * (v - 4) + 1, 10 * v + 5):
            state[k] = (-v, f"u{v}")
    elif kind == "overwrite_small":
        # overwrite keeps everything but rewrites ids divisible by 11
        for k in list(state):
            if k % 11 == 0:
                state[k] = (state[k][0], f"o{v}")
    # snapshot_props changes no rows


def model(version: int) -> dict:
    state = {i: (i, f"init{i}") for i in range(5)}
    for v in range(1, version + 1):
        apply(state, v)
    return state


def commit(table, v: int):
    import pyarrow as pa

    kind = operation(v)
    if kind == "append":
        return table.append(pa.Table.from_pylist(rows_for(v), schema=SCHEMA))
    elif kind == "update":
        return table.update({"x": "x + 1"}, f"id % 3 = {v % 3}")
    elif kind == "delete":
        return table.delete(f"id % 7 = {v % 7} AND id < {10 * (v - 5)}")
    elif kind == "upsert":
        rows = [{"id": k, "x": -v, "s": f"u{v}"} for k in (10 * (v - 4) + 1, 10 * v + 5)]
        return table.upsert(pa.Table.from_pylist(rows, schema=SCHEMA))
    elif kind == "overwrite_small":
        current = table.read(version=v - 1).to_pylist()
        for r in current:
            if r["id"] % 11 == 0:
                r["s"] = f"o{v}"
        return table.overwrite(pa.Table.from_pylist(current, schema=SCHEMA))
    else:
        return table.set_properties(snapshot_commits=3 + v % 4)


def main() -> None:
    import pyarrow as pa

    import logstore

    global SCHEMA
    SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.int64()), ("s", pa.string())])
    path, ack_path = sys.argv[1], sys.argv[2]
    table = logstore.open(path).table(TABLE)
    ack = open(ack_path, "a", buffering=1)
    while True:
        v = table.version + 1
        done = commit(table, v)
        assert done.version == v, (done.version, v)  # the only writer: the op for v made version v
        ack.write(f"{v}\n")
        ack.flush()
        os.fsync(ack.fileno())


if __name__ == "__main__":
    main()
