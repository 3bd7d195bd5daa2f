"""The writer's decoded head (headcache.py): it changes where a writer reads the head from, never what it writes.

Every test checks what was committed against a plain dict model and against the recorded content fingerprints
(verify(full=True) recomputes each version's fingerprint from the files), so a cache that served stale or
duplicated rows would make a commit write wrong change rows and fail here.
"""

from __future__ import annotations

import shutil

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import headcache, testing

from conftest import people


def state(table, version=None) -> dict:
    rows = table.read(version=version).to_pylist()
    return {r["id"]: (r["name"], r["score"]) for r in rows}


def cached_tables(store) -> list[str]:
    return sorted(testing.head_cache(store)._entries)


def assert_verified(table) -> None:
    report = table.verify(full=True)
    assert report.ok, report.problems


@pytest.fixture
def keyed(store, no_fsync):
    return store.create_table("p", people(range(10)), key="id")


def test_built_by_the_second_state_read_and_used_after(keyed, store):
    keyed.update({"score": "score + 1"}, "id < 3")
    assert cached_tables(store) == []  # a one-off writer never pays for it
    keyed.delete("id = 9")
    assert cached_tables(store) == [testing.prefix(keyed)]
    keyed.update({"name": "upper(name)"}, "id >= 7")
    plan = testing.head(keyed).state_plan
    assert plan.snapshot is not None and plan.snapshot.table
    expected = {i: (f"n{i}", i / 2) for i in range(10)}
    expected.update({i: (f"n{i}", i / 2 + 1) for i in range(3)})
    del expected[9]
    expected.update({i: (f"N{i}", i / 2) for i in (7, 8)})
    assert state(keyed) == expected
    assert_verified(keyed)


def test_appends_alone_never_build_it(keyed, store):
    for start in range(10, 60, 10):
        keyed.append(people(range(start, start + 10)))
    assert cached_tables(store) == []


def test_catch_up_applies_every_kind_of_change(keyed, store, monkeypatch):
    monkeypatch.setattr(headcache, "CATCH_UP_FILES", 1)
    model = {i: (f"n{i}", i / 2) for i in range(10)}
    for step in range(12):
        if step % 4 == 0:
            keyed.update({"score": f"score + {step}"}, "id % 2 = 0")
            model = {k: (n, s + step) if k % 2 == 0 else (n, s) for k, (n, s) in model.items()}
        elif step % 4 == 1:
            keyed.delete(f"id = {step}")
            model.pop(step, None)
        elif step % 4 == 2:
            keyed.append(people([100 + step]))
            model[100 + step] = (f"n{100 + step}", (100 + step) / 2)
        else:
            keyed.upsert(people([0, 200 + step], names=["zero", "new"], scores=[-1.0, 1.0]))
            model[0] = ("zero", -1.0)
            model[200 + step] = ("new", 1.0)
        assert state(keyed) == model, f"step {step}"
    assert cached_tables(store) == [testing.prefix(keyed)]
    assert_verified(keyed)


def test_commits_of_another_writer_are_seen(keyed, store, tmp_path, monkeypatch):
    monkeypatch.setattr(headcache, "CATCH_UP_FILES", 2)
    other = logstore.open(tmp_path / "store").table("p")
    keyed.update({"score": "0"}, "id < 5")
    keyed.update({"score": "1"}, "id >= 5")  # the cache now holds this version
    other.delete("id = 1")
    other.update({"name": "'theirs'"}, "id = 2")
    other.upsert(people([3, 50], names=["up", "fresh"], scores=[3.0, 50.0]))
    other.append(people([60]))
    keyed.update({"score": "score + 10"}, "true")
    got = state(keyed)
    assert 1 not in got
    assert got[2] == ("theirs", 10.0) and got[3] == ("up", 13.0) and got[50] == ("fresh", 60.0) and got[60] == ("n60", 40.0)
    assert got[7] == ("n7", 11.0)
    assert_verified(keyed)


def test_schema_change_rebuilds_it(keyed, store):
    keyed.update({"score": "1"}, "id = 1")
    keyed.update({"score": "2"}, "id = 2")
    extra = people([20]).append_column("tag", pa.array(["x"], pa.string()))
    keyed.append(extra, schema_mode="merge")
    keyed.update({"tag": "'y'"}, "id < 3")
    rows = {r["id"]: r["tag"] for r in keyed.read().to_pylist()}
    assert rows[0] == rows[1] == rows[2] == "y" and rows[20] == "x" and rows[5] is None
    assert_verified(keyed)


def test_a_store_recreated_at_the_same_path_is_not_confused_with_the_cached_one(keyed, store, tmp_path):
    keyed.update({"score": "1"}, "id = 1")
    keyed.update({"score": "2"}, "id = 2")  # cached
    shutil.rmtree(tmp_path / "store")
    fresh = logstore.init(tmp_path / "store")
    fresh.create_table("p", people(range(100, 103)), key="id")
    fresh.table("p").update({"score": "0"}, "true")
    fresh.table("p").update({"score": "0"}, "true")  # same version number as the cached one
    same_object = store.table("p")
    same_object.update({"name": "'again'"}, "true")  # the old cache would add its rows 3..9 here
    assert state(same_object) == {100: ("again", 0.0), 101: ("again", 0.0), 102: ("again", 0.0)}
    assert_verified(same_object)


def test_a_failed_catch_up_falls_back_to_the_files(keyed, store, monkeypatch):
    monkeypatch.setattr(headcache, "CATCH_UP_FILES", 0)
    keyed.update({"score": "1"}, "id = 1")
    keyed.update({"score": "2"}, "id = 2")  # builds the cache
    assert cached_tables(store) == [testing.prefix(keyed)]
    build = headcache.HeadCache._build

    def broken(self, key, record, plan):
        build(self, "elsewhere", record, plan)  # a table written, then a failure before it is put in place
        raise duckdb.IOException("disk full while catching up")

    monkeypatch.setattr(headcache.HeadCache, "_build", broken)
    keyed.update({"score": "3"}, "id = 3")
    assert cached_tables(store) == []
    assert state(keyed)[3] == ("n3", 3.0) and state(keyed)[2] == ("n2", 2.0) and len(state(keyed)) == 10
    assert_verified(keyed)


def test_turned_off_by_environment(keyed, store, monkeypatch):
    monkeypatch.setenv("LOGSTORE_HEAD_CACHE_ROWS", "0")
    for i in range(3):
        keyed.update({"score": str(i)}, f"id = {i}")
    assert cached_tables(store) == []


def test_user_sql_never_sees_it(keyed, store):
    keyed.update({"score": "1"}, "id = 1")
    keyed.update({"score": "2"}, "id = 2")
    assert cached_tables(store)
    names = store.sql("SELECT table_name FROM duckdb_tables()").fetchall()
    assert not [n for (n,) in names if n.startswith("logstore_head")]


def test_each_thread_has_its_own(keyed, store):
    import threading

    keyed.update({"score": "1"}, "id = 1")
    keyed.update({"score": "2"}, "id = 2")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(cached_tables(store)))
    thread.start()
    thread.join()
    assert seen == [[]] and cached_tables(store) == [testing.prefix(keyed)]


# --- two writers, random operations, against a dict model --------------------------------------------------------

operation = st.tuples(
    st.sampled_from(["a", "b"]),  # which writer (two Store objects on one path: each has its own cache)
    st.sampled_from(["update", "delete", "upsert", "append", "overwrite"]),
    st.integers(0, 30),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=14), catch_up=st.integers(0, 3))
def test_two_writers_random_operations(tmp_path_factory, ops, catch_up):
    root = tmp_path_factory.mktemp("hc") / "store"
    writers = {"a": logstore.init(root)}
    writers["a"].create_table("p", people(range(8)), key="id")
    writers["b"] = logstore.open(root)
    model = {i: (f"n{i}", i / 2) for i in range(8)}
    old = headcache.CATCH_UP_FILES
    headcache.CATCH_UP_FILES = catch_up
    try:
        for who, kind, n in ops:
            t = writers[who].table("p")
            model = apply(t, kind, n, model)
            assert state(t) == model, (who, kind, n)
    finally:
        headcache.CATCH_UP_FILES = old
    assert_verified(writers["a"].table("p"))


def apply(t, kind: str, n: int, model: dict) -> dict:
    model = dict(model)
    if kind == "update":
        t.update({"score": f"score + {n}", "name": f"name || '{n}'"}, f"id % 3 = {n % 3}")
        return {k: (v[0] + str(n), v[1] + n) if k % 3 == n % 3 else v for k, v in model.items()}
    if kind == "delete":
        t.delete(f"id = {n} OR id = {n + 1}")
        return {k: v for k, v in model.items() if k not in (n, n + 1)}
    if kind == "upsert":
        t.upsert(people([n, n + 40], names=[f"u{n}", f"u{n + 40}"], scores=[float(n), 1.0]))
        model.update({n: (f"u{n}", float(n)), n + 40: (f"u{n + 40}", 1.0)})
        return model
    if kind == "append":
        fresh = max(model, default=0) + 100
        t.append(people([fresh]))
        model[fresh] = (f"n{fresh}", fresh / 2)
        return model
    keep = sorted(model)[::2]
    t.overwrite(people(keep, names=[model[k][0] for k in keep], scores=[model[k][1] for k in keep]))
    return {k: model[k] for k in keep}


# --- key lookups: update/delete with `key IN (<many ids>)` read only the rows holding those keys -------------------


def in_list(ids) -> str:
    ids = sorted(set(ids))
    return f"id IN ({', '.join(str(i) for i in ids)})"


def lookups(store) -> list[str]:
    return sorted(testing.head_cache(store)._lookups)


def test_key_lookup_built_by_the_second_in_list_operation_and_used_after(keyed, store, monkeypatch):
    keyed.update({"score": "score + 1"}, in_list(range(0, 200, 3)))
    assert lookups(store) == []
    keyed.delete(in_list(range(1, 200, 3)))
    assert lookups(store) == [testing.prefix(keyed)]
    # from now on the operations read the rows the lookup finds: were the state read, this would fail
    monkeypatch.setattr(headcache.HeadCache, "state_plan", lambda *a: pytest.fail("read the whole head state"))
    keyed.update({"name": "name || '!'"}, in_list(range(0, 100)))
    keyed.delete(in_list(range(5, 300, 2)))
    model = {i: (f"n{i}!", i / 2 + 1) for i in (0, 3, 6)} | {i: (f"n{i}!", i / 2) for i in (2, 8)}
    assert state(keyed) == model
    assert_verified(keyed)


def test_key_lookup_never_reads_a_damaged_change_file(keyed, store):
    """A change file of another writer fails its check: the lookup is dropped (and rebuilt from the head's plan,
    which reads the snapshot standing in for that version) instead of serving rows from the damaged file."""
    keyed.update({"score": "0"}, in_list(range(100)))
    keyed.update({"score": "1"}, in_list(range(100)))
    assert lookups(store) == [testing.prefix(keyed)]
    other = logstore.open(store.path).table("p")  # another writer: the lookup reads its change file
    other.update({"score": "2"}, in_list(range(3, 100)))
    assert other.snapshots()[-1] == 3  # 97 change rows on 10 rows: due
    path = testing.log(keyed).read(3).files[0].path
    with open(testing.storage(keyed).url(testing.files(keyed).path(path)), "ab") as f:
        f.write(b"XXXX")  # its size is no longer the recorded one
    keyed.update({"score": "score + 1"}, in_list(range(5, 100)))
    assert state(keyed) == {i: (f"n{i}", 1.0 if i < 3 else 2.0 if i < 5 else 3.0) for i in range(10)}
    assert testing.head_cache(store)._lookups[testing.prefix(keyed)].record.version == 3


lookup_operation = st.tuples(
    st.sampled_from(["a", "a", "b"]),  # which writer (two Store objects on one path: each has its own head cache)
    st.sampled_from(["update", "update", "delete", "delete", "upsert", "append", "overwrite", "restore"]),
    st.lists(st.integers(0, 90), min_size=1, max_size=80),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(lookup_operation, min_size=4, max_size=16), limit=st.sampled_from([0, 40, 100_000]))
def test_key_lookup_random_operations(tmp_path_factory, ops, limit):
    """Updates and deletes by long IN lists of keys (found through the lookup once built), interleaved with every
    other kind of write by two writers, against a dict model; the fingerprints recorded must match the files."""
    root = tmp_path_factory.mktemp("lookup") / "store"
    writers = {"a": logstore.init(root)}
    writers["a"].create_table("p", people(range(60)), key="id")
    writers["b"] = logstore.open(root)
    model = {i: (f"n{i}", i / 2) for i in range(60)}
    versions = [dict(model)]
    old = headcache.LOOKUP_MAX_CHANGE_ROWS
    headcache.LOOKUP_MAX_CHANGE_ROWS = limit  # 0: rebuilt at every use; 40: now and then; else never
    try:
        for who, kind, ids in ops:
            t = writers[who].table("p")
            ids = sorted(set(ids) | set(range(200, 264)))  # always long enough to be an IN list (ids >= 200: absent)
            if kind == "update":
                t.update({"score": "score + 1", "name": "name || 'u'"}, in_list(ids))
                model = {k: (v[0] + "u", v[1] + 1) if k in ids else v for k, v in model.items()}
            elif kind == "delete":
                t.delete(in_list(ids))
                model = {k: v for k, v in model.items() if k not in ids}
            elif kind == "upsert":
                t.upsert(people(ids[:5], names=[f"s{i}" for i in ids[:5]], scores=[1.0] * len(ids[:5])))
                model.update({i: (f"s{i}", 1.0) for i in ids[:5]})
            elif kind == "append":
                fresh = [i for i in ids[:3] if i not in model] or [max(model, default=0) + 1000]
                t.append(people(fresh))
                model.update({i: (f"n{i}", i / 2) for i in fresh})
            elif kind == "overwrite":
                keep = sorted(model)[::2]
                t.overwrite(people(keep, names=[model[k][0] for k in keep], scores=[model[k][1] for k in keep]))
                model = {k: model[k] for k in keep}
            else:
                back = ids[0] % len(versions)
                t.restore(version=back)
                model = dict(versions[back])
            versions.append(dict(model))
            assert state(t) == model, (who, kind, ids)
    finally:
        headcache.LOOKUP_MAX_CHANGE_ROWS = old
    assert_verified(writers["a"].table("p"))


def move(table, pairs) -> None:
    """A merge on the key moving key a to b for each (a, b) (found through the lookup: `on` is the integer key)."""
    source = pa.table({"id": pa.array([a for a, _ in pairs], pa.int64()), "to": pa.array([b for _, b in pairs], pa.int64())})
    table.merge(source, on="id").when_matched_update(set={"id": "source.to"}).execute()


def test_key_lookup_follows_keys_that_move_between_rows(keyed, store):
    """The lookup's index of change rows (numpy: per row id its newest change row, per key the row ids whose change
    rows held it) when keys move: merges changing keys, a key deleted and appended again under a new row id, and a
    key several row ids held at different versions; every lookup against a dict model."""
    keyed.update({"score": "0"}, in_list(range(100)))
    keyed.update({"score": "1"}, in_list(range(100)))  # the lookup is built
    assert lookups(store) == [testing.prefix(keyed)]
    model = {i: (f"n{i}", 1.0) for i in range(10)}
    move(keyed, [(i, i + 100) for i in range(5)])  # keys 0..4 move to 100..104
    model |= {i + 100: model.pop(i) for i in range(5)}
    keyed.append(people([0, 1]))  # keys 0 and 1 again, in new row ids
    model |= {0: ("n0", 0.0), 1: ("n1", 0.5)}
    keyed.delete(in_list([1, 101] + list(range(300, 400))))
    del model[1], model[101]
    with pytest.raises(logstore.KeyViolationError):
        move(keyed, [(102, 5)])  # row 5 holds key 5
    move(keyed, [(103, 1), (104, 101)])  # keys deleted above: free again
    model |= {1: model.pop(103), 101: model.pop(104)}
    move(keyed, [(1, 4), (101, 1)])  # key 1 moves on, key 101's row takes it
    model |= {4: model.pop(1)}
    model |= {1: model.pop(101)}
    assert state(keyed) == model
    touched = [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
    keyed.update({"name": "name || '!'", "score": "score + 1"}, in_list(touched + list(range(300, 400))))
    model = {k: (v[0] + "!", v[1] + 1) if k in touched else v for k, v in model.items()}
    assert state(keyed) == model
    assert testing.head_cache(store)._lookups[testing.prefix(keyed)].change_rows > 0  # served by the change rows
    assert_verified(keyed)
