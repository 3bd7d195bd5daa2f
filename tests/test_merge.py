"""MERGE (merge.py): a differential test against Delta Lake's `DeltaTable.merge`, a model test mixing merges with
the other verbs, the rules (first clause wins, multiple matches, keys, no-op updates), errors and atomicity.

Counting: Delta Lake counts a matched row an update clause applies to as updated even when its values stay the
same; logstore neither writes nor counts it (as update and upsert). The differential test makes every update
clause change a value (each assigns the counter column `n` a value no row holds), so both counts must agree
exactly; test_noop_update_not_counted pins the difference down.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import MergeCounts

from test_model import Model, check_all

SCHEMA = pa.schema([("k", pa.int64()), ("x", pa.int64()), ("s", pa.string()), ("n", pa.int64())])
SOURCE_SCHEMA = pa.schema([*SCHEMA, ("d", pa.bool_())])
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


def _null_gt(value, bound):
    return value is not None and value > bound


# conditions: SQL text and the same meaning in Python over (source row, target row); kinds say which they may use
MATCHED_CONDITIONS = [
    (None, lambda s, t: True),
    ("source.d", lambda s, t: s["d"] is True),
    ("NOT source.d", lambda s, t: s["d"] is False),
    ("source.x > target.x", lambda s, t: s["x"] is not None and t["x"] is not None and s["x"] > t["x"]),
    ("target.s = 'a'", lambda s, t: t["s"] == "a"),
    ("target.x IS NULL OR source.x IS NULL", lambda s, t: t["x"] is None or s["x"] is None),
]
SOURCE_CONDITIONS = [
    (None, lambda s, t: True),
    ("NOT source.d", lambda s, t: s["d"] is False),
    ("source.x > 0", lambda s, t: _null_gt(s["x"], 0)),
    ("source.s IS NOT NULL", lambda s, t: s["s"] is not None),
]
TARGET_CONDITIONS = [
    (None, lambda s, t: True),
    ("target.x > 0", lambda s, t: _null_gt(t["x"], 0)),
    ("target.s = 'b'", lambda s, t: t["s"] == "b"),
    ("target.k % 2 = 0", lambda s, t: t["k"] % 2 == 0),
]


def _suffix(v):
    return None if v is None else v + "m"


def _plus(v, d):
    return None if v is None else v + d


# update and insert assignments: SQL and Python; every update assigns n a value no row holds (a real change)
MATCHED_SETS = [
    ({"x": "source.x", "n": "source.n"}, lambda s, t: {"x": s["x"], "n": s["n"]}),
    ({"s": "coalesce(source.s, target.s) || 'm'", "n": "target.n + 1000000"}, lambda s, t: {"s": _suffix(s["s"] if s["s"] is not None else t["s"]), "n": t["n"] + 1_000_000}),
]
BY_SOURCE_SETS = [
    ({"n": "target.n + 1000000", "s": "'bs'"}, lambda s, t: {"n": t["n"] + 1_000_000, "s": "bs"}),
    ({"x": "target.x * 2", "n": "target.n + 2000000"}, lambda s, t: {"x": None if t["x"] is None else t["x"] * 2, "n": t["n"] + 2_000_000}),
]
INSERT_VALUES = [
    ({"k": "source.k", "x": "source.x + 100", "n": "source.n"}, lambda s, t: {"k": s["k"], "x": _plus(s["x"], 100), "s": None, "n": s["n"]}),
]
ALL = (None, None)  # update_all / insert_all


@st.composite
def clause_lists(draw):
    """A random list of clauses: (kind, action, condition (sql, fn), assignments (sql dict, fn) or ALL)."""
    pool = []
    for _ in range(draw(st.integers(1, 5))):
        choice = draw(st.sampled_from(["m_update", "m_update_all", "m_delete", "insert", "insert_all", "bs_update", "bs_delete"]))
        if choice.startswith("m_"):
            cond = draw(st.sampled_from(MATCHED_CONDITIONS))
            sets = {"m_update": draw(st.sampled_from(MATCHED_SETS)), "m_update_all": ALL, "m_delete": None}[choice]
            pool.append(("matched", choice[2:].replace("_all", ""), cond, sets))
        elif choice.startswith("insert"):
            pool.append(("not_matched", "insert", draw(st.sampled_from(SOURCE_CONDITIONS)), ALL if choice == "insert_all" else draw(st.sampled_from(INSERT_VALUES))))
        else:
            sets = draw(st.sampled_from(BY_SOURCE_SETS)) if choice == "bs_update" else None
            pool.append(("not_matched_by_source", choice[3:], draw(st.sampled_from(TARGET_CONDITIONS)), sets))
    return pool


def apply_clauses(builder, clauses, *, delta: bool):
    """Add `clauses` to a logstore MergeBuilder or (delta=True) a deltalake TableMerger; return the builder."""
    for kind, action, (condition, _fn), sets in clauses:
        all_ = sets is ALL
        if kind == "matched" and action == "update":
            if delta:
                builder = builder.when_matched_update_all(predicate=condition) if all_ else builder.when_matched_update(updates=sets[0], predicate=condition)
            else:
                builder = builder.when_matched_update_all(condition) if all_ else builder.when_matched_update(set=sets[0], condition=condition)
        elif kind == "matched":
            builder = builder.when_matched_delete(predicate=condition) if delta else builder.when_matched_delete(condition)
        elif kind == "not_matched":
            if delta:
                builder = builder.when_not_matched_insert_all(predicate=condition) if all_ else builder.when_not_matched_insert(updates=sets[0], predicate=condition)
            else:
                builder = builder.when_not_matched_insert_all(condition) if all_ else builder.when_not_matched_insert(values=sets[0], condition=condition)
        elif action == "update":
            builder = builder.when_not_matched_by_source_update(updates=sets[0], predicate=condition) if delta else builder.when_not_matched_by_source_update(set=sets[0], condition=condition)
        else:
            builder = builder.when_not_matched_by_source_delete(predicate=condition) if delta else builder.when_not_matched_by_source_delete(condition)
    return builder


def _sorted(rows):
    return sorted((tuple((k, v is None, v) for k, v in sorted(r.items())) for r in rows), key=repr)


counter = st.shared(st.just([10_000]), key="counter")


@st.composite
def sources(draw, *, max_size=6, duplicates=False):
    fresh = draw(counter)
    rows = []
    keys = st.integers(0, 14)
    drawn = draw(st.lists(keys, max_size=max_size) if duplicates else st.lists(keys, max_size=max_size, unique=True))
    for k in drawn:
        fresh[0] += 1
        rows.append({"k": k, "x": draw(st.one_of(st.none(), st.integers(-3, 3))), "s": draw(st.sampled_from([None, "a", "b"])), "n": fresh[0], "d": draw(st.booleans())})
    return rows


@FAST
@given(data=st.data())
def test_merge_matches_delta_lake(no_fsync, data):
    deltalake = pytest.importorskip("deltalake")
    keyed = data.draw(st.booleans(), label="keyed")
    initial = data.draw(st.lists(st.integers(0, 11), max_size=8, unique=True), label="initial keys")
    base = pa.Table.from_pylist([{"k": k, "x": k % 4 - 1, "s": "ab"[k % 2], "n": k} for k in initial], schema=SCHEMA)
    tmp = tempfile.mkdtemp()
    try:
        store = logstore.init(Path(tmp) / "store")
        t = store.create_table("t", base, schema=SCHEMA, key="k" if keyed else None)
        delta_path = str(Path(tmp) / "delta")
        deltalake.write_deltalake(delta_path, base)
        for step in range(data.draw(st.integers(1, 3), label="merges")):
            source = pa.Table.from_pylist(data.draw(sources(duplicates=data.draw(st.booleans(), label="dups")), label="source"), schema=SOURCE_SCHEMA)
            clauses = data.draw(clause_lists(), label="clauses")
            on = data.draw(st.sampled_from(["k", ["k"], "source.k = target.k"]), label="on")
            delta_error = None
            try:
                merger = deltalake.DeltaTable(delta_path).merge(source, predicate="target.k = source.k", source_alias="source", target_alias="target")
                metrics = apply_clauses(merger, clauses, delta=True).execute()
            except Exception as e:  # deltalake raises its own DeltaError
                delta_error = e
            before = t.version
            if delta_error is not None:
                assert "multiple source rows" in str(delta_error), delta_error
                with pytest.raises(logstore.MergeMatchError):
                    apply_clauses(t.merge(source, on=on), clauses, delta=False).execute()
                assert t.version == before
                continue
            delta_rows = deltalake.DeltaTable(delta_path).to_pyarrow_table().to_pylist()
            if keyed and len({r["k"] for r in delta_rows}) < len(delta_rows):
                with pytest.raises(logstore.KeyViolationError):  # Delta inserted a second row with a key
                    apply_clauses(t.merge(source, on=on), clauses, delta=False).execute()
                assert t.version == before
                deltalake.DeltaTable(delta_path).restore(deltalake.DeltaTable(delta_path).version() - 1)
                continue
            builder = apply_clauses(t.merge(source, on=on), clauses, delta=False)
            counts = builder.dry_run()
            c = builder.execute()
            assert c.version == before + 1 and c.operation == "MERGE"
            got = (c.rows_inserted, c.rows_updated, c.rows_deleted)
            want = (metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"], metrics["num_target_rows_deleted"])
            assert got == want, f"step {step}: logstore {got}, Delta {want}"
            assert counts == MergeCounts(*got)
            assert _sorted(t.read().to_pylist()) == _sorted(delta_rows)
            assert c.num_rows == len(delta_rows)
        assert t.verify(full=True).ok
    finally:
        shutil.rmtree(tmp)


# --- the model test: merges mixed with the other verbs ---------------------------------------------------------


class MergeRefused(Exception):
    pass


def model_merge(model: Model, source: list[dict], clauses, *, keyed: bool) -> tuple[int, int, int]:
    """Apply a merge on k to the model (test_model.Model); raises MergeRefused(kind) when logstore must refuse."""
    matches: dict[int, list[int]] = {}
    for i, r in model.rows.items():
        matches[i] = [j for j, s in enumerate(source) if s["k"] == r["k"]]
    matched_clauses = [c for c in clauses if c[0] == "matched"]
    only_delete = len(matched_clauses) == 1 and matched_clauses[0][1] == "delete" and matched_clauses[0][2][0] is None

    def first(kind, s, t):
        for c in clauses:
            if c[0] == kind and c[2][1](s, t):
                return c
        return None

    new_rows = dict(model.rows)
    updated = deleted = 0
    for i, r in model.rows.items():
        taken = [(j, first("matched", source[j], r)) for j in matches[i]]
        taken = [(j, c) for j, c in taken if c is not None]
        if len(taken) > 1 and not only_delete:
            raise MergeRefused("match")
        if not matches[i]:
            c = first("not_matched_by_source", None, r)
            taken = [(None, c)] if c is not None else []
        if not taken:
            continue
        j, c = taken[0]
        s = source[j] if j is not None else None
        if c[1] == "delete":
            del new_rows[i]
            deleted += 1
            continue
        image = {col: s[col] for col in model.columns} if c[3] is ALL else {**r, **c[3][1](s, r)}
        if image != r:
            new_rows[i] = image
            updated += 1
    matched_sources = {j for js in matches.values() for j in js}
    inserts = []
    for j, s in enumerate(source):
        if j not in matched_sources:
            c = first("not_matched", s, None)
            if c is not None:
                inserts.append({col: s[col] for col in model.columns} if c[3] is ALL else {col: c[3][1](s, None).get(col) for col in model.columns})
    if keyed:
        keys = [r["k"] for r in new_rows.values()] + [r["k"] for r in inserts]
        if len(set(keys)) != len(keys):
            raise MergeRefused("key")
    model.set_rows(new_rows)
    for r in inserts:
        model.insert(r)
    return len(inserts), updated, deleted


def _rows(rows):
    return pa.Table.from_pylist([{c: r[c] for c in SCHEMA.names} for r in rows], schema=SCHEMA)


@FAST
@given(data=st.data())
def test_merges_and_verbs_match_model(no_fsync, data):
    keyed = data.draw(st.booleans(), label="keyed")
    model = Model(keyed=keyed, columns=tuple(SCHEMA.names))
    with tempfile.TemporaryDirectory() as tmp:
        store = logstore.init(Path(tmp) / "store")
        t = store.create_table("t", schema=SCHEMA, key="k" if keyed else None)
        model.commit(t.history(limit=1)[0])
        for step in range(data.draw(st.integers(1, 8), label="steps")):
            kind = data.draw(st.sampled_from(["merge", "merge", "merge", "append", "update", "delete", "restore"] + (["upsert"] if keyed else [])), label=f"op {step}")
            if kind == "merge":
                source = data.draw(sources(duplicates=True), label="source")
                clauses = data.draw(clause_lists(), label="clauses")
                builder = apply_clauses(t.merge(pa.Table.from_pylist(source, schema=SOURCE_SCHEMA), on="k"), clauses, delta=False)
                probe = Model(keyed, model.columns, dict(model.rows), dict(model.written), model.next_id, list(model.states), list(model.writes))
                try:
                    counts = model_merge(probe, source, clauses, keyed=keyed)
                except MergeRefused as refused:
                    error = logstore.MergeMatchError if str(refused) == "match" else logstore.KeyViolationError
                    with pytest.raises(error):
                        builder.execute()
                    continue
                model_merge(model, source, clauses, keyed=keyed)
                c = builder.execute()
                assert (c.rows_inserted, c.rows_updated, c.rows_deleted) == counts
                model.commit(c)
            elif kind == "append":
                batch = [{"k": k, "x": 1, "s": "a", "n": k} for k in data.draw(st.lists(st.integers(0, 14), max_size=3, unique=True), label="keys")]
                if model.append(batch):
                    model.commit(t.append(_rows(batch)))
                else:
                    with pytest.raises(logstore.KeyViolationError):
                        t.append(_rows(batch))
            elif kind == "upsert":
                batch = [{"k": k, "x": 2, "s": "u", "n": k} for k in data.draw(st.lists(st.integers(0, 14), max_size=3, unique=True), label="keys")]
                model.upsert(batch)
                model.commit(t.upsert(_rows(batch)))
            elif kind == "update":
                model.update({"x": ("x + 1", lambda r: _plus(r["x"], 1))}, lambda r: r["k"] % 2 == 1)
                model.commit(t.update({"x": "x + 1"}, where="k % 2 = 1"))
            elif kind == "delete":
                model.delete(lambda r: r["k"] % 3 == 0)
                model.commit(t.delete(where="k % 3 = 0"))
            else:
                v = data.draw(st.integers(0, len(model.states) - 1), label="version")
                model.restore(v)
                model.commit(t.restore(v))
            check_all(t, model)
        assert t.verify(full=True).ok
