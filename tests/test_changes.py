"""Change feed and diff (issue 6) against the in-memory model of the core property test.

Random histories (append, upsert, update, delete, overwrite, restore, snapshots) on keyed and keyless tables; for
every pair of versions, `changes` and `diff` must equal what the model derives from its per-version states. Plus
selectors (timestamps, tags), schema changes, errors, the CLI and SQL paths.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import testing
from logstore.changes import ChangeRangeError

from test_model import (
    KEYED_SCHEMA,
    KEYLESS_SCHEMA,
    Model,
    as_table,
    assignments,
    between,
    keyed_rows,
    keyless_rows,
    predicates,
)

HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=HEALTH)
STRESS = settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)


@dataclass
class ChangeModel(Model):
    """The core model, with what the change feed and the diff must say (an UPDATE changes only rows it alters)."""

    # what the change feed and the diff must say

    def changes(self, start: int, end: int) -> list[dict]:
        out = []
        for v in range(start, end + 1):
            before = self.states[v - 1] if v > 0 else {}
            after = self.states[v]
            for i in sorted(set(before) | set(after)):
                if i not in before:
                    out.append(self._feed(after[i], "insert", v, i))
                elif i not in after:
                    out.append(self._feed(before[i], "delete", v, i))
                elif before[i] != after[i]:
                    out.append(self._feed(before[i], "update_preimage", v, i))
                    out.append(self._feed(after[i], "update_postimage", v, i))
        return out

    def _feed(self, row, kind, v, i) -> dict:
        return {**{c: row[c] for c in self.columns}, "_change_type": kind, "_version": v, "_row_id": i}

    def diff(self, a: int, b: int) -> list[dict]:
        if self.keyed:
            old = {r["k"]: r for r in self.states[a].values()}
            new = {r["k"]: r for r in self.states[b].values()}
            match, values = "k", [c for c in self.columns if c != "k"]
        else:
            old, new = self.states[a], self.states[b]
            match, values = "_row_id", list(self.columns)
        out = []
        for m in sorted(set(old) | set(new)):
            o, n = old.get(m), new.get(m)
            changed = [c for c in values if o is not None and n is not None and o[c] != n[c]]
            if o is not None and n is not None and not changed:
                continue
            kind = "insert" if o is None else "delete" if n is None else "update"
            row = {"_change_type": kind, match: m}
            shown = n if n is not None else o
            for c in values:
                row[c] = shown[c]
                row[f"_old_{c}"] = o[c] if c in changed else None
            row["_changed_columns"] = changed
            out.append(row)
        return out


def apply_random_ops(data, t, model: ChangeModel, schema, *, keyed: bool, steps: int) -> None:
    kinds = ["append", "update", "delete", "overwrite", "restore", "snapshot", "tag"] + (["upsert", "upsert"] if keyed else [])
    for step in range(steps):
        kind = data.draw(st.sampled_from(kinds), label=f"op {step}")
        if kind == "append":
            batch = data.draw(keyed_rows(unique=False) if keyed else keyless_rows(), label="rows")
            if model.append(batch):
                model.commit(t.append(as_table(batch, schema)))
        elif kind == "upsert":
            batch = data.draw(keyed_rows(), label="rows")
            model.upsert(batch)
            model.commit(t.upsert(as_table(batch, schema)))
        elif kind == "update":
            sets = {c: e for c, e in data.draw(assignments(), label="set").items() if not (keyed and c == "k")}
            sql, pred = data.draw(predicates(keyed), label="where")
            model.update(sets, pred)
            model.commit(t.update(set={c: e[0] for c, e in sets.items()}, where=sql))
        elif kind == "delete":
            sql, pred = data.draw(predicates(keyed), label="where")
            model.delete(pred)
            model.commit(t.delete(where=sql))
        elif kind == "overwrite":
            batch = data.draw(keyed_rows(max_size=6) if keyed else keyless_rows(max_size=6), label="rows")
            if model.rows and data.draw(st.booleans(), label="reuse current rows"):
                current = [model.rows[i] for i in sorted(model.rows)]
                batch = data.draw(st.lists(st.sampled_from(current), max_size=len(current)), label="kept") + batch
                if keyed:
                    batch = list({r["k"]: r for r in reversed(batch)}.values())[::-1]
            model.overwrite(batch)
            model.commit(t.overwrite(as_table(batch, schema)))
        elif kind == "restore":
            v = data.draw(st.integers(0, len(model.states) - 1), label="restore version")
            model.restore(v)
            model.commit(t.restore(v))
        elif kind == "snapshot":
            t.snapshot()
        elif kind == "tag":
            v = data.draw(st.integers(0, len(model.states) - 1), label="tag version")
            t.tag(f"tag{step}", v)
            model.tags[f"tag{step}"] = v


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "_timestamp"} for r in rows]


def check_every_pair(t, model: ChangeModel, data) -> None:
    latest = len(model.states) - 1
    for start in range(latest + 1):
        for end in range(start, latest + 1):
            got = t.changes(start, end)
            assert without_time(got.to_pylist()) == model.changes(start, end), f"changes({start}, {end})"
            assert got.column("_timestamp").to_pylist() == [model.timestamps[v] for v in got.column("_version").to_pylist()]
    for a in range(latest + 1):
        for b in range(latest + 1):
            assert t.diff(a, b).to_pylist() == model.diff(a, b), f"diff({a}, {b})"
    # the same through moments and tags, for one random pair
    a = data.draw(st.integers(0, latest), label="a")
    b = data.draw(st.integers(a, latest), label="b")
    first = "@" + (model.timestamps[a - 1] + (model.timestamps[a] - model.timestamps[a - 1]) / 2).isoformat() if a else model.timestamps[0]
    assert without_time(t.changes(first, between(model, b)).to_pylist()) == model.changes(a, b)
    t.tag(f"pair-b{b}-{latest}", b)
    expected = model.diff(b, a)
    assert t.diff(f"pair-b{b}-{latest}", "@" + model.timestamps[a].isoformat()).to_pylist() == expected
    summary = t.diff_summary(b, a)
    kinds = [r["_change_type"] for r in expected]
    assert (summary.inserted, summary.updated, summary.deleted) == tuple(kinds.count(k) for k in ("insert", "update", "delete"))
    counts: dict = {}
    for r in expected:
        for c in r["_changed_columns"]:
            counts[c] = counts.get(c, 0) + 1
    assert summary.changed_columns == counts


def run_history(data, *, keyed: bool, max_steps: int = 5) -> None:
    schema = KEYED_SCHEMA if keyed else KEYLESS_SCHEMA
    model = ChangeModel(keyed=keyed, columns=tuple(schema.names))
    variant = data.draw(st.sampled_from([{}, {"snapshot_commits": 2}]), label="properties")
    with tempfile.TemporaryDirectory() as tmp:
        store = logstore.init(Path(tmp) / "store")
        rows = data.draw(keyed_rows() if keyed else keyless_rows(), label="initial rows")
        t = store.create_table("t", as_table(rows, schema), schema=schema, key="k" if keyed else None, properties=variant)
        for r in rows:
            model.insert(r)
        model.commit(t.history(limit=1)[0])
        apply_random_ops(data, t, model, schema, keyed=keyed, steps=data.draw(st.integers(1, max_steps), label="steps"))
        check_every_pair(t, model, data)


@SETTINGS
@given(data=st.data())
def test_keyed_changes_and_diff_match_model(no_fsync, data):
    run_history(data, keyed=True)


@SETTINGS
@given(data=st.data())
def test_keyless_changes_and_diff_match_model(no_fsync, data):
    run_history(data, keyed=False)


@pytest.mark.stress
@STRESS
@given(data=st.data())
def test_changes_and_diff_match_model_stress(no_fsync, data):
    run_history(data, keyed=data.draw(st.booleans(), label="keyed"), max_steps=10)


# --- by hand ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def people_table(store):
    t = store.create_table("p", pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "score": [1.0, 2.0, 3.0]}), key="id")
    t.update(set={"score": "score * 10"}, where="id = 2")  # 1
    t.update(set={"score": "score + 1"}, where="id = 2")  # 2
    t.delete(where="id = 3")  # 3
    t.append(pa.table({"id": [4], "name": ["d"], "score": [4.0]}))  # 4
    t.delete(where="id = 4")  # 5
    return t


def test_diff_is_net(people_table):
    t = people_table
    assert t.diff(0, 5).to_pylist() == [
        {"_change_type": "update", "id": 2, "name": "b", "_old_name": None, "score": 21.0, "_old_score": 2.0, "_changed_columns": ["score"]},
        {"_change_type": "delete", "id": 3, "name": "c", "_old_name": None, "score": 3.0, "_old_score": None, "_changed_columns": []},
    ]
    assert [r["_change_type"] for r in t.diff(5, 0).to_pylist()] == ["update", "insert"]
    assert t.diff(3, 3).num_rows == 0
    s = t.diff_summary(0, 5)
    assert (s.inserted, s.updated, s.deleted, s.changed_columns) == (0, 1, 1, {"score": 1})
    assert s.as_dict()["columns_added"] == []


def test_changes_feed_by_hand(people_table):
    got = people_table.changes(1, 5).to_pylist()
    assert [(r["_version"], r["_change_type"], r["id"], r["score"]) for r in got] == [
        (1, "update_preimage", 2, 2.0),
        (1, "update_postimage", 2, 20.0),
        (2, "update_preimage", 2, 20.0),
        (2, "update_postimage", 2, 21.0),
        (3, "delete", 3, 3.0),
        (4, "insert", 4, 4.0),
        (5, "delete", 4, 4.0),
    ]
    assert people_table.changes(5).column("_version").to_pylist() == [5]
    schema = people_table.changes(0, 0).schema
    assert schema.names == ["id", "name", "score", "_change_type", "_version", "_timestamp", "_row_id"]
    assert schema.field("_timestamp").type == pa.timestamp("us", tz="UTC")


def test_added_and_removed_columns(store):
    t = store.create_table("s", pa.table({"id": [1, 2], "x": [10, 20]}), key="id")
    t.append(pa.table({"id": [3], "x": [30], "extra": ["e"]}), schema_mode="merge")  # 1: adds `extra`
    t.upsert(pa.table({"id": [1], "x": [10], "extra": ["set"]}))  # 2: sets it on an old row
    d = t.diff(0, 2)
    assert json.loads(d.schema.metadata[b"logstore.diff"])["columns_added"] == ["extra"]
    assert d.to_pylist() == [
        {"_change_type": "update", "id": 1, "x": 10, "_old_x": None, "extra": "set", "_old_extra": None, "_changed_columns": ["extra"]},
        {"_change_type": "insert", "id": 3, "x": 30, "_old_x": None, "extra": "e", "_old_extra": None, "_changed_columns": []},
    ]
    feed = t.changes(0).to_pylist()
    assert [(r["_change_type"], r["id"], r["extra"]) for r in feed] == [
        ("insert", 1, None), ("insert", 2, None), ("insert", 3, "e"), ("update_preimage", 1, None), ("update_postimage", 1, "set")
    ]
    t.restore(0)  # 3: `extra` goes away again
    s = t.diff_summary(2, 3)
    assert (s.columns_added, s.columns_removed, s.inserted, s.updated, s.deleted) == ((), ("extra",), 0, 0, 1)
    assert t.diff_summary(3, 2).columns_added == ("extra",)
    feed = t.changes(3).to_pylist()
    assert [(r["_change_type"], r["id"], r["extra"]) for r in feed] == [("delete", 3, "e")]


def test_keyless_diff_matches_by_row_id(store):
    t = store.create_table("k", pa.table({"x": [1, 1, 2]}))
    t.update(set={"x": "x + 5"}, where="x = 2")
    assert t.diff(0, 1).to_pylist() == [{"_change_type": "update", "_row_id": 2, "x": 7, "_old_x": 2, "_changed_columns": ["x"]}]


def test_selectors_and_empty_windows(store):
    t = store.create_table("w", pa.table({"id": [1]}), key="id", timestamp="2021-01-01")
    t.append(pa.table({"id": [2]}), timestamp="2021-02-01")
    t.append(pa.table({"id": [3]}), timestamp="2021-03-01")
    t.tag("feb", 1)
    assert t.changes("@2021-01-15", "@2021-02-15").column("id").to_pylist() == [2]
    assert t.changes(dt.date(2021, 2, 1)).column("id").to_pylist() == [2, 3]  # a start moment: at or after it
    assert t.changes("feb", "2").column("id").to_pylist() == [2, 3]
    assert t.changes("@2021-02-02", "@2021-02-03").num_rows == 0  # no commit in the window
    assert t.diff("@2021-01-15", "feb").column("id").to_pylist() == [2]


@pytest.mark.parametrize(
    "call, error, text",
    [
        (lambda t: t.changes(2, 1), ChangeRangeError, "reversed"),
        (lambda t: t.changes("@2021-03-01", "@2021-01-01"), ChangeRangeError, "reversed"),
        (lambda t: t.changes(0, 7), logstore.VersionNotFoundError, "latest version is 2"),
        (lambda t: t.changes(-1), logstore.VersionNotFoundError, "latest version is 2"),
        (lambda t: t.diff(0, 3), logstore.VersionNotFoundError, "latest version is 2"),
        (lambda t: t.diff("nope", 1), logstore.TagNotFoundError, "nope"),
        (lambda t: t.diff(0, 1.5), logstore.InvalidInputError, "version selector"),
        (lambda t: t.diff(True, 1), logstore.InvalidInputError, "version selector"),
        (lambda t: t.diff_summary(0, "@2020-01-01"), logstore.TimestampError, "before the first commit"),
        (lambda t: t.diff(0, 1, limit=-1), logstore.InvalidInputError, "limit"),
    ],
)
def test_errors(store, call, error, text):
    t = store.create_table("e", pa.table({"id": [1]}), key="id", timestamp="2021-01-01")
    t.append(pa.table({"id": [2]}), timestamp="2021-02-01")
    t.append(pa.table({"id": [3]}), timestamp="2021-03-01")
    with pytest.raises(error, match=text):
        call(t)
    assert issubclass(error, logstore.LogstoreError)


def test_damaged_snapshot_is_skipped(store):
    t = store.create_table("d", pa.table({"id": [1, 2], "x": [1, 2]}), key="id")
    t.update(set={"x": "x + 1"})
    t.snapshot()
    t.update(set={"x": "x * 10"}, where="id = 1")  # its pre-image is looked up in the snapshot of version 1
    t.delete(where="id = 2")  # its pre-image is stored in the delete row (format 5): no lookup
    expected = t.changes(2).to_pylist()
    deleted = t.changes(3).to_pylist()
    for p in (Path(store.path) / "tables" / "d" / "snapshots").glob("*.parquet"):
        p.write_bytes(b"\0" * p.stat().st_size)
    with pytest.warns(RuntimeWarning):
        assert t.changes(2).to_pylist() == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the delete's feed never reads the damaged snapshot
        assert t.changes(3).to_pylist() == deleted == [dict(deleted[0], id=2, x=3, _change_type="delete")]


# --- CLI ---------------------------------------------------------------------------------------------------------------


def cli_run(store, *args):
    from logstore_cli.main import cli

    return CliRunner().invoke(cli, ["--store", store.path, *args])


def test_cli_diff_and_changes(people_table):
    store = testing.store(people_table)
    people_table.tag("start", 0)
    res = cli_run(store, "diff", "p", "start", "5")
    assert res.exit_code == 0, res.output
    assert "update" in res.output and "_old_score" in res.output and "_old_name" not in res.output
    res = cli_run(store, "diff", "p", "0", "5", "--format", "json")
    assert json.loads(res.output) == people_table.diff(0, 5).to_pylist()
    res = cli_run(store, "diff", "p", "0", "5", "--format", "csv", "--limit", "1")
    assert res.output.splitlines()[0].startswith("_change_type,id,name") and len(res.output.splitlines()) == 2
    res = cli_run(store, "diff", "p", "5", "0", "--summary", "--format", "json")
    assert json.loads(res.output)["inserted"] == 1 and json.loads(res.output)["updated"] == 1
    res = cli_run(store, "changes", "p", "3", "4", "--format", "json")
    assert [r["_change_type"] for r in json.loads(res.output)] == ["delete", "insert"]
    res = cli_run(store, "changes", "p", "1", "--limit", "2")
    assert res.exit_code == 0 and "raise --limit" in res.output
    moment = people_table.commit_info(3).timestamp.isoformat()
    res = cli_run(store, "changes", "p", f"@{moment}", "3", "--format", "csv")
    assert res.output.splitlines()[1].split(",")[3] == "delete"


@pytest.mark.parametrize(
    "args, text",
    [
        (["changes", "p", "4", "2"], "reversed"),
        (["changes", "p", "0", "9"], "latest version is 5"),
        (["diff", "p", "0", "12"], "latest version is 5"),
        (["diff", "p", "nope", "1"], "no tag 'nope'"),
        (["diff", "nosuch", "0", "1"], "no table 'nosuch'"),
    ],
)
def test_cli_errors(people_table, args, text):
    res = cli_run(testing.store(people_table), *args)
    assert res.exit_code == 1
    assert text in res.output and res.output.startswith("error:")


def test_cli_usage_error(people_table):
    res = cli_run(testing.store(people_table), "diff", "p", "0")
    assert res.exit_code == 2


# --- SQL ---------------------------------------------------------------------------------------------------------------


def test_sql_table_changes_and_table_diff(people_table):
    store, t = testing.store(people_table), people_table
    t.tag("first", 0)
    got = store.sql("SELECT * FROM table_changes('p', 1, 5)").to_arrow_table()
    assert without_time(got.to_pylist()) == without_time(t.changes(1, 5).to_pylist())
    assert store.sql("SELECT count(*) FROM table_changes('p', ?)", params=[3]).fetchall() == [(3,)]
    assert store.sql("SELECT * FROM table_diff('p', 'first', 5)").to_arrow_table().to_pylist() == t.diff(0, 5).to_pylist()
    joined = store.sql("SELECT d.id, d._change_type, v.name FROM table_diff('p', 5, 0) d JOIN p AS OF VERSION 0 v USING (id) ORDER BY id")
    assert joined.fetchall() == [(2, "update", "b"), (3, "insert", "c")]
    with pytest.raises(ChangeRangeError):
        store.sql("SELECT * FROM table_changes('p', 4, 2)")
    with pytest.raises(logstore.VersionNotFoundError, match="latest version is 5"):
        store.sql("SELECT * FROM table_diff('p', 0, 6)")


def test_compacted_history_gives_the_same_feed_and_diff(store, no_fsync):
    """Change files merged by compaction (automatic every 10 commits, and t.compact()) read the same."""
    t = store.create_table("c", pa.table({"k": [0, 1, 2], "x": [0, 0, 0]}), key="k")
    for i in range(1, 24):
        if i % 3 == 0:
            t.delete(where=f"k % 7 = {i % 7}")
        elif i % 3 == 1:
            t.upsert(pa.table({"k": [i % 5, 10 + i], "x": [i, i]}))
        else:
            t.update(set={"x": "x + 100"}, where=f"k % 2 = {i % 2}")
    latest = t.version
    states = [{r["k"]: r["x"] for r in t.read(version=v).to_pylist()} for v in range(latest + 1)]

    def expected_feed(s, e):
        out = []
        for v in range(s, e + 1):
            before, after = (states[v - 1] if v else {}), states[v]
            for k in set(before) | set(after):
                if k not in before:
                    out.append((v, "insert", k, after[k]))
                elif k not in after:
                    out.append((v, "delete", k, before[k]))
                elif before[k] != after[k]:
                    out += [(v, "update_preimage", k, before[k]), (v, "update_postimage", k, after[k])]
        return sorted(out)

    def feed(s, e):
        return sorted((r["_version"], r["_change_type"], r["k"], r["x"]) for r in t.changes(s, e).to_pylist())

    pairs = [(0, latest), (3, 17), (9, 10), (10, 19), (12, 12), (20, latest)]
    before_compact = {p: (t.changes(*p).to_pylist(), t.diff(*p).to_pylist(), t.diff(p[1], p[0]).to_pylist()) for p in pairs}
    for s, e in pairs:
        assert feed(s, e) == expected_feed(s, e), (s, e)
        d = {r["k"]: (r["_change_type"], r["x"], r["_old_x"]) for r in t.diff(s, e).to_pylist()}
        a, b = states[s], states[e]
        want = {k: ("insert" if k not in a else "delete" if k not in b else "update", b.get(k, a.get(k)), a[k] if k in a and k in b else None)
                for k in set(a) | set(b) if a.get(k, "gone") != b.get(k, "gone")}
        assert d == want, (s, e)
    t.compact()
    assert {p: (t.changes(*p).to_pylist(), t.diff(*p).to_pylist(), t.diff(p[1], p[0]).to_pylist()) for p in pairs} == before_compact


# --- old images looked up by position (issue 13): where the version before the range keeps them ---------------------


def feed_from_reads(t, start: int, end: int, key: str = "id") -> list[tuple]:
    """The change feed start..end derived from full reads of every version (the slow, obvious way)."""
    reads = {v: t.read(version=v) for v in range(max(start - 1, 0), end + 1)}
    names = list(dict.fromkeys(c for r in reads.values() for c in r.column_names))  # a column a version lacks is NULL
    states = {v: {r[key]: {c: r.get(c) for c in names} for r in read.to_pylist()} for v, read in reads.items()}
    out = []
    for v in range(start, end + 1):
        before, after = (states[v - 1] if v else {}), states[v]
        for k in sorted(set(before) | set(after)):
            if k not in before:
                out.append((v, k, "insert", after[k]))
            elif k not in after:
                out.append((v, k, "delete", before[k]))
            elif before[k] != after[k]:
                out += [(v, k, "update_preimage", before[k]), (v, k, "update_postimage", after[k])]
    return out


def feed(t, start: int, end: int, key: str = "id") -> tuple[list[tuple], list[str]]:
    """The change feed start..end as (version, key, change type, values), and the table columns it has."""
    table = t.changes(start, end)
    names = [c for c in table.column_names if not c.startswith("_")]
    got = [(r["_version"], r[key], r["_change_type"], {c: r[c] for c in names}) for r in table.to_pylist()]
    return sorted(got, key=lambda x: (x[0], x[1], x[2] != "update_preimage")), names


def normalized(expected: list[tuple], names) -> list[tuple]:
    return sorted([(v, k, kind, {c: row.get(c) for c in names}) for v, k, kind, row in expected], key=lambda x: (x[0], x[1], x[2] != "update_preimage"))


def test_old_images_from_a_snapshot_compacted_blocks_and_a_schema_change(store, no_fsync):
    """Rows deleted or updated in a range whose version before it reads a snapshot, compacted blocks (every 10
    commits), insert-only files and a column added later: each old image is the row as of the version before."""
    t = store.create_table("o", pa.table({"id": list(range(40)), "x": [i * 1.5 for i in range(40)]}), key="id")
    for i in range(1, 13):
        t.update(set={"x": "x + 1"}, where=f"id % 4 = {i % 4}")
    t.snapshot()  # 12: the rows of version 12, in row order
    t.append(pa.table({"id": [100, 101], "x": [1.0, 2.0], "tag": ["a", "b"]}), schema_mode="merge")  # 13: adds `tag`
    t.update(set={"tag": "'t' || id"}, where="id % 5 = 0")  # 14
    t.delete(where="id % 3 = 0")  # 15: rows of the snapshot and of 14
    t.update(set={"x": "x * 2"}, where="id % 3 = 1")  # 16
    t.delete(where="id = 100")  # 17: an appended row
    t.update(set={"x": "x - 1"}, where="id % 3 = 1")  # 18: a second change of the same rows in range 16..18
    latest = t.version
    for start, end in [(1, 12), (13, latest), (15, 15), (15, latest), (16, 18), (5, 15), (0, latest), (13, 14)]:
        got, names = feed(t, start, end)
        assert got == normalized(feed_from_reads(t, start, end), names), (start, end)
    for a, b in [(0, latest), (12, 15), (13, 17), (latest, 3)]:
        old, new = ({r["id"]: r for r in t.read(version=v).to_pylist()} for v in (a, b))
        d = {r["id"]: r["_change_type"] for r in t.diff(a, b).to_pylist()}
        want = {k: ("insert" if k not in old else "delete" if k not in new else "update") for k in set(old) | set(new)
                if old.get(k) != new.get(k) and not (k in old and k in new and {c: old[k].get(c) for c in new[k]} == new[k])}
        assert d == want, (a, b)


def test_snapshot_unreadable_while_planning_the_lookup_is_skipped(store, monkeypatch):
    """A snapshot whose row ids cannot be read when the lookup is planned (nothing of it cached in this process) is
    skipped with a warning and its versions read from the log, as a read skips it."""
    from logstore import scan

    monkeypatch.setenv("LOGSTORE_VERIFY_READS", "size")  # the damage is found by reading the file, not its digest

    t = store.create_table("u", pa.table({"id": [1, 2, 3], "x": [1, 2, 3]}), key="id")
    t.update(set={"x": "x + 1"}, where="id = 2")
    t.snapshot()  # 1
    t.update(set={"x": "x * 10"}, where="id <> 2")  # 2: pre-images looked up (a delete's are stored: format 5)
    expected = t.changes(2).to_pylist()
    expected_diff = t.diff(1, 2).to_pylist()
    for p in (Path(store.path) / "tables" / "u" / "snapshots").glob("*.parquet"):
        p.write_bytes(b"\0" * p.stat().st_size)
    scan.forget()  # the snapshot's row ids are read again
    with pytest.warns(RuntimeWarning, match="snapshot of version 1"):
        assert t.changes(2).to_pylist() == expected
    scan.forget()
    with pytest.warns(RuntimeWarning, match="snapshot of version 1"):
        assert t.diff(1, 2).to_pylist() == expected_diff
