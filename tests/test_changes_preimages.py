"""Format 5: delete rows hold the deleted rows' values (their pre-images), so the change feed of deletes is a scan of
the change files; format-4 stores stay readable and writable (their deletes' pre-images are looked up as before).

tests/data/store_format_v4.tar.gz is a store written by logstore at commit 60ad63c (format 4): the script that made it
(make.py) and what that release read from it (expected.json: every version's rows, every change feed and every diff)
are inside the archive.
"""

from __future__ import annotations

import glob
import json
import tarfile
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_changes import ChangeModel, without_time

import logstore
from logstore import CorruptionError, codec, planner, testing

from test_model import KEYED_SCHEMA, KEYLESS_SCHEMA, as_table, assignments, keyed_rows, keyless_rows, predicates

ARCHIVE = Path(__file__).parent / "data" / "store_format_v4.tar.gz"


@pytest.fixture
def v4(tmp_path):
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path / "store", json.loads((tmp_path / "expected.json").read_text())


def marker_version(root) -> int:
    return json.loads((Path(root) / "logstore.json").read_text())["format_version"]


def no_time(rows):
    return [{k: v for k, v in r.items() if k != "_timestamp"} for r in rows]


def raw_record(root, table, version) -> dict:
    return json.loads((Path(root) / "tables" / table / "_log" / f"{version:020d}.json").read_text())


def delete_rows(root, table):
    """Every delete row stored in the table's change and compacted files."""
    parts = [pq.read_table(p) for d in ("data", "compacted") for p in glob.glob(f"{root}/tables/{table}/{d}/*.parquet")]
    rows = pa.concat_tables(parts, promote_options="default")
    return rows.filter(pa.compute.equal(rows["_op"], "D")).to_pylist()


def test_a_format_4_store_reads_as_that_release_read_it(v4):
    root, expected = v4
    store = logstore.open(root)
    for name, facts in expected.items():
        t = store.table(name)
        for v, rows in facts["versions"].items():
            assert t.read(version=int(v)).to_pylist() == rows, (name, v)
        for span, rows in facts["changes"].items():
            a, b = map(int, span.split("-"))
            assert no_time(t.changes(a, b).to_pylist()) == rows, (name, span)
        for span, rows in facts["diff"].items():
            a, b = map(int, span.split("-"))
            assert t.diff(a, b).to_pylist() == rows, (name, span)
    assert marker_version(root) == 4  # reading changes nothing


def test_a_format_4_store_stays_writable_and_its_first_delete_raises_the_marker(v4):
    root, expected = v4
    t = logstore.open(root).table("events")
    old = t.version
    t.update(set={"score": "score + 1"}, where="id = 3")
    assert marker_version(root) == 4  # an update stores no pre-image: nothing a format-4 logstore would misread
    t.delete(where="id IN (3, 4)")
    assert marker_version(root) == 5
    assert raw_record(root, "events", t.version)["preimages"] is True
    assert all("preimages" not in raw_record(root, "events", v) for v in range(t.version))
    # the feed across the boundary: old deletes looked up, the new one read from its rows
    before = {r["id"]: r for r in t.read(version=t.version - 1).to_pylist()}
    new = no_time(t.changes(t.version, t.version).to_pylist())
    assert [r["_change_type"] for r in new] == ["delete", "delete"]
    assert [{k: r[k] for k in ("id", "name", "score")} for r in new] == [before[3], before[4]]
    for a in range(old + 1):
        got = no_time(t.changes(a, t.version).to_pylist())
        upto_old = expected["events"]["changes"][f"{a}-{old}"]
        assert got == upto_old + no_time(t.changes(old + 1, t.version).to_pylist())
    assert t.verify(full=True).ok


def test_delete_rows_hold_their_pre_images_and_the_feed_looks_nothing_up(store, monkeypatch):
    t = store.create_table("d", pa.table({"id": [1, 2, 3, 4], "s": ["a", "b", "c", "d"], "f": [1.5, None, 3.5, 4.5]}), key="id")
    t.update(set={"s": "s || '!'"}, where="id >= 3")
    t.delete(where="id IN (2, 3)")
    assert marker_version(store.path) == 5
    assert sorted((r["_row_id"], r["id"], r["s"], r["f"]) for r in delete_rows(store.path, "d")) == [(1, 2, "b", None), (2, 3, "c!", 3.5)]
    expected = t.changes(2).to_pylist()

    def no_lookup(*args, **kwargs):
        raise AssertionError("the feed of a format-5 delete needs no lookup")

    monkeypatch.setattr(planner, "lookup_plan", no_lookup)
    assert t.changes(2).to_pylist() == expected
    assert [(r["id"], r["s"], r["f"], r["_change_type"]) for r in expected] == [(2, "b", None, "delete"), (3, "c!", 3.5, "delete")]


def test_compaction_keeps_the_pre_images(store):
    t = store.create_table("c", pa.table({"id": list(range(40)), "v": [f"x{i}" for i in range(40)]}), key="id")
    for i in range(12):
        t.delete(where=f"id = {i}")
        t.update(set={"v": "v || '.'"}, where=f"id = {39 - i}")
    feeds = {(a, b): t.changes(a, b).to_pylist() for a in range(1, t.version + 1, 3) for b in range(a, t.version + 1, 4)}
    t.compact()  # (commits compact full blocks on their own already)
    t.vacuum(dry_run=False, older_than=0)
    assert glob.glob(f"{store.path}/tables/c/compacted/*.parquet")
    held = delete_rows(store.path, "c")
    assert sorted(r["id"] for r in held) == list(range(12)) and all(r["v"] == f"x{r['id']}" for r in held)
    for (a, b), rows in feeds.items():
        assert t.changes(a, b).to_pylist() == rows, (a, b)
    assert t.verify(full=True).ok


def test_purge_erases_the_pre_images_of_purged_rows(store):
    t = store.create_table("p", pa.table({"id": [1, 2, 3], "email": ["a@x.org", "secret@x.org", "c@x.org"]}), key="id")
    t.delete(where="id = 2")
    t.delete(where="id = 3")
    assert "secret@x.org" in [r["email"] for r in delete_rows(store.path, "p")]
    t.purge(where="email = 'secret@x.org'")
    for path in glob.glob(f"{store.path}/tables/p/**/*.parquet", recursive=True):
        assert "secret@x.org" not in json.dumps(pq.read_table(path).to_pylist()), path
    assert [r["email"] for r in t.changes(1).to_pylist()] == ["c@x.org"]
    assert t.verify(full=True).ok


def test_purge_finds_a_row_whose_only_image_left_is_a_pre_image(store):
    """A row whose insert is gone from the files (here removed by hand, as an expired version's files would be once
    vacuumed, were the snapshots gone too): the purge still finds it by its pre-image and erases it."""
    t = store.create_table("q", pa.table({"id": [1, 2], "email": ["keep@x.org", "gone@x.org"]}), key="id")
    t.delete(where="id = 2")
    files = testing.files(t)
    from logstore import purge as purge_module

    inv = purge_module._inventory(files, t.version)
    inv.change.pop(files.log.read(0).files[0].path)  # the insert's file is not looked at
    con = files.connection().cursor()
    found = purge_module._lineage(files, con, inv, "email = 'gone@x.org'", files.log.read(0).columns)
    assert found.tolist() == [1]


def replace_delete_file(root, table, version, change):
    """Replace version `version`'s change file by another valid Parquet file whose delete rows hold other values."""
    record = raw_record(root, table, version)
    path = Path(root) / "tables" / table / record["files"][0]["path"]
    rows = pq.read_table(path)
    rows = rows.set_column(rows.schema.get_field_index("v"), "v", pa.array([change] * rows.num_rows))
    pq.write_table(rows, path, compression="zstd")
    return record, path


def test_a_replaced_change_file_with_other_pre_images_is_caught(store):
    t = store.create_table("r", pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), key="id")
    t.delete(where="id = 2")
    replace_delete_file(store.path, "r", 1, "forged")
    fresh = logstore.open(store.path).table("r")
    with pytest.raises(CorruptionError):
        fresh.changes(1)
    assert not fresh.verify(full=True).ok


def test_a_forged_pre_image_with_a_re_sealed_record_is_caught_by_verify(store):
    """An attacker who rewrites the record to match the replaced file (size, SHA-256, checksum) passes the file
    checks; the fingerprints do not add up: verify reports the version."""
    import hashlib

    t = store.create_table("f", pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), key="id")
    t.delete(where="id = 2")
    record, path = replace_delete_file(store.path, "f", 1, "forged")
    data = path.read_bytes()
    record["files"][0].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    record.pop("checksum", None)
    log = Path(store.path) / "tables" / "f" / "_log" / f"{1:020d}.json"
    log.write_bytes(codec.encode(record))
    fresh = logstore.open(store.path).table("f")
    assert fresh.read().to_pylist() == [{"id": 1, "v": "a"}, {"id": 3, "v": "c"}]  # reads are unaffected
    report = fresh.verify(full=True)
    assert not report.ok
    assert any(p.kind == "fingerprint" and p.version == 1 and "pre-images" in p.message for p in report.problems)


# --- model: longer histories with many deletes, compactions, vacuums, snapshots and purges ---------------------------


def _purge_model(model, pred) -> set:
    """Remove from every version every row id one of whose images matches `pred` (purge.py's lineage)."""
    ids = {i for state in model.states for i, r in state.items() if pred(r)} | {i for i, r in model.rows.items() if pred(r)}
    for state, writes in zip(model.states, model.writes):
        for i in ids:
            state.pop(i, None)
            writes.pop(i, None)
    model.rows = {i: r for i, r in model.rows.items() if i not in ids}
    model.written = {i: w for i, w in model.written.items() if i not in ids}
    return ids


def _apply(data, t, model, schema, *, keyed: bool, steps: int) -> None:
    kinds = ["append", "update", "delete", "delete", "delete", "snapshot", "compact", "purge"]
    for step in range(steps):
        kind = data.draw(st.sampled_from(kinds), label=f"op {step}")
        if kind == "append":
            batch = data.draw(keyed_rows(unique=False) if keyed else keyless_rows(), label="rows")
            if model.append(batch):
                model.commit(t.append(as_table(batch, schema)))
        elif kind == "update":
            sets = {c: e for c, e in data.draw(assignments(), label="set").items() if not (keyed and c == "k")}
            sql, pred = data.draw(predicates(keyed), label="where")
            model.update(sets, pred)
            model.commit(t.update(set={c: e[0] for c, e in sets.items()}, where=sql))
        elif kind == "delete":
            sql, pred = data.draw(predicates(keyed), label="where")
            model.delete(pred)
            model.commit(t.delete(where=sql))
        elif kind == "snapshot":
            t.snapshot()
        elif kind == "compact":
            t.compact()
            t.vacuum(dry_run=False, older_than=0)
        elif kind == "purge":
            sql, pred = data.draw(predicates(keyed), label="purge where")
            if sql is None:
                continue
            purged = _purge_model(model, pred)
            done = t.purge(where=sql)
            assert (done is None) == (not purged)
            if done is not None:
                model.commit(done)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_pre_images_match_the_model_through_compactions_and_purges(no_fsync, data):
    keyed = data.draw(st.booleans(), label="keyed")
    schema = KEYED_SCHEMA if keyed else KEYLESS_SCHEMA
    model = ChangeModel(keyed=keyed, columns=tuple(schema.names))
    with tempfile.TemporaryDirectory() as tmp:
        store = logstore.init(Path(tmp) / "store")
        rows = data.draw(keyed_rows() if keyed else keyless_rows(), label="initial rows")
        t = store.create_table("t", as_table(rows, schema), schema=schema, key="k" if keyed else None, properties={"snapshot_commits": 3})
        for r in rows:
            model.insert(r)
        model.commit(t.history(limit=1)[0])
        _apply(data, t, model, schema, keyed=keyed, steps=data.draw(st.integers(8, 14), label="steps"))
        latest = len(model.states) - 1
        for start in range(latest + 1):
            for end in sorted({start, min(start + 3, latest), latest}):
                assert without_time(t.changes(start, end).to_pylist()) == model.changes(start, end), f"changes({start}, {end})"
            assert t.diff(start, latest).to_pylist() == model.diff(start, latest), f"diff({start}, {latest})"
        assert t.verify(full=True).ok
