"""Purge (logstore/purge.py): a row lineage removed from every version, nothing else changed, the values nowhere.

The backbone is a model test: random histories in which a marker value is inserted, updated to, updated away from,
deleted and re-inserted across versions, with snapshots and compactions in between; then a purge of the marker.
Every version must equal the model's version minus the purged lineage (every row id whose image ever held the
marker), the change feed must be the old feed minus those row ids (so the other rows keep their ids), verify must
pass with every fingerprint, and no file under the store (Parquet decoded, JSON parsed, zstd checkpoints
decompressed) may hold the marker.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
import logstore.storage
from logstore import purge as purge_module

MARKER = "jane.doe@example.org"
SCHEMA = pa.schema([("id", pa.int64()), ("email", pa.string()), ("n", pa.int64())])

FAST = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
STRESS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setattr(logstore.storage, "_fsync", lambda path: None)


def rows(items) -> pa.Table:
    return pa.table({"id": [i for i, _e, _n in items], "email": [e for _i, e, _n in items], "n": [n for _i, _e, n in items]}, schema=SCHEMA)


def marker_files(root) -> list[str]:
    """Every file under `root` whose content holds MARKER: raw bytes, decoded Parquet, parsed JSON, zstd payloads."""
    found = []
    needle = MARKER.encode()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            data = path.read_bytes()
            texts = [data]
            if name.endswith(".parquet"):
                texts.append(json.dumps(pq.read_table(path).to_pylist(), default=str).encode())
            if name.endswith(".zst"):
                texts.append(zstandard.ZstdDecompressor().decompress(data))
            if name.endswith(".json"):
                texts.append(json.dumps(json.loads(data)).encode())
            if any(needle in t for t in texts):
                found.append(str(path.relative_to(root)))
    return found


# --- the model test --------------------------------------------------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=4)),
        st.tuples(st.just("to_marker"), st.integers(0, 30)),
        st.tuples(st.just("from_marker"), st.integers(0, 9)),
        st.tuples(st.just("bump_marker"), st.integers(1, 5)),
        st.tuples(st.just("delete"), st.integers(0, 30)),
        st.tuples(st.just("upsert"), st.integers(0, 30), st.booleans()),
        st.tuples(st.just("snapshot"), st.just(0)),
        st.tuples(st.just("compact"), st.just(0)),
    ),
    min_size=3,
    max_size=14,
)


class Model:
    """Versions as {id: (identity, email, n)}; an identity is a row id: new on insert, kept by updates."""

    def __init__(self):
        self.versions: list[dict] = []
        self.next_identity = 0

    def commit(self, state: dict) -> None:
        self.versions.append(dict(state))

    def new(self) -> int:
        self.next_identity += 1
        return self.next_identity

    def purged(self) -> set[int]:
        return {ident for state in self.versions for ident, email, _n in state.values() if email == MARKER}

    def expected(self, v: int) -> list[tuple]:
        gone = self.purged()
        return sorted((k, e, n) for k, (ident, e, n) in self.versions[v].items() if ident not in gone)


def _run(t, model: Model, state: dict, op) -> None:
    kind = op[0]
    if kind == "append":
        fresh = {}
        for k, marked in op[1]:
            if k not in state and k not in fresh:
                fresh[k] = (MARKER if marked else f"user{k}@example.com", k)
        if not fresh:
            return
        t.append(rows([(k, e, n) for k, (e, n) in fresh.items()]))
        for k, (e, n) in fresh.items():
            state[k] = (model.new(), e, n)
    elif kind == "to_marker":
        k = op[1]
        t.update({"email": f"'{MARKER}'"}, f"id = {k}", message=f"set {k} to {MARKER}")
        if k in state:
            state[k] = (state[k][0], MARKER, state[k][2])
    elif kind == "from_marker":
        t.update({"email": f"'moved{op[1]}@example.com'"}, f"email = '{MARKER}'")
        for k, (ident, e, n) in list(state.items()):
            if e == MARKER:
                state[k] = (ident, f"moved{op[1]}@example.com", n)
    elif kind == "bump_marker":
        t.update({"n": f"n + {op[1]}"}, f"email = '{MARKER}'", metadata={"why": f"bump {MARKER}"})
        for k, (ident, e, n) in list(state.items()):
            if e == MARKER:
                state[k] = (ident, e, n + op[1])
    elif kind == "delete":
        t.delete(f"id = {op[1]}")
        state.pop(op[1], None)
    elif kind == "upsert":
        k, marked = op[1], op[2]
        email = MARKER if marked else f"up{k}@example.com"
        before = state.get(k)
        t.upsert(rows([(k, email, 100 + k)]))
        if before is None:
            state[k] = (model.new(), email, 100 + k)
        else:
            state[k] = (before[0], email, 100 + k)
    elif kind == "snapshot":
        t.snapshot()
        return
    elif kind == "compact":
        t.compact()
        return
    model.commit(state)


def _check_model_purge(ops) -> None:
    root = Path(tempfile.mkdtemp(prefix="purge-model-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            store = logstore.init(root)
            state = {k: (k + 1000, f"user{k}@example.com", k) for k in range(5)}
            state[5] = (1005, MARKER, 5)
            t = store.create_table("t", rows([(k, e, n) for k, (_i, e, n) in sorted(state.items())]), key="id", properties={"snapshot_commits": 4})
            model = Model()
            model.commit(state)
            for op in ops:
                _run(t, model, state, op)  # a write that changes nothing still commits a version
            assert t.version == len(model.versions) - 1
            feed = t.changes(0)
            head = t.version
            purged = t.purge(where=f"email = '{MARKER}'", message="erasure request")
            assert purged is not None and purged.operation == "PURGE" and purged.version == head + 1
            fresh = logstore.open(root).table("t")
            for v in range(head + 1):
                got = sorted(tuple(r.values()) for r in fresh.read(version=v).to_pylist())
                assert got == model.expected(v), f"version {v}"
            assert sorted(tuple(r.values()) for r in fresh.read().to_pylist()) == model.expected(head)
            gone_ids = pc.unique(feed.filter(pc.equal(feed["email"], MARKER))["_row_id"])
            kept = feed.filter(pc.invert(pc.is_in(feed["_row_id"], gone_ids)))
            after = fresh.changes(0, head)
            assert after.sort_by([("_version", "ascending"), ("_row_id", "ascending"), ("_change_type", "ascending")]).equals(
                kept.sort_by([("_version", "ascending"), ("_row_id", "ascending"), ("_change_type", "ascending")])
            )
            report = fresh.verify(full=True)
            assert report.ok, report.problems
            fresh.vacuum(dry_run=False, older_than=0)
            assert marker_files(root) == []
            fresh.append(rows([(999, "later@example.com", 1)]))  # later commits work
            fresh.update({"n": "n + 1"}, "id = 999")
            assert fresh.verify(full=True).ok
    finally:
        shutil.rmtree(root, ignore_errors=True)


@FAST
@given(OPS)
def test_purge_model(ops):
    _check_model_purge(ops)


@pytest.mark.stress
@STRESS
@given(OPS)
def test_purge_model_stress(ops):
    _check_model_purge(ops)


# --- focused tests -------------------------------------------------------------------------------------------------


def _history(store, *, compact=True):
    t = store.create_table("u", rows([(1, "a@x.org", 1), (2, MARKER, 2), (3, "c@x.org", 3)]), key="id", message=f"import with {MARKER}")
    t.update({"email": f"'{MARKER}'"}, "id = 3", message="typo")  # row 3 matches later: its whole lineage goes
    t.append(rows([(4, "d@x.org", 4)]))
    t.delete(f"email = '{MARKER}' AND id = 2")
    t.upsert(rows([(2, MARKER, 20)]))  # re-inserted: a new row id, matching too
    for i in range(12):
        t.append(rows([(100 + i, f"e{i}@x.org", i)]))
    t.tag("before")
    t.snapshot()
    if compact:
        t.compact()
    return t


def test_purge_rewrites_only_files_with_rows_and_redacts_records(store):
    t = _history(store)
    before = {v: t.read(version=v) for v in range(t.version + 1)}
    dry = t.purge(where=f"email = '{MARKER}'", dry_run=True)
    assert isinstance(dry, logstore.PurgeReport) and dry.rows == 3 and dry.version is None
    assert t.version == 16 and dry.files  # nothing happened
    files_before = {f.name for f in Path(t._storage.root).rglob("*.parquet")}
    commit = t.purge(where=f"email = '{MARKER}'", message="erasure 4711", author="dpo")
    assert commit.operation == "PURGE" and commit.author == "dpo" and commit.message == "erasure 4711"
    assert commit.parameters["rows"] == 3 and len(commit.parameters["predicate_sha256"]) == 64
    assert MARKER not in json.dumps(commit.parameters)
    for v, table in before.items():
        expected = table.filter(pc.invert(pc.is_in(table["id"], pa.array([2, 3]))))
        assert t.read(version=v).equals(expected), v
    assert t.read(tag="before").num_rows == before[16].num_rows - 2
    history = {c.version: c for c in t.history()}
    assert history[1].parameters == {"redacted": True} and history[0].message == "[redacted by purge]"
    assert history[4].operation == "UPSERT" and history[17].operation == "PURGE"
    root = t._storage.root
    untouched = [p for p in Path(root).rglob("data/*.parquet") if p.name in files_before]
    assert untouched, "files without the rows are kept as they were"
    assert marker_files(root) == []
    assert t.verify(full=True).ok
    assert "redacted" not in json.dumps(t._log.read_raw(5)["parameters"])  # an append of other rows keeps its record
    assert t._log.read_raw(1)["purged"] == [17]


def test_purge_keeps_other_rows_ids_and_diff(store):
    t = _history(store, compact=False)
    feed = t.changes(0)
    t.purge(where="id = 3")
    after = t.changes(0, 16)
    ids_3 = pc.unique(feed.filter(pc.equal(feed["id"], 3))["_row_id"])
    assert after.num_rows == feed.num_rows - feed.filter(pc.is_in(feed["_row_id"], ids_3)).num_rows
    assert 3 not in t.diff(0, 16)["id"].to_pylist()
    assert 3 not in t.changes(0)["id"].to_pylist()


def test_purge_predicate_errors_and_nothing_matched(store):
    t = _history(store, compact=False)
    head = t.version
    with pytest.raises(logstore.InvalidExpressionError, match="nope"):
        t.purge(where="nope = 1")
    with pytest.raises(logstore.InvalidExpressionError):
        t.purge(where="1; DROP TABLE x")
    with pytest.raises(logstore.InvalidExpressionError):
        t.purge(where="id IN (SELECT 1)")
    assert t.purge(where="email = 'nobody@x.org'") is None
    assert t.version == head  # no version


def test_purge_then_writes_compaction_snapshots_and_second_purge(store):
    t = _history(store)
    t.update({"n": "n * 2"}, "id >= 100")  # head cache built, then a purge, then more writes
    t.update({"n": "n + 1"}, "id >= 100")
    t.purge(where=f"email = '{MARKER}'")
    t.upsert(rows([(3, "new3@x.org", 3)]))  # a new row with the purged key: new row id
    t.update({"n": "n + 1"}, "id IN (1, 3, 4)")
    for i in range(10):
        t.append(rows([(200 + i, "x", i)]))
    t.compact()
    t.snapshot()
    t.purge(where="id = 4")
    assert t.read(where="id = 3").to_pylist() == [{"id": 3, "email": "new3@x.org", "n": 4}]
    assert t.read(where="id = 4").num_rows == 0 and t.read(version=3, where="id = 4").num_rows == 0
    assert t.verify(full=True).ok
    t.vacuum(dry_run=False, older_than=0)
    assert t.verify(full=True).ok and marker_files(t._storage.root) == []


def test_purge_seen_by_another_handle(store, tmp_path):
    t = _history(store, compact=False)
    other = logstore.open(t._storage.root).table("u")
    assert other.read(version=2).num_rows == 4  # caches records of the old files
    t.purge(where=f"email = '{MARKER}'")
    assert other.read(version=2).num_rows == 2
    other.append(rows([(500, "z", 1)]))
    assert t.read().num_rows == other.read().num_rows


def test_purge_interrupted_after_commit_is_finished_by_next_reader(store, monkeypatch):
    t = _history(store)
    before = {v: t.read(version=v) for v in range(t.version + 1)}
    calls = {"n": 0}
    real_put = t._storage.put

    def put(path, data):  # state, head hint, two record rewrites, then the process dies
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        return real_put(path, data)

    monkeypatch.setattr(t._storage, "put", put)
    with pytest.raises(KeyboardInterrupt):
        t.purge(where=f"email = '{MARKER}'")
    monkeypatch.undo()
    root = t._storage.root
    rewritten = [v for v in range(18) if "purged" in json.loads((root / "tables/u/_log" / f"{v:020d}.json").read_text())]
    assert 0 < len(rewritten) < 17  # half rolled forward
    purge_module.forget()  # as a new process
    fresh = logstore.open(root).table("u")
    for v, table in before.items():
        expected = table.filter(pc.invert(pc.is_in(table["id"], pa.array([2, 3]))))
        assert fresh.read(version=v).equals(expected), v
    assert fresh.verify(full=True).ok
    fresh.vacuum(dry_run=False, older_than=0)
    assert marker_files(root) == []


def test_purge_on_object_storage(s3_server, s3_url):
    store = logstore.init(s3_url, storage_options=s3_server.options())
    t = _history(store)
    before = {v: t.read(version=v) for v in range(t.version + 1)}
    t.purge(where=f"email = '{MARKER}'")
    fresh = logstore.open(s3_url, storage_options=s3_server.options()).table("u")
    for v, table in before.items():
        assert fresh.read(version=v).equals(table.filter(pc.invert(pc.is_in(table["id"], pa.array([2, 3]))))), v
    assert fresh.verify(full=True).ok
    storage = fresh._storage
    for directory in ("data", "compacted", "snapshots", "_log", "_snapshots", "_compactions"):
        for name in storage.list(f"tables/u/{directory}"):
            data = storage.read(f"tables/u/{directory}/{name}")
            if name.endswith(".parquet"):
                data += json.dumps(pq.read_table(pa.BufferReader(data)).to_pylist(), default=str).encode()
            assert MARKER.encode() not in data, name


def test_vacuum_keeps_files_of_a_pending_purge(store, monkeypatch):
    t = _history(store, compact=False)
    real = t._storage.put_if_absent
    seen = {}

    def put_if_absent(path, data):  # the PURGE record is about to be published: vacuum runs now
        if path.endswith(f"{t.version + 1:020d}.json") and "report" not in seen:
            seen["pending"] = purge_module.pending_files(t._files)
            seen["report"] = logstore.open(t._storage.root).table("u").vacuum(dry_run=False, older_than=0)
        return real(path, data)

    monkeypatch.setattr(t._storage, "put_if_absent", put_if_absent)
    t.purge(where="id = 1")
    assert seen["pending"] and not set(seen["report"].paths) & seen["pending"]
    assert t.verify(full=True).ok


def test_verify_checks_records_against_the_purge_that_rewrote_them(store):
    from logstore import codec, integrity

    t = _history(store, compact=False)
    t.purge(where=f"email = '{MARKER}'")
    assert t.verify().ok
    path = t._storage.root / "tables/u/_log" / f"{1:020d}.json"
    raw = json.loads(path.read_text())
    raw.pop("checksum")
    raw["num_rows"] += 1  # an attacker edits a rewritten record and reseals it
    path.write_bytes(codec.encode(raw))
    integrity.forget()
    problems = logstore.open(t._storage.root).table("u").verify().problems
    assert any(p.kind == "purge" and p.version == 1 and "num_rows" in p.message for p in problems)
    raw["num_rows"] -= 1
    raw["purged"] = [3]  # or points it at another version
    path.write_bytes(codec.encode(raw))
    problems = logstore.open(t._storage.root).table("u").verify().problems
    assert any(p.kind == "purge" and "no PURGE" in p.message for p in problems)
