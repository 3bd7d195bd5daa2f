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
import logstore.log
from logstore import MergeCounts

from conftest import age_files, file_state
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
            held = set(t.read(columns=["k"]).column("k").to_pylist())
            drawn = source.column("k").to_pylist()
            if delta_error is None and any(drawn.count(k) > 1 and k in held for k in held):
                # several source rows match one target row and delta-rs 1.6.6 did not refuse: there it departs from
                # Delta's documented rule (it copies such a row when no matched clause takes it, and allows an
                # unconditional delete followed by other matched clauses); the explicit tests below pin logstore's
                break
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


# --- rules, one at a time ---------------------------------------------------------------------------------------


def _people(store, name="p", key="id"):
    return store.create_table(name, pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "v": pa.array([10, 20, 30, 40], pa.int64()), "s": ["a", "b", "c", "d"]}), key=key)


def _source(ids, vs, flags=None):
    data = {"id": pa.array(ids, pa.int64()), "v": pa.array(vs, pa.int64()), "s": [f"x{i}" for i in ids]}
    if flags is not None:
        data["op"] = flags
    return pa.table(data)


def _by_id(t, version=None):
    return {r["id"]: (r["v"], r["s"]) for r in t.read(version=version).to_pylist()}


def test_cdc_merge_one_commit_with_counts_and_parameters(store):
    t = _people(store)
    source = _source([2, 3, 5], [21, 31, 50], ["U", "D", "I"])
    c = (
        t.merge(source, on="id", message="cdc", metadata={"batch": 7})
        .when_matched_delete("source.op = 'D'")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    assert (c.version, c.operation, c.rows_inserted, c.rows_updated, c.rows_deleted, c.num_rows) == (1, "MERGE", 1, 1, 1, 4)
    assert c.message == "cdc" and c.metadata == {"batch": 7}
    assert c.parameters == {
        "on": "id",
        "source_alias": "source",
        "target_alias": "target",
        "source_rows": 3,
        "clauses": [
            {"clause": "when_matched_delete", "condition": "source.op = 'D'"},
            {"clause": "when_matched_update_all"},
            {"clause": "when_not_matched_insert_all"},
        ],
    }
    assert _by_id(t) == {1: (10, "a"), 2: (21, "x2"), 4: (40, "d"), 5: (50, "x5")}
    assert _by_id(t, 0) == {1: (10, "a"), 2: (20, "b"), 3: (30, "c"), 4: (40, "d")}
    assert t.history(limit=1)[0] == c


def test_first_matching_clause_wins(store):
    t = _people(store)
    source = _source([1, 2, 3], [100, 200, 300])
    c = (
        t.merge(source, on=["id"])
        .when_matched_update(set={"s": "'big'"}, condition="source.v >= 200")
        .when_matched_delete(condition="source.v >= 100")  # id 1 only: 2 and 3 took the update
        .when_matched_update(set={"s": "'never'"})
        .when_not_matched_by_source_update(set={"v": "target.v + 1"}, condition="target.id = 4")
        .execute()
    )
    assert (c.rows_inserted, c.rows_updated, c.rows_deleted) == (0, 3, 1)
    assert _by_id(t) == {2: (20, "big"), 3: (30, "big"), 4: (41, "d")}


def test_noop_update_is_not_counted_while_delta_counts_it(store, tmp_path):
    """The one documented difference from Delta Lake's metrics: a matched update leaving the row as it was."""
    t = _people(store)
    source = pa.table({"id": pa.array([1, 2], pa.int64()), "v": pa.array([10, 21], pa.int64()), "s": ["a", "b"]})
    counts = t.merge(source, on="id").when_matched_update_all().dry_run()
    assert counts == MergeCounts(inserted=0, updated=1, deleted=0)  # id 1 is unchanged
    c = t.merge(source, on="id").when_matched_update_all().execute()
    assert c.rows_updated == 1 and t.changes(1).num_rows == 2  # one pre- and one post-image: id 2 only
    deltalake = pytest.importorskip("deltalake")
    path = str(tmp_path / "delta")
    deltalake.write_deltalake(path, t.read(version=0))
    merger = deltalake.DeltaTable(path).merge(source, predicate="target.id = source.id", source_alias="source", target_alias="target")
    assert merger.when_matched_update_all().execute()["num_target_rows_updated"] == 2


def test_dry_run_commits_nothing(store):
    t = _people(store)
    before = file_state(store.path)
    builder = t.merge(_source([1, 9], [0, 0]), on="id").when_matched_delete().when_not_matched_insert_all()
    assert builder.dry_run() == MergeCounts(1, 0, 1)
    assert builder.execute(dry_run=True) == MergeCounts(1, 0, 1)
    assert t.version == 0 and file_state(store.path) == before
    assert builder.execute().version == 1  # the same builder commits afterwards


def test_multiple_source_rows_matching_one_target_row_is_refused(store):
    t = _people(store)
    before = file_state(store.path)
    source = _source([2, 2, 3], [1, 2, 3])
    with pytest.raises(logstore.MergeMatchError) as e:
        t.merge(source, on="id").when_matched_update_all().execute()
    assert e.value.key == ["id"] and e.value.values == [2] and "2" in str(e.value)
    with pytest.raises(logstore.MergeMatchError):  # an `on` predicate too
        t.merge(source, on="source.id = target.id").when_matched_update(set={"v": "source.v"}).dry_run()
    assert t.version == 0 and file_state(store.path) == before
    # Delta Lake's exceptions: an unconditional delete as the only matched clause, and pairs no clause takes
    assert t.merge(source, on="id").when_matched_update_all(condition="source.v = 2").execute().rows_updated == 1
    assert t.merge(source, on="id").when_matched_delete().execute().rows_deleted == 2


def test_merge_refuses_duplicate_keys(store):
    t = _people(store)
    before = file_state(store.path)
    with pytest.raises(logstore.KeyViolationError, match="duplicate"):  # two new rows with one key
        t.merge(_source([7, 7], [1, 2]), on="id").when_not_matched_insert_all().execute()
    with pytest.raises(logstore.KeyViolationError, match="already in the table") as e:  # an update moving onto a held key
        t.merge(_source([1], [0]), on="id").when_matched_update(set={"id": "3"}).execute()
    assert e.value.values == [3]
    with pytest.raises(logstore.KeyViolationError):  # an insert whose values name a held key
        t.merge(_source([9], [0]), on="id").when_not_matched_insert(values={"id": "source.id - 8", "v": "source.v"}).execute()
    with pytest.raises(logstore.KeyViolationError, match="null"):
        t.merge(pa.table({"id": pa.array([None], pa.int64()), "v": [1], "s": ["q"]}), on="v").when_not_matched_insert_all().execute()
    assert t.version == 0 and file_state(store.path) == before
    # a key may move onto a key the same merge frees, and two rows may swap keys
    c = t.merge(_source([1, 2], [0, 0]), on="id").when_matched_update(set={"id": "3 - target.id"}).execute()
    assert c.rows_updated == 2 and _by_id(t) == {2: (10, "a"), 1: (20, "b"), 3: (30, "c"), 4: (40, "d")}
    c = t.merge(_source([3], [0]), on="id").when_matched_delete().when_not_matched_by_source_update(set={"id": "target.id + 1"}, condition="target.id = 2").execute()
    assert (c.rows_updated, c.rows_deleted) == (1, 1) and sorted(_by_id(t)) == [1, 3, 4]


def test_on_predicate_custom_aliases_and_keyless_tables(store):
    t = store.create_table("k", pa.table({"a": [1, 1, 2], "b": ["x", "y", "z"]}))  # no key: rows repeat values of a
    source = pa.table({"a": [1, 3], "b": ["new", "w"]})
    c = (
        t.merge(source, on="s.a = t.a AND t.b <> 'y'", source_alias="s", target_alias="t")
        .when_matched_update(set={"b": "s.b || '!' || t.b"})
        .when_not_matched_insert(values={"a": "s.a * 10"})
        .when_not_matched_by_source_delete(condition="t.b = 'z'")
        .execute()
    )
    assert (c.rows_inserted, c.rows_updated, c.rows_deleted) == (1, 1, 1)
    assert sorted(t.read().to_pylist(), key=str) == sorted([{"a": 1, "b": "new!x"}, {"a": 1, "b": "y"}, {"a": 30, "b": None}], key=str)
    assert c.parameters["on"] == "s.a = t.a AND t.b <> 'y'" and c.parameters["source_alias"] == "s"


def test_change_feed_and_diff_show_merge_rows(store):
    t = _people(store)
    t.merge(_source([2, 3, 5], [21, 31, 50], ["U", "D", "I"]), on="id").when_matched_delete("source.op = 'D'").when_matched_update_all().when_not_matched_insert_all().execute()
    feed = sorted((r["_change_type"], r["id"], r["v"]) for r in t.changes(1).to_pylist())
    assert feed == [("delete", 3, 30), ("insert", 5, 50), ("update_postimage", 2, 21), ("update_preimage", 2, 20)]
    diff = {r["id"]: r for r in t.diff(0, 1).to_pylist()}
    assert set(diff) == {2, 3, 5}
    summary = t.diff_summary(0, 1)
    assert (summary.inserted, summary.updated, summary.deleted) == (1, 1, 1)
    assert summary.changed_columns == {"v": 1, "s": 1}
    assert t.verify(full=True).ok


def test_lookup_path_after_repeated_merges_matches_full_reads(store):
    """Repeated merges on an integer key go through the head cache's key lookup; the rows must stay exact."""
    t = store.create_table("big", pa.table({"id": pa.array(range(1000), pa.int64()), "v": pa.array(range(1000), pa.int64())}), key="id")
    expected = {i: i for i in range(1000)}
    for m in range(5):
        ids = list(range(m * 100, m * 100 + 150)) + [2000 + m]
        source = pa.table({"id": pa.array(ids, pa.int64()), "v": pa.array([i * 10 + m for i in ids], pa.int64()), "gone": [i % 7 == 0 for i in ids]})
        c = t.merge(source, on="id").when_matched_delete("source.gone").when_matched_update_all().when_not_matched_insert_all("NOT source.gone").execute()
        counts = [0, 0, 0]
        for i, g in zip(ids, source.column("gone").to_pylist()):
            if i in expected and g:
                del expected[i]
                counts[2] += 1
            elif i in expected:
                counts[1] += expected[i] != i * 10 + m
                expected[i] = i * 10 + m
            elif not g:
                expected[i] = i * 10 + m
                counts[0] += 1
        assert [c.rows_inserted, c.rows_updated, c.rows_deleted] == counts
        assert {r["id"]: r["v"] for r in t.read().to_pylist()} == expected
    assert t.verify(full=True).ok


# --- errors: a LogstoreError naming the culprit, nothing written ------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "fragment"),
    [
        (lambda b: b.when_matched_update(set={"v": "source.nope"}), logstore.InvalidExpressionError, "nope"),
        (lambda b: b.when_matched_update(set={"nope": "1"}), logstore.SchemaMismatchError, "nope"),
        (lambda b: b.when_matched_update(set={"v": "target.v +"}), logstore.InvalidExpressionError, "target.v +"),
        (lambda b: b.when_matched_delete(condition="source.bogus > 1"), logstore.InvalidExpressionError, "bogus"),
        (lambda b: b.when_not_matched_insert(values={"v": "target.v"}), logstore.InvalidExpressionError, "target"),
        (lambda b: b.when_not_matched_by_source_delete(condition="source.v > 1"), logstore.InvalidExpressionError, "source"),
        (lambda b: b.when_matched_update(set={"v": "(SELECT 1)"}), logstore.InvalidExpressionError, "subqueries"),
        (lambda b: b.when_matched_update(set={"v": "1; DROP TABLE x"}), logstore.InvalidExpressionError, "1; DROP"),
        (lambda b: b.when_matched_delete(condition="count(*) > 1"), logstore.InvalidExpressionError, "count"),
        (lambda b: b.when_matched_update(set={"v": "read_csv('/etc/passwd')"}), logstore.InvalidExpressionError, "read_csv"),
        (lambda b: b.when_matched_update(set={"v": "CAST(source.s AS BIGINT)"}), logstore.InvalidExpressionError, "CAST"),
        (lambda b: b.when_matched_update(set={}), logstore.InvalidExpressionError, "non-empty"),
        (lambda b: b, logstore.InvalidInputError, "at least one"),
    ],
)
def test_bad_clauses_are_refused_naming_the_culprit(store, build, error, fragment):
    t = _people(store)
    before = file_state(store.path)
    with pytest.raises(error, match=None) as e:
        build(t.merge(_source([1, 9], [1, 2]), on="id")).execute()
    assert fragment in str(e.value)
    assert t.version == 0 and file_state(store.path) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"on": "missing"}, logstore.InvalidExpressionError, "missing"),
        ({"on": ["id", "missing"]}, logstore.SchemaMismatchError, "missing"),
        ({"on": []}, logstore.InvalidInputError, "on="),
        ({"on": 3}, logstore.InvalidInputError, "on="),
        ({"on": "id", "source_alias": "x", "target_alias": "X"}, logstore.InvalidInputError, "differ"),
        ({"on": "source.id = target.id; DELETE FROM t"}, logstore.InvalidExpressionError, "DELETE"),
    ],
)
def test_bad_merge_arguments_are_refused(store, kwargs, error, fragment):
    t = _people(store)
    with pytest.raises(error) as e:
        t.merge(_source([1], [1]), **kwargs).when_matched_delete().execute()
    assert fragment in str(e.value)
    assert t.version == 0


def test_bad_sources_are_refused(store):
    t = _people(store)
    with pytest.raises(logstore.InvalidInputError):
        t.merge([{"id": 1}], on="id")
    with pytest.raises(logstore.SchemaMismatchError, match="'s'"):  # insert_all needs every column
        t.merge(pa.table({"id": pa.array([9], pa.int64()), "v": [1]}), on="id").when_not_matched_insert_all().execute()
    with pytest.raises(logstore.TimestampError):
        t.merge(_source([1], [1]), on="id", timestamp="2999-01-01")
    assert t.version == 0


def test_a_failure_mid_merge_leaves_no_version(store):
    """A value that fails only while the merge runs (a cast of one source row) stops it before anything is written."""
    t = _people(store)
    before = file_state(store.path)
    source = pa.table({"id": pa.array([1, 2, 9], pa.int64()), "v": ["5", "oops", "7"], "s": ["a", "b", "c"]})
    with pytest.raises(logstore.InvalidExpressionError, match="oops"):
        t.merge(source, on="id").when_matched_update_all().when_not_matched_insert_all().execute()
    assert t.version == 0 and file_state(store.path) == before


def test_a_merge_dying_at_publish_leaves_no_version(store, monkeypatch):
    """The change file is written, then publishing the commit record fails (a crash there): no version appears, the
    rows read as before, and vacuum removes the orphaned change file once it is old."""
    t = _people(store)
    t.merge(_source([1], [0]), on="id").when_matched_update_all().execute()
    before = (t.version, t.read().to_pylist())

    def crash(self, record):
        raise OSError("the disk went away")

    monkeypatch.setattr(logstore.log.Log, "publish", crash)
    with pytest.raises(OSError):
        t.merge(_source([2, 9], [0, 0]), on="id").when_matched_update_all().when_not_matched_insert_all().execute()
    monkeypatch.undo()
    fresh = logstore.open(store.path).table("p")
    assert (fresh.version, fresh.read().to_pylist()) == before
    age_files(store.path, 3600)
    fresh.vacuum(dry_run=False, older_than=0)
    assert fresh.verify(full=True).ok and fresh.verify().unreferenced == []
    assert fresh.merge(_source([2], [5]), on="id").when_matched_update_all().execute().version == 2


@pytest.mark.stress
def test_faults_at_every_storage_step_of_a_merge(tmp_path, monkeypatch):
    """tests/test_faults.py's fault injection (every storage operation of the commit fails in turn, as a crash: it
    and every later one): the table reads as before or as after the merge, never anything else; verify and vacuum pass."""
    import test_faults

    import logstore.storage

    monkeypatch.setattr(logstore.storage, "_fsync", lambda path: None)

    def merge(t):
        source = test_faults.people([1, 2, 500], x=70).append_column("gone", pa.array([True, False, False]))
        t.merge(source, on="id").when_matched_delete("source.gone").when_matched_update_all().when_not_matched_insert_all().execute()

    monkeypatch.setitem(test_faults.OPERATIONS, "merge", merge)
    root = tmp_path / "template"
    t = logstore.init(root).create_table("t", test_faults.people(range(6)), key="id", properties={"snapshot_commits": 2})
    for _ in range(4):
        t.append(test_faults.people([100 + t.version]))
    assert test_faults._run_case(tmp_path, root, "merge", sticky=True) >= 10


# --- the CLI ----------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_run(cli_env, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from logstore_cli.main import cli

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args])

    assert invoke("init").exit_code == 0
    (tmp_path / "base.csv").write_text("id,v,s\n1,10,a\n2,20,b\n3,30,c\n")
    assert invoke("create", "t", "base.csv", "--key", "id", "--timestamp", "2021-01-01").exit_code == 0
    (tmp_path / "cdc.csv").write_text("id,v,s,op\n2,21,b,U\n3,30,c,D\n4,40,d,I\n")
    return invoke


def test_cli_merge_prints_the_counts(cli_run):
    dry = cli_run("merge", "t", "cdc.csv", "--on", "id", "--delete-matched-when", "source.op = 'D'", "--update-all", "--insert-all", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would insert 1, update 1, delete 1" in dry.output
    done = cli_run("merge", "t", "cdc.csv", "--on", "id", "--delete-matched-when", "source.op = 'D'", "--update-all", "--insert-all", "-m", "cdc", "--timestamp", "2022-01-01")
    assert done.exit_code == 0, done.output
    assert "t: version 1 MERGE +1 ~1 -1 (3 rows)" in done.output
    t = logstore.open(".logstore").table("t")
    assert t.commit_info().message == "cdc" and t.commit_info().timestamp.year == 2022
    assert {r["id"]: r["v"] for r in t.read().to_pylist()} == {1: 10, 2: 21, 4: 40}
    listed = cli_run("merge", "t", "cdc.csv", "--on", "id", "--update", "v=source.v * 2", "--update", "s='z'", "--delete-not-matched-by-source", "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert '"rows_updated": 2' in listed.output and '"rows_deleted": 1' in listed.output
    assert {r["id"]: (r["v"], r["s"]) for r in t.read().to_pylist()} == {2: (42, "z"), 4: (80, "z")}


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--on", "id"], 2, "at least one"),
        (["--on", "id", "--update-all", "--update", "v=1"], 2, "not both"),
        (["--on", "id", "--update", "v"], 2, "COL=EXPR"),
        (["--update-all"], 2, "--on"),
        (["--on", "id", "--update", "v=source.nope"], 1, "nope"),
        (["--on", "nope", "--update-all"], 1, "nope"),
    ],
)
def test_cli_merge_errors(cli_run, args, code, fragment):
    result = cli_run("merge", "t", "cdc.csv", *args)
    assert result.exit_code == code, result.output
    assert fragment in result.output
    assert logstore.open(".logstore").table("t").version == 0


def test_builder_runs_against_the_head_at_execute(store):
    """The builder holds clauses, not rows: executed after another commit, it merges into that newer head."""
    t = _people(store)
    builder = t.merge(_source([5], [55]), on="id").when_matched_update_all().when_not_matched_insert_all()
    other = logstore.open(store.path).table("p")
    other.append(_source([5], [50]))
    c = builder.execute()
    assert (c.version, c.rows_inserted, c.rows_updated) == (2, 0, 1)
    assert _by_id(t)[5] == (55, "x5")


def test_hostile_aliases_and_internal_names(store):
    t = _people(store)
    weird = 'x"; DROP TABLE y; --'
    c = t.merge(_source([1], [7]), on="id", source_alias=weird).when_matched_update(set={"v": '"x""; DROP TABLE y; --".v'}).execute()
    assert c.rows_updated == 1 and _by_id(t)[1] == (7, "a")
    with pytest.raises(logstore.InvalidInputError, match="__logstore_merge_pos"):
        t.merge(_source([1], [7]).append_column("__logstore_merge_pos", pa.array([1])), on="id")
    with pytest.raises(logstore.InvalidInputError):
        t.merge(_source([1], [7]), on="id", target_alias="")


def test_a_row_several_source_rows_match_and_no_matched_clause_takes_stays_once(store):
    t = store.create_table("t", pa.table({"k": [0, 1], "n": [0, 1]}), key="k")
    source = pa.table({"k": [0, 0], "n": [7, 8]})
    c = t.merge(source, on="k").when_not_matched_by_source_update(set={"n": "target.n + 100"}).execute()
    assert (c.rows_inserted, c.rows_updated, c.rows_deleted) == (0, 1, 0)
    assert sorted(t.read().to_pylist(), key=lambda r: r["k"]) == [{"k": 0, "n": 0}, {"k": 1, "n": 101}]


def test_several_matches_refused_when_a_matched_update_follows_an_unconditional_delete(store):
    t = store.create_table("t", pa.table({"k": [0], "n": [0]}))
    source = pa.table({"k": [0, 0], "n": [7, 8]})
    with pytest.raises(logstore.MergeMatchError):
        t.merge(source, on="k").when_matched_delete().when_matched_update(set={"n": "source.n"}).execute()
    assert t.version == 0
