"""Schema evolution (evolution.py, docs/format.md "Schema evolution (format 4)"): ALTER adds, drops, renames and
widens columns without rewriting data, and every version keeps reading in its own columns.

The backbone is a hypothesis model test (as tests/test_model.py): random ALTERs mixed with appends, upserts,
updates, deletes, overwrites, restores, snapshots and compactions, every version's rows and schema checked against an
in-memory model that tracks columns by identity.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import evolution
from logstore.errors import SchemaChangeError

ARROW = {"INTEGER": pa.int32(), "BIGINT": pa.int64(), "FLOAT": pa.float32(), "DOUBLE": pa.float64(), "VARCHAR": pa.string()}
WIDER = {"INTEGER": "BIGINT", "FLOAT": "DOUBLE"}
NAMES = ["a", "b", "c", "d", "e"]

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
STRESS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


# --- the model: columns by identity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    ident: int
    name: str
    type: str


@dataclass
class Model:
    columns: list[Col]
    rows: dict = field(default_factory=dict)  # key k -> {ident: value}
    states: list = field(default_factory=list)  # per version: (columns, rows)
    next_ident: int = 0

    def new_col(self, name: str, type_: str) -> Col:
        self.next_ident += 1
        return Col(self.next_ident, name, type_)

    def commit(self, c: logstore.Commit) -> None:
        assert c.version == len(self.states)
        assert c.num_rows == len(self.rows)
        self.states.append((list(self.columns), {k: dict(r) for k, r in self.rows.items()}))

    def named(self) -> dict[str, Col]:
        return {c.name: c for c in self.columns}

    def expected(self, version: int) -> tuple[list[tuple[str, pa.DataType]], list[dict]]:
        columns, rows = self.states[version]
        shape = [("k", pa.int64())] + [(c.name, ARROW[c.type]) for c in columns]
        out = [{"k": k, **{c.name: _value(r.get(c.ident), c.type) for c in columns}} for k, r in sorted(rows.items())]
        return shape, out


def _value(v, type_):
    if v is None:
        return None
    return str(v) if type_ == "VARCHAR" else v


def _batch(model: Model, keys: list[int], data, label: str) -> tuple[pa.Table, list[dict]]:
    """Rows for `keys` in the model's current columns: (the Arrow batch, the model's rows by identity)."""
    values = []
    for k in keys:
        row = {c.ident: data.draw(st.one_of(st.none(), st.integers(-4, 4)), label=f"{label} {c.name}") for c in model.columns}
        values.append((k, row))
    arrays = {"k": pa.array(keys, pa.int64())}
    for c in model.columns:
        arrays[c.name] = pa.array([_value(r[c.ident], c.type) for _, r in values], ARROW[c.type])
    return pa.table(arrays), [(k, r) for k, r in values]


def _check_version(t: logstore.Table, model: Model, version: int) -> None:
    shape, rows = model.expected(version)
    schema = t.schema(version=version)
    assert [(f.name, f.type) for f in schema] == shape, f"schema of version {version}"
    got = sorted(t.read(version=version).to_pylist(), key=lambda r: r["k"])
    assert got == rows, f"rows of version {version}"


def _run(tmp: Path, data, steps: int) -> None:
    store = logstore.init(tmp / "store")
    model = Model(columns=[])
    model.columns = [model.new_col("a", "INTEGER"), model.new_col("b", "VARCHAR")]
    first, rows = _batch(model, [0, 1, 2], data, "create")
    t = store.create_table("t", first, key=["k"])
    model.rows = {k: r for k, r in rows}
    model.commit(t.commit_info(0))
    for step in range(steps):
        kind = data.draw(st.sampled_from(["alter", "alter", "alter", "append", "upsert", "update", "delete", "overwrite", "restore", "snapshot", "compact"]), label=f"step {step}")
        if kind == "alter":
            _alter(t, model, data)
        elif kind in ("append", "upsert", "overwrite"):
            keys = data.draw(st.lists(st.integers(0, 9), max_size=4, unique=True), label="keys")
            if kind == "append":
                keys = [k for k in keys if k not in model.rows]
            batch, rows = _batch(model, keys, data, kind)
            if kind == "overwrite":
                model.rows = {}
            model.rows.update({k: r for k, r in rows})
            model.commit(getattr(t, kind)(batch))
        elif kind == "update":
            targets = [c for c in model.columns if c.type != "VARCHAR"]
            if not targets:
                continue
            c = data.draw(st.sampled_from(targets), label="set column")
            value = data.draw(st.integers(-4, 4), label="value")
            for k, r in model.rows.items():
                if k % 2 == 0:
                    r[c.ident] = value
            model.commit(t.update({c.name: str(value)}, "k % 2 = 0"))
        elif kind == "delete":
            model.rows = {k: r for k, r in model.rows.items() if k % 3 != 1}
            model.commit(t.delete("k % 3 = 1"))
        elif kind == "restore":
            v = data.draw(st.integers(0, len(model.states) - 1), label="restore to")
            columns, rows = model.states[v]
            model.columns, model.rows = list(columns), {k: dict(r) for k, r in rows.items()}
            model.commit(t.restore(v))
        elif kind == "snapshot":
            assert t.snapshot() == len(model.states) - 1
        elif kind == "compact":
            t.compact()
        _check_version(t, model, len(model.states) - 1)
    fresh = logstore.open(tmp / "store").table("t")
    for v in range(len(model.states)):
        _check_version(fresh, model, v)
        as_of = fresh._store.sql(f"SELECT * FROM t AS OF VERSION {v} ORDER BY k").to_arrow_table()
        assert as_of.column_names == [n for n, _ in model.expected(v)[0]]
    report = fresh.verify(full=True)
    assert not report.problems, report.problems


def _alter(t: logstore.Table, model: Model, data) -> None:
    what = data.draw(st.sampled_from(["add", "drop", "rename", "widen"]), label="alter")
    named = model.named()
    if what == "add":
        free = [n for n in NAMES if n not in named]
        if not free:
            return
        name = data.draw(st.sampled_from(free), label="add name")
        type_ = data.draw(st.sampled_from(["INTEGER", "BIGINT", "VARCHAR"]), label="add type")
        default = data.draw(st.one_of(st.none(), st.integers(-4, 4)), label="default")
        spec = f"{name} {type_}" + ("" if default is None else f" DEFAULT {default}")
        col = model.new_col(name, type_)
        model.columns.append(col)
        for r in model.rows.values():
            r[col.ident] = default
        model.commit(t.alter(add=spec))
    elif what == "drop":
        if len(model.columns) < 2:
            return
        col = data.draw(st.sampled_from(model.columns), label="drop")
        model.columns.remove(col)
        model.commit(t.alter(drop=col.name))
    elif what == "rename":
        free = [n for n in NAMES if n not in named]
        if not model.columns or not free:
            return
        col = data.draw(st.sampled_from(model.columns), label="rename")
        new = data.draw(st.sampled_from(free), label="rename to")
        model.columns[model.columns.index(col)] = Col(col.ident, new, col.type)
        model.commit(t.alter(rename={col.name: new}))
    else:
        wide = [c for c in model.columns if c.type in WIDER]
        if not wide:
            return
        col = data.draw(st.sampled_from(wide), label="widen")
        model.columns[model.columns.index(col)] = Col(col.ident, col.name, WIDER[col.type])
        model.commit(t.alter(widen={col.name: WIDER[col.type]}))


@FAST
@given(data=st.data())
def test_alter_matches_model(tmp_path_factory, no_fsync, data):
    _run(tmp_path_factory.mktemp("evolve"), data, steps=12)


@pytest.mark.stress
@STRESS
@given(data=st.data())
def test_alter_matches_model_stress(tmp_path_factory, no_fsync, data):
    _run(tmp_path_factory.mktemp("evolve"), data, steps=30)


# --- examples ------------------------------------------------------------------------------------------------------


@pytest.fixture
def table(store, no_fsync):
    data = pa.table({"id": [1, 2, 3], "a": pa.array([10, 20, 30], pa.int32()), "b": ["x", "y", "z"]})
    return store.create_table("t", data, key=["id"])


def _files(store_path: Path) -> list[str]:
    return sorted(str(p.relative_to(store_path)) for p in store_path.rglob("*.parquet"))


def test_alter_writes_no_data_and_old_versions_keep_their_shape(store, table):
    before = _files(Path(store.path))
    c = table.alter(rename={"a": "amount"}, message="rename")
    assert (c.version, c.operation, c.rows_inserted, c.num_rows) == (1, "ALTER", 0, 3)
    assert c.parameters == {"rename": {"a": "amount"}}
    assert _files(Path(store.path)) == before  # nothing rewritten, nothing added
    table.append(pa.table({"id": [4], "amount": pa.array([40], pa.int32()), "b": ["w"]}))
    table.alter(drop="b")
    table.alter(add="b BIGINT")  # a new column of the old name: the old values never reappear
    assert table.read(version=0).column_names == ["id", "a", "b"]
    assert table.read(version=0).column("b").to_pylist() == ["x", "y", "z"]
    assert table.read(version=2).column("amount").to_pylist() == [10, 20, 30, 40]
    assert table.read(version=3).column_names == ["id", "amount"]
    assert table.read(version=4).to_pydict() == {"id": [1, 2, 3, 4], "amount": [10, 20, 30, 40], "b": [None] * 4}
    assert table.schema(version=4).field("b").type == pa.int64()
    assert table.key == ("id",)


def test_sql_as_of_across_renames(store, table):
    table.alter(rename={"a": "amount"})
    table.update({"amount": "amount + 1"}, "id = 1")
    table.alter(rename={"amount": "total"}, widen={"amount": "BIGINT"})
    rows = lambda q: store.sql(q).fetchall()  # noqa: E731
    assert rows("SELECT a FROM t AS OF VERSION 0 ORDER BY id") == [(10,), (20,), (30,)]
    assert rows("SELECT amount FROM t AS OF VERSION 2 ORDER BY id") == [(11,), (20,), (30,)]
    assert rows("SELECT total FROM t ORDER BY id") == [(11,), (20,), (30,)]
    assert store.sql("SELECT total FROM t").types[0] == "BIGINT"
    with pytest.raises(Exception, match="amount"):
        rows("SELECT amount FROM t")
    assert rows("SELECT count(*) FROM t AS OF VERSION 0 WHERE a > 10") == [(2,)]


def test_key_rename_keeps_the_key(store, table):
    table.alter(rename={"id": "ident"})
    assert table.key == ("ident",)
    table.upsert(pa.table({"ident": [1], "a": pa.array([99], pa.int32()), "b": ["u"]}))
    assert table.read().to_pydict()["a"] == [20, 30, 99]
    with pytest.raises(logstore.KeyViolationError):
        table.append(pa.table({"ident": [2], "a": pa.array([0], pa.int32()), "b": ["v"]}))
    record = json.loads(Path(store.path, "tables", "t", "_log", f"{1:020d}.json").read_text())
    assert record["key"] == ["ident"] and record["schema"][0] == {"name": "ident", "type": "BIGINT", "id": "id"}


def test_default_fills_old_rows_only(table):
    table.alter(add="c VARCHAR DEFAULT 'none', d INTEGER DEFAULT 1 + 1")
    table.append(pa.table({"id": [4], "a": pa.array([1], pa.int32()), "b": ["w"], "c": [None], "d": pa.array([5], pa.int32())}))
    got = table.read().to_pydict()
    assert got["c"] == ["none", "none", "none", None] and got["d"] == [2, 2, 2, 5]
    assert table.read(version=0).column_names == ["id", "a", "b"]


@pytest.mark.parametrize(
    "kwargs, value",
    [
        ({"drop": "id"}, "id"),  # a key column
        ({"drop": ["a", "b"]}, "b"),  # the last non-key column
        ({"drop": "nope"}, "nope"),  # unknown
        ({"rename": {"nope": "x"}}, "nope"),
        ({"rename": {"a": "B"}}, ["B", "b"]),  # case-colliding names
        ({"rename": {"a": "b"}}, ["b", "b"]),  # duplicate names
        ({"add": "A INTEGER"}, ["a", "A"]),
        ({"add": "_x INTEGER"}, "_x"),  # reserved
        ({"widen": {"a": "SMALLINT"}}, "SMALLINT"),  # narrowing
        ({"widen": {"b": "INTEGER"}}, "INTEGER"),
        ({"widen": {"a": "VARCHAR"}}, "VARCHAR"),  # anything to a string is not widening
        ({"widen": {"a": "INTEGER"}}, "INTEGER"),  # the same type
        ({"add": "c NOTATYPE"}, "c NOTATYPE"),
        ({"add": "c INTEGER DEFAULT (SELECT 1)"}, "c INTEGER DEFAULT (SELECT 1)"),
        ({"add": "c INTEGER DEFAULT 'abc'"}, "c INTEGER DEFAULT 'abc'"),
        ({"add": "c INTEGER DEFAULT a"}, "c INTEGER DEFAULT a"),  # a default may not refer to columns
        ({"drop": "a", "rename": {"a": "z"}}, "a"),
        ({}, None),
    ],
)
def test_refusals_write_nothing(store, table, kwargs, value):
    log = Path(store.path, "tables", "t", "_log")
    before = sorted(os.listdir(log)), _files(Path(store.path))
    with pytest.raises(SchemaChangeError) as caught:
        table.alter(**kwargs)
    assert caught.value.value == value
    assert (sorted(os.listdir(log)), _files(Path(store.path))) == before
    assert table.version == 0


def test_widen_casts_old_files(table):
    table.alter(widen={"a": "BIGINT"})
    table.append(pa.table({"id": [4], "a": [2**40], "b": ["w"]}))
    assert table.schema().field("a").type == pa.int64()
    assert table.read().column("a").to_pylist() == [10, 20, 30, 2**40]
    assert table.schema(version=0).field("a").type == pa.int32()
    assert evolution.widens("DECIMAL(10,2)", "DECIMAL(12,2)") and evolution.widens("DECIMAL(10,2)", "DECIMAL(12,4)")
    assert not evolution.widens("DECIMAL(10,2)", "DECIMAL(11,4)") and evolution.widens("INTEGER", "HUGEINT")
    assert not evolution.widens("DECIMAL(10,2)", "DECIMAL(10,1)") and evolution.widens("UTINYINT", "SMALLINT")
    assert not evolution.widens("BIGINT", "DOUBLE") and not evolution.widens("DOUBLE", "FLOAT")


def test_restore_before_rename_and_drop_brings_the_schema_back(table):
    table.alter(rename={"a": "amount"})
    table.update({"amount": "amount * 2"})
    table.alter(drop="b")
    c = table.restore(0)
    assert c.operation == "RESTORE" and c.version == 4
    assert table.read().to_pydict() == {"id": [1, 2, 3], "a": [10, 20, 30], "b": ["x", "y", "z"]}
    assert table.read(version=3).to_pydict() == {"id": [1, 2, 3], "amount": [20, 40, 60]}
    table.alter(rename={"a": "amount"})  # the restored column is the same column again
    assert table.read().column("amount").to_pylist() == [10, 20, 30]
    assert not table.verify(full=True).problems


def test_change_feed_and_diff_across_a_schema_change(table):
    table.alter(rename={"a": "amount"}, drop="b")
    table.update({"amount": "amount + 1"}, "id = 2")
    table.alter(add="b VARCHAR DEFAULT 'new'")
    table.delete("id = 3")
    feed = table.changes(0)
    # rows in the last version's shape: the renamed column under its new name, the dropped 'b' left out (its name
    # belongs to the new column), the new column's default for rows written before it
    assert feed.column_names[:3] == ["id", "amount", "b"]
    rows = [(r["_change_type"], r["_version"], r["id"], r["amount"], r["b"]) for r in feed.to_pylist()]
    assert rows == [
        ("insert", 0, 1, 10, "new"), ("insert", 0, 2, 20, "new"), ("insert", 0, 3, 30, "new"),
        ("update_preimage", 2, 2, 20, "new"), ("update_postimage", 2, 2, 21, "new"),
        ("delete", 4, 3, 30, "new"),
    ]
    d = table.diff(0, 4)
    assert d.column_names == ["_change_type", "id", "amount", "_old_amount", "b", "_old_b", "_changed_columns"]
    assert d.to_pylist() == [
        {"_change_type": "update", "id": 2, "amount": 21, "_old_amount": 20, "b": "new", "_old_b": None, "_changed_columns": ["amount"]},
        {"_change_type": "delete", "id": 3, "amount": 30, "_old_amount": None, "b": "new", "_old_b": None, "_changed_columns": []},
    ]
    summary = table.diff_summary(0, 4)
    assert (summary.columns_added, summary.columns_removed) == (("b",), ("b",))


def test_compaction_never_merges_across_an_alter(store, no_fsync, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = store.create_table("c", pa.table({"id": [0], "v": pa.array([0], pa.int32())}), key=["id"])
    for i in range(1, 5):
        t.append(pa.table({"id": [i], "v": pa.array([i], pa.int32())}))
    t.alter(rename={"v": "w"}, widen={"v": "BIGINT"})
    for i in range(6, 10):
        t.append(pa.table({"id": [i], "w": [i]}))
    assert t.compact() == []  # versions 0..9 span the rename: left as they are
    for i in range(10, 20):
        t.append(pa.table({"id": [i], "w": [i]}))
    assert [(r.first, r.last) for r in t.compact()] == [(10, 19)]
    assert t.read().column("w").to_pylist() == [i for i in range(20) if i != 5]
    assert t.read(version=4).column("v").to_pylist() == [0, 1, 2, 3, 4]
    assert not t.verify(full=True).problems


def test_alter_raises_the_store_marker_and_old_stores_keep_working(store, table):
    marker = Path(store.path, "logstore.json")
    marker.write_text(json.dumps({"format": "logstore", "format_version": 3}))
    table.append(pa.table({"id": [4], "a": pa.array([40], pa.int32()), "b": ["w"]}))
    assert json.loads(marker.read_text())["format_version"] == 3  # plain writes leave the marker
    record = json.loads(Path(store.path, "tables", "t", "_log", f"{1:020d}.json").read_text())
    assert all("id" not in c for c in record["schema"])  # an unaltered table writes no ids
    table.alter(add="c INTEGER")
    assert json.loads(marker.read_text())["format_version"] == 4


def test_merge_added_column_after_drop_is_a_new_column(table):
    table.alter(drop="b")
    table.append(pa.table({"id": [4], "a": pa.array([1], pa.int32()), "b": ["new"]}), schema_mode="merge")
    assert table.read().to_pydict()["b"] == [None, None, None, "new"]
    assert table.read(version=0).to_pydict()["b"] == ["x", "y", "z"]
    assert not table.verify(full=True).problems


def test_cli_alter(cli_env, tmp_path):
    from click.testing import CliRunner

    from logstore_cli.main import cli

    store = logstore.init(tmp_path / "s")
    store.create_table("t", pa.table({"id": [1, 2], "a": pa.array([1, 2], pa.int32())}), key=["id"])
    run = lambda *args: CliRunner().invoke(cli, ["--store", str(tmp_path / "s"), *args])  # noqa: E731
    done = run("alter", "t", "--rename", "a=amount", "--widen", "a=BIGINT", "--add", "note VARCHAR DEFAULT 'n'")
    assert done.exit_code == 0, done.output
    assert "version 1 ALTER" in done.output
    shown = run("show", "t", "--version", "0", "--format", "json")
    assert json.loads(shown.output)[0] == {"id": 1, "a": 1}
    shown = run("show", "t", "--format", "json")
    assert json.loads(shown.output)[0] == {"id": 1, "amount": 1, "note": "n"}
    refused = run("alter", "t", "--drop", "id")
    assert refused.exit_code == 1 and "key column 'id'" in refused.output


def test_swapped_names_keep_key_checks_right(table):
    """The key renamed to a name another column had: key probes read each file's own column of the key."""
    table.alter(rename={"id": "b", "b": "id"})  # the key is now 'b'; 'id' is the string column
    assert table.key == ("b",)
    with pytest.raises(logstore.KeyViolationError):
        table.append(pa.table({"b": [2], "a": pa.array([0], pa.int32()), "id": ["dup"]}))
    table.append(pa.table({"b": [9], "a": pa.array([0], pa.int32()), "id": ["new"]}))
    assert table.read().to_pydict() == {"b": [1, 2, 3, 9], "a": [10, 20, 30, 0], "id": ["x", "y", "z", "new"]}
    assert table.read(version=0).to_pydict() == {"id": [1, 2, 3], "a": [10, 20, 30], "b": ["x", "y", "z"]}


def test_reset_restore_before_a_rename_keeps_identities(store, table):
    """The latest version's change file lost: restore (a reset, writing every row) to a version before a rename."""
    from logstore import integrity, testing

    table.alter(rename={"a": "amount"})
    table.update({"amount": "amount + 1"})
    for f in testing.log(table).read(2).files:
        (Path(store.path) / "tables/t" / f.path).unlink()
    for v in table.snapshots():
        if v >= 2:  # a snapshot of version 2 would stand in for the file
            (Path(store.path) / f"tables/t/_snapshots/{v:020d}.json").unlink()
    integrity.forget()
    table = logstore.open(store.path).table("t")
    with pytest.raises(logstore.HeadUnreadableError):
        table.append(pa.table({"id": [9], "amount": pa.array([9], pa.int32()), "b": ["q"]}))
    assert table.restore(0).version == 3
    assert table.read().to_pydict() == {"id": [1, 2, 3], "a": [10, 20, 30], "b": ["x", "y", "z"]}
    table.alter(rename={"a": "amount"})
    table.append(pa.table({"id": [9], "amount": pa.array([9], pa.int32()), "b": ["q"]}), schema_mode="merge")
    assert table.read().to_pydict()["amount"] == [10, 20, 30, 9]
    assert table.schema().names == ["id", "amount", "b"]


def test_restore_across_a_widening_compares_values(table):
    """Found by the model test: a restore to the narrower type keeps a row whose value equals the target's and
    rewrites one that differs, however the types differ."""
    table.alter(widen={"a": "BIGINT"})
    table.update({"a": "0"}, "id = 1")
    table.restore(0)
    assert table.schema().field("a").type == pa.int32()
    assert table.read().to_pydict()["a"] == [20, 30, 10]  # id 1 rewritten by the restore: last in row order
    table.update({"a": "5"}, "id = 2")
    table.restore(1)
    assert table.read().to_pydict()["a"] == [30, 10, 20] and table.schema().field("a").type == pa.int64()
    assert not table.verify(full=True).problems


def test_restore_before_a_drop_of_a_column_changed_since(table):
    """A row whose dropped column was changed after the target: its current image holds the later value, so the
    restore must rewrite it although the head has no such column to compare."""
    table.update({"a": "NULL"}, "id = 1")  # 1: the target has a = NULL for id 1
    table.update({"a": "5"}, "id = 1")  # 2
    table.alter(drop="a")  # 3
    table.restore(1)
    assert table.read().to_pydict() == table.read(version=1).to_pydict()
    assert not table.verify(full=True).problems
