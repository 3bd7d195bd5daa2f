"""The backbone: random operation sequences applied to a logstore table and to an in-memory model.

After every step, every version so far must read back exactly as the model recorded it (rows and order) by
version, by timestamp (the commit's own and a moment between commits) and by tag. Reads are in the table's row
order (docs/format.md, format 3): by the version that wrote each row's current values, then by internal row id; a
row whose values a commit changes (or re-inserts) moves to that commit's place, a row it leaves as it was stays.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
import logstore.storage

UTC = dt.UTC
BACKFILL_START = dt.datetime(2021, 3, 1, 12, 0, tzinfo=UTC)

KEYED_SCHEMA = pa.schema([("k", pa.int64()), ("x", pa.int64()), ("s", pa.string())])
KEYLESS_SCHEMA = pa.schema([("x", pa.int64()), ("s", pa.string())])

FAST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
STRESS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


# --- predicates and SET expressions: SQL text plus the same meaning in Python (SQL NULL semantics) --------------


def _gt(c):
    return (f"x > {c}", lambda r: r["x"] is not None and r["x"] > c)


def _lt_or_null(c):
    return (f"s IS NULL OR x < {c}", lambda r: r["s"] is None or (r["x"] is not None and r["x"] < c))


def _s_eq(c):
    return (f"s = '{c}'", lambda r: r["s"] == c)


def _k_mod(m, rem):
    return (f"k % {m} = {rem}", lambda r: r["k"] % m == rem)


def predicates(keyed: bool):
    common = [
        st.just((None, lambda r: True)),
        st.integers(-2, 2).map(_gt),
        st.integers(-2, 2).map(_lt_or_null),
        st.sampled_from(["a", "b", "c"]).map(_s_eq),
        st.just(("x IS NULL", lambda r: r["x"] is None)),
        st.just(("false", lambda r: False)),
    ]
    if keyed:
        common.append(st.tuples(st.integers(2, 3), st.integers(0, 1)).map(lambda t: _k_mod(*t)))
        common.append(st.just(("k IN (1, 2, 7)", lambda r: r["k"] in (1, 2, 7))))
    return st.one_of(common)


X_SETS = [
    ("x + 1", lambda r: None if r["x"] is None else r["x"] + 1),
    ("coalesce(x, 0) * 2", lambda r: (r["x"] or 0) * 2),
    ("NULL", lambda r: None),
    ("7", lambda r: 7),
]
S_SETS = [
    ("s || 'z'", lambda r: None if r["s"] is None else r["s"] + "z"),
    ("'b'", lambda r: "b"),
    ("NULL", lambda r: None),
    ("upper(s)", lambda r: None if r["s"] is None else r["s"].upper()),
]


def assignments():
    return st.fixed_dictionaries({}, optional={"x": st.sampled_from(X_SETS), "s": st.sampled_from(S_SETS)}).filter(bool)


# --- rows -----------------------------------------------------------------------------------------------------------

values_x = st.one_of(st.none(), st.integers(-3, 3))
values_s = st.sampled_from([None, "a", "b", "c"])


def keyed_rows(min_size=0, max_size=5, unique=True):
    row = st.fixed_dictionaries({"k": st.integers(0, 9), "x": values_x, "s": values_s})
    if unique:
        return st.lists(row, min_size=min_size, max_size=max_size, unique_by=lambda r: r["k"])
    return st.lists(row, min_size=min_size, max_size=max_size)


def keyless_rows(min_size=0, max_size=5):
    # a small domain so that duplicate rows are common
    return st.lists(st.fixed_dictionaries({"x": st.sampled_from([None, 1, 2]), "s": st.sampled_from([None, "a"])}), min_size=min_size, max_size=max_size)


def as_table(rows, schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


# --- the model ----------------------------------------------------------------------------------------------------


@dataclass
class Model:
    keyed: bool
    columns: tuple[str, ...]
    rows: dict = field(default_factory=dict)  # row id -> row dict (current state)
    written: dict = field(default_factory=dict)  # row id -> the version that wrote its current values
    next_id: int = 0
    states: list = field(default_factory=list)  # per version: dict row id -> row
    writes: list = field(default_factory=list)  # per version: dict row id -> the version that wrote its values
    timestamps: list = field(default_factory=list)  # per version: commit timestamp
    tags: dict = field(default_factory=dict)
    deleted_tags: set = field(default_factory=set)

    def expected(self, version: int) -> list[dict]:
        state, writes = self.states[version], self.writes[version]
        return [dict(state[i]) for i in sorted(state, key=lambda i: (writes[i], i))]

    @property
    def pending(self) -> int:
        """The version the next commit makes."""
        return len(self.states)

    def set_rows(self, rows: dict) -> None:
        """The state after an operation: a row id whose values change (or that comes back) is written now."""
        self.written = {i: (self.written[i] if i in self.rows and self.rows[i] == r else self.pending) for i, r in rows.items()}
        self.rows = {i: dict(r) for i, r in rows.items()}

    def commit(self, c: logstore.Commit) -> None:
        assert c.version == len(self.states), f"commit made version {c.version}, expected {len(self.states)}"
        assert c.timestamp.tzinfo is not None
        if self.timestamps:
            assert c.timestamp > self.timestamps[-1], "commit timestamps must strictly increase"
        assert c.num_rows == len(self.rows), f"commit says {c.num_rows} rows, model has {len(self.rows)}"
        self.states.append({i: dict(r) for i, r in self.rows.items()})
        self.writes.append(dict(self.written))
        self.timestamps.append(c.timestamp)

    def insert(self, row: dict) -> None:
        self.rows[self.next_id] = dict(row)
        self.written[self.next_id] = self.pending
        self.next_id += 1

    def key_index(self) -> dict:
        return {r["k"]: i for i, r in self.rows.items()}

    # operations, mirroring the documented semantics

    def append(self, batch: list[dict]) -> bool:
        """False if the append must be refused (key clash)."""
        if self.keyed:
            keys = [r["k"] for r in batch]
            if len(set(keys)) != len(keys) or set(keys) & set(self.key_index()):
                return False
        for r in batch:
            self.insert(r)
        return True

    def upsert(self, batch: list[dict]) -> None:
        index = self.key_index()
        for r in batch:
            if r["k"] in index:
                self.set_rows({**self.rows, index[r["k"]]: dict(r)})
            else:
                self.insert(r)

    def update(self, sets: dict, pred) -> None:
        self.set_rows({i: ({**r, **{c: fn(r) for c, (_sql, fn) in sets.items()}} if pred(r) else r) for i, r in self.rows.items()})

    def delete(self, pred) -> None:
        self.set_rows({i: r for i, r in self.rows.items() if not pred(r)})

    def overwrite(self, batch: list[dict]) -> None:
        if self.keyed:
            index = self.key_index()
            new = {}
            fresh = []
            for r in batch:
                if r["k"] in index:
                    new[index[r["k"]]] = dict(r)
                else:
                    fresh.append(r)
            self.set_rows(new)
            for r in fresh:
                self.insert(r)
            return
        # without a key: a multiset difference by full-row equality; the oldest copies of a row survive
        old_by_value: dict[tuple, list[int]] = {}
        for i in sorted(self.rows):
            old_by_value.setdefault(self._value(self.rows[i]), []).append(i)
        new_count: dict[tuple, int] = {}
        fresh = []
        for r in batch:
            v = self._value(r)
            new_count[v] = new_count.get(v, 0) + 1
            if new_count[v] > len(old_by_value.get(v, [])):
                fresh.append(r)
        keep = {}
        for v, ids in old_by_value.items():
            for i in ids[: new_count.get(v, 0)]:
                keep[i] = self.rows[i]
        self.set_rows(keep)
        for r in fresh:
            self.insert(r)

    def restore(self, version: int) -> None:
        self.set_rows({i: dict(r) for i, r in self.states[version].items()})

    def _value(self, row: dict) -> tuple:
        return tuple(row[c] for c in self.columns)


# --- checking -------------------------------------------------------------------------------------------------------


def as_of_forms(moment: dt.datetime, n: int):
    """The same instant in one of several spellings users pass as as_of."""
    form = n % 4
    if form == 0:
        return moment
    if form == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if form == 2:
        return moment.astimezone(dt.timezone(dt.timedelta(hours=2)))
    return moment.replace(tzinfo=None)  # naive means UTC


def between(model: Model, v: int) -> dt.datetime:
    """A moment after commit v and before commit v+1 (or just after the latest)."""
    ts = model.timestamps
    if v + 1 < len(ts):
        return ts[v] + (ts[v + 1] - ts[v]) // 2
    return ts[v] + dt.timedelta(microseconds=1)


def check_all(t: logstore.Table, model: Model, rnd: st.DataObject | None = None, *, full: bool = False) -> None:
    latest = len(model.states) - 1
    assert t.version == latest
    assert t.read().to_pylist() == model.expected(latest)
    for v in range(latest + 1):
        expected = model.expected(v)
        got = t.read(version=v)
        assert got.column_names == list(model.columns)
        assert got.to_pylist() == expected, f"version {v}"
        # timestamps resolve to the right version: the commit's own and a moment before the next commit
        assert t.version_at(model.timestamps[v]) == v
        assert t.commit_info(as_of=as_of_forms(model.timestamps[v], v)).version == v
        assert t.commit_info(as_of=as_of_forms(between(model, v), v + 1)).version == v
        if full:
            assert t.read(as_of=as_of_forms(model.timestamps[v], v)).to_pylist() == expected
            assert t.read(as_of=as_of_forms(between(model, v), v + 1)).to_pylist() == expected
    assert t.tags() == model.tags
    for name, v in model.tags.items():
        assert t.commit_info(tag=name).version == v
        if full:
            assert t.read(tag=name).to_pylist() == model.expected(v)
    for name in model.deleted_tags - set(model.tags):
        with pytest.raises(logstore.TagNotFoundError):
            t.read(tag=name)
    if rnd is not None and not full:
        # full reads through the timestamp and tag paths for one random version per step
        v = rnd.draw(st.integers(0, latest), label="sample version")
        assert t.read(as_of=as_of_forms(model.timestamps[v], v)).to_pylist() == model.expected(v)
        assert t.read(as_of=as_of_forms(between(model, v), v + 1)).to_pylist() == model.expected(v)
        if model.tags:
            name = rnd.draw(st.sampled_from(sorted(model.tags)), label="sample tag")
            assert t.read(tag=name).to_pylist() == model.expected(model.tags[name])


def read_all(t: logstore.Table, latest: int) -> list[list[dict]]:
    return [t.read(version=v).to_pylist() for v in range(latest + 1)]


def check_snapshot_damage(t: logstore.Table, table_dir: Path, model: Model) -> None:
    """Damaging or deleting snapshot files never changes an answer."""
    latest = len(model.states) - 1
    expected = [model.expected(v) for v in range(latest + 1)]
    snap_files = sorted((table_dir / "snapshots").glob("*.parquet")) if (table_dir / "snapshots").exists() else []
    records = sorted((table_dir / "_snapshots").glob("*.json")) if (table_dir / "_snapshots").exists() else []
    if not snap_files:
        return
    backup = {p: p.read_bytes() for p in snap_files + records}

    def damage_and_check(damage):
        for p, data in backup.items():  # start from intact files each time
            p.write_bytes(data)
        for p in snap_files:
            damage(p)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert read_all(t, latest) == expected, damage.__name__
        assert any(issubclass(w.category, RuntimeWarning) for w in caught), f"no RuntimeWarning after {damage.__name__}"

    def same_size_garbage(p):
        p.write_bytes(b"\x00" * p.stat().st_size)

    def flipped_middle(p):
        data = bytearray(backup[p])
        for i in range(len(data) // 3, len(data) // 3 + 16):
            data[i] ^= 0xFF
        p.write_bytes(bytes(data))

    def truncated(p):
        p.write_bytes(backup[p][: len(backup[p]) // 2])

    def deleted(p):
        p.unlink()

    for damage in (same_size_garbage, truncated, deleted):
        damage_and_check(damage)
    # damaged snapshot records (the JSON) behave the same
    for p, data in backup.items():
        p.write_bytes(data)
    for r in records:
        r.write_text("{not json")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert read_all(t, latest) == expected
    for r in records:
        r.unlink()
    assert read_all(t, latest) == expected
    # bit flips inside the data may or may not be detected by the Parquet reader, so only a clean restore is checked
    del flipped_middle
    for p, data in backup.items():
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
    assert read_all(t, latest) == expected


# --- the driver ---------------------------------------------------------------------------------------------------


def run_sequence(data: st.DataObject, *, keyed: bool, max_steps: int) -> None:
    variant = data.draw(st.sampled_from(["default", "every2", "fraction"]), label="snapshot variant")
    properties = {"default": {}, "every2": {"snapshot_commits": 2}, "fraction": {"snapshot_fraction": 0.01, "snapshot_commits": 3}}[variant]
    backfill = data.draw(st.booleans(), label="backfill timestamps")
    schema = KEYED_SCHEMA if keyed else KEYLESS_SCHEMA
    model = Model(keyed=keyed, columns=tuple(schema.names))
    clock = [BACKFILL_START]

    def when():
        if not backfill:
            return None
        clock[0] += dt.timedelta(seconds=data.draw(st.integers(1, 86_400), label="gap"))
        return clock[0]

    with tempfile.TemporaryDirectory() as tmp:
        store = logstore.init(Path(tmp) / "store")
        rows = data.draw(keyed_rows() if keyed else keyless_rows(), label="initial rows")
        with_data = data.draw(st.booleans(), label="create with data") and bool(rows)
        t = store.create_table(
            "t",
            as_table(rows, schema) if with_data else None,
            schema=schema,
            key="k" if keyed else None,
            properties=properties,
            timestamp=when(),
        )
        if with_data:
            for r in rows:
                model.insert(r)
        model.commit(t.history(limit=1)[0])
        check_all(t, model, data)

        kinds = ["append", "update", "delete", "overwrite", "restore", "tag", "snapshot", "set_properties", "delete_tag"]
        if keyed:
            kinds += ["upsert", "upsert"]
        for step in range(data.draw(st.integers(1, max_steps), label="steps")):
            kind = data.draw(st.sampled_from(kinds), label=f"op {step}")
            ts = None
            if kind == "append":
                batch = data.draw(keyed_rows(unique=False) if keyed else keyless_rows(), label="rows")
                before = read_all(t, len(model.states) - 1)
                if model.append(batch):
                    model.commit(t.append(as_table(batch, schema), timestamp=when()))
                else:
                    with pytest.raises(logstore.KeyViolationError):
                        t.append(as_table(batch, schema), timestamp=when())
                    assert read_all(t, len(model.states) - 1) == before
            elif kind == "upsert":
                batch = data.draw(keyed_rows(), label="rows")
                model.upsert(batch)
                model.commit(t.upsert(as_table(batch, schema), timestamp=when()))
            elif kind == "update":
                sets = data.draw(assignments(), label="set")
                if keyed:
                    sets = {c: e for c, e in sets.items() if c != "k"}
                sql, pred = data.draw(predicates(keyed), label="where")
                model.update(sets, pred)
                model.commit(t.update(set={c: e[0] for c, e in sets.items()}, where=sql, timestamp=when()))
            elif kind == "delete":
                sql, pred = data.draw(predicates(keyed), label="where")
                model.delete(pred)
                model.commit(t.delete(where=sql, timestamp=when()))
            elif kind == "overwrite":
                batch = data.draw(keyed_rows(max_size=6) if keyed else keyless_rows(max_size=6), label="rows")
                if model.rows and data.draw(st.booleans(), label="reuse current rows"):
                    # mostly the current rows, a few changed: the common case for overwrite
                    current = [model.rows[i] for i in sorted(model.rows)]
                    keep = data.draw(st.lists(st.sampled_from(current), max_size=len(current)), label="kept")
                    batch = keep + batch
                    if keyed:
                        seen, unique = set(), []
                        for r in batch:
                            if r["k"] not in seen:
                                seen.add(r["k"])
                                unique.append(r)
                        batch = unique
                model.overwrite(batch)
                model.commit(t.overwrite(as_table(batch, schema), timestamp=when()))
            elif kind == "restore":
                latest = len(model.states) - 1
                v = data.draw(st.integers(0, latest), label="restore version")
                how = data.draw(st.sampled_from(["version", "as_of", "tag"]), label="restore selector")
                model.restore(v)
                if how == "version":
                    c = t.restore(v, timestamp=when())
                elif how == "as_of":
                    c = t.restore(as_of=between(model, v), timestamp=when())
                else:
                    name = f"r{step}"
                    t.tag(name, v)
                    model.tags[name] = v
                    c = t.restore(tag=name, timestamp=when())
                model.commit(c)
            elif kind == "tag":
                v = data.draw(st.integers(0, len(model.states) - 1), label="tag version")
                name = f"tag{step}"
                assert t.tag(name, v) == v
                model.tags[name] = v
            elif kind == "delete_tag":
                if model.tags:
                    name = data.draw(st.sampled_from(sorted(model.tags)), label="tag to delete")
                    t.delete_tag(name)
                    del model.tags[name]
                    model.deleted_tags.add(name)
            elif kind == "snapshot":
                assert t.snapshot() == len(model.states) - 1
                assert len(model.states) - 1 in t.snapshots()
            elif kind == "set_properties":
                n = data.draw(st.integers(1, 4), label="snapshot_commits")
                model.commit(t.set_properties(snapshot_commits=n, timestamp=when()))
            del ts
            check_all(t, model, data)

        # a fresh handle (no cached log records) reads the same
        fresh = logstore.open(Path(tmp) / "store").table("t")
        check_all(fresh, model, full=True)
        assert not os.listdir(Path(tmp) / "store" / "_staging")
        check_snapshot_damage(fresh, Path(tmp) / "store" / "tables" / "t", model)
        shutil.rmtree(Path(tmp) / "store")


@FAST
@given(data=st.data())
def test_keyed_table_matches_model(no_fsync, data):
    run_sequence(data, keyed=True, max_steps=8)


@FAST
@given(data=st.data())
def test_keyless_table_matches_model(no_fsync, data):
    run_sequence(data, keyed=False, max_steps=8)


@pytest.mark.stress
@STRESS
@given(data=st.data())
def test_keyed_table_matches_model_stress(no_fsync, data):
    run_sequence(data, keyed=True, max_steps=30)


@pytest.mark.stress
@STRESS
@given(data=st.data())
def test_keyless_table_matches_model_stress(no_fsync, data):
    run_sequence(data, keyed=False, max_steps=30)


def test_model_example_by_hand(store):
    """A readable fixed sequence: rows in the order their current values were written (version, then row id)."""
    t = store.create_table("t", pa.table({"k": [3, 1], "x": [30, 10]}), key="k")
    t.upsert(pa.table({"k": [2, 1], "x": [20, 11]}))  # k=1 changed: written by version 1, after k=3
    assert t.read().to_pylist() == [{"k": 3, "x": 30}, {"k": 1, "x": 11}, {"k": 2, "x": 20}]
    t.upsert(pa.table({"k": [3], "x": [30]}))  # the same values: no change, k=3 keeps its place
    assert [r["k"] for r in t.read().to_pylist()] == [3, 1, 2]
    t.delete(where="k = 3")
    t.append(pa.table({"k": [3], "x": [33]}))  # a new row: goes to the end
    assert [r["k"] for r in t.read().to_pylist()] == [1, 2, 3]
    t.restore(0)  # k=3 (its old row id) and k=1 get version 0's values back: written by the restore
    assert t.read().to_pylist() == [{"k": 3, "x": 30}, {"k": 1, "x": 10}]
    assert [r["k"] for r in t.read(version=1).to_pylist()] == [3, 1, 2]  # old versions keep their order
    assert [c.num_rows for c in reversed(t.history())] == [2, 3, 3, 2, 3, 2]
