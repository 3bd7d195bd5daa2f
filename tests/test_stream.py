"""Streaming reads (to_batches, to_arrow_reader), pinned versions (Table.at), fragments and streaming writes
(logstore/stream.py, fragments.py, ingest.py): every new reader equals read() over random histories."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstore
from logstore import compaction, distributed, ingest, scan
from logstore.commit import CommitInfo, change_file_encoding

from conftest import file_state, staging_leftovers

FAST = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
STRESS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def rows(keys, tag="a") -> pa.Table:
    keys = list(keys)
    return pa.table({"k": pa.array(keys, pa.int64()), "x": pa.array([k * 10 for k in keys], pa.int64()), "s": pa.array([f"{tag}{k}" for k in keys])})


def every_reader(t: logstore.Table, version: int) -> dict[str, pa.Table]:
    """The rows of `version` by each new reader (fragments pickled, small, so that the version spans several)."""
    expected = t.read(version=version)
    tv = t.at(version=version)
    frags = pickle.loads(pickle.dumps(t.fragments(version=version, rows_per_fragment=3)))
    got = {
        "to_batches": pa.Table.from_batches(list(t.to_batches(version=version, batch_size=2)), schema=expected.schema),
        "to_arrow_reader": t.to_arrow_reader(version=version).read_all(),
        "pyarrow.table(tv)": pa.table(tv),
        "from_stream(tv)": pa.RecordBatchReader.from_stream(tv).read_all(),
        "duckdb FROM tv": duckdb.sql("SELECT * FROM tv").to_arrow_table(),
        "tv.read": tv.read(),
        "fragments": pa.concat_tables([f.to_arrow() for f in frags]) if frags else expected.schema.empty_table(),
        "fragment batches": pa.Table.from_batches([b for f in frags for b in f.to_batches(batch_size=2)], schema=expected.schema),
    }
    return {name: table.cast(expected.schema) for name, table in got.items()}


operation = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 6)),
    st.tuples(st.just("upsert"), st.integers(0, 30), st.integers(1, 6)),
    st.tuples(st.just("update"), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, 4)),
    st.tuples(st.just("snapshot")),
    st.tuples(st.just("compact")),
    st.tuples(st.just("add_column")),
    st.tuples(st.just("partitions"), st.lists(st.integers(0, 4), min_size=1, max_size=4)),
)


def check_history(root, ops) -> None:
    """Apply `ops` to a new table under `root`; then every new reader of every version equals read()."""
    store = logstore.init(root / "store")
    t = store.create_table("t", rows(range(4)), key="k", properties={"snapshot_commits": 1000})
    next_key = 4
    extra = False
    for op in ops:
        if op[0] == "append":
            batch = rows(range(next_key, next_key + op[1]))
            if extra:
                batch = batch.append_column("y", pa.array([1.5] * batch.num_rows))
            t.append(batch, schema_mode="merge")
            next_key += op[1]
        elif op[0] == "upsert":
            t.upsert(rows(range(op[1], op[1] + op[2]), tag="u"), schema_mode="merge")
            next_key = max(next_key, op[1] + op[2])
        elif op[0] == "update":
            t.update({"x": "x + 1"}, f"k % 4 = {op[1]}")
        elif op[0] == "delete":
            t.delete(f"k % 5 = {op[1]}")
        elif op[0] == "partitions":  # a version written as a change file per partition (distributed.py)
            parts, start = [], next_key
            for n in op[1]:
                parts.append(rows(range(start, start + n)))
                start += n
            t.append(rows([0]).slice(0, 0), schema_mode="merge") if start == next_key else distributed.append(t, distributed.Local(parts), merge=True, info=CommitInfo())
            next_key = start
        elif op[0] == "snapshot":
            t.snapshot()
        elif op[0] == "compact":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t.compact()
        else:
            extra = True
            t.append(rows([]).append_column("y", pa.array([], pa.float64())), schema_mode="merge")
    scan.forget()
    for v in range(t.version + 1):
        expected = t.read(version=v)
        for name, got in every_reader(t, v).items():
            assert got.equals(expected), (name, v)


@FAST
@given(st.lists(operation, min_size=1, max_size=8))
def test_every_new_reader_equals_read_for_every_version(tmp_path_factory, monkeypatch, ops):
    monkeypatch.setattr(compaction, "FANOUT", 3)  # blocks of 3 versions: compacted files in short histories
    check_history(tmp_path_factory.mktemp("s"), ops)


@pytest.mark.stress
@STRESS
@given(st.lists(operation, min_size=1, max_size=20))
def test_every_new_reader_equals_read_for_every_version_stress(tmp_path_factory, monkeypatch, ops):
    monkeypatch.setattr(compaction, "FANOUT", 3)
    check_history(tmp_path_factory.mktemp("s"), ops)


def test_to_batches_bounds_batches_and_filters(store):
    t = store.create_table("t", rows(range(1000)), key="k")
    t.delete("k % 3 = 0")
    batches = list(t.to_batches(batch_size=100, columns=["k", "s"], where="k < 500"))
    assert batches and all(b.num_rows <= 100 for b in batches)
    assert pa.Table.from_batches(batches).equals(t.read(columns=["k", "s"], where="k < 500"))
    assert t.to_arrow_reader(version=0).read_all().equals(t.read(version=0))
    with pytest.raises(logstore.InvalidInputError):
        t.to_batches(batch_size=0)
    with pytest.raises(logstore.SchemaMismatchError):
        t.to_arrow_reader(columns=["nope"])


def test_a_stream_stays_open_while_the_store_reads_other_things(store):
    t = store.create_table("t", rows(range(5000)))
    reader = t.to_arrow_reader(batch_size=1000)
    first = reader.read_next_batch()
    assert t.read(where="k < 3").num_rows == 3  # another query on the store's connection in between
    rest = reader.read_all()
    assert pa.concat_tables([pa.Table.from_batches([first]), rest]).equals(t.read())


def test_table_version_members(store):
    t = store.create_table("t", rows(range(3)), key="k")
    t.append(rows(range(3, 5)))
    t.tag("one", 0)
    tv = t.at(tag="one")
    assert tv.version == 0 and tv.num_rows == 3 and tv.schema == t.schema(0)
    assert tv.timestamp == t.commit_info(0).timestamp
    assert t.at(as_of=tv.timestamp).version == 0 and t.at().version == 1
    assert tv.to_pandas().equals(t.to_pandas(version=0))
    assert tv.to_polars().equals(t.to_polars(version=0))
    assert tv.scan_polars().collect().equals(t.to_polars(version=0))
    assert tv.to_duckdb().to_arrow_table().equals(t.read(version=0))
    assert pa.Table.from_batches(list(tv.to_batches())).equals(t.read(version=0))
    assert pa.concat_tables(f.to_arrow() for f in tv.fragments()).equals(t.read(version=0))
    assert duckdb.sql("SELECT sum(x) FROM tv").fetchall() == [(30,)]
    t.append(rows(range(5, 9)))
    assert pa.table(tv).num_rows == 3  # pinned


def test_table_without_columns(store):
    t = store.create_table("empty")
    assert list(t.to_batches()) == []
    assert t.at().num_rows == 0 and pa.table(t.at()).num_columns == 0
    assert [f.to_arrow().num_rows for f in t.fragments()] == [0]


def test_vacuumed_files_under_an_open_plan_raise_files_gone(store):
    t = store.create_table("t", rows(range(10)))
    frags = t.fragments()
    for f in frags:
        for p in f.pieces:
            os.remove(os.path.join(store.path, p.path))
    with pytest.raises(logstore.VersionFilesGoneError):
        frags[0].to_arrow()


def test_a_replaced_file_is_refused_by_a_fragment(store):
    t = store.create_table("t", rows(range(10)))
    other = store.create_table("u", rows(range(20, 30)))
    frags = t.fragments()
    target = os.path.join(store.path, frags[0].pieces[0].path)
    source = os.path.join(store.path, other.fragments()[0].pieces[0].path)
    os.chmod(target, 0o644)
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())
    from logstore import integrity

    integrity.forget()
    with pytest.raises(logstore.CorruptionError):
        frags[0].to_arrow()


def test_fragments_cover_every_row_once_and_split_big_files(store, monkeypatch):
    monkeypatch.setattr("logstore.commit.ROW_GROUP_ROWS", 1000)
    t = store.create_table("t", rows(range(10_000)), key="k")
    t.update({"x": "0"}, "k % 7 = 0")
    t.append(rows(range(10_000, 10_050)))
    frags = t.fragments(rows_per_fragment=2500)
    assert len(frags) > 3
    assert all(f.rows_scanned <= 2500 for f in frags)
    assert pa.concat_tables(f.to_arrow() for f in frags).equals(t.read())
    narrow = t.fragments(columns=["s"], rows_per_fragment=2500)
    assert pa.concat_tables(f.to_arrow() for f in narrow).equals(t.read(columns=["s"]))
    with pytest.raises(logstore.InvalidInputError):
        t.fragments(rows_per_fragment=0)


def test_fragments_read_in_a_fresh_process(store, tmp_path):
    t = store.create_table("t", rows(range(100)), key="k")
    t.delete("k < 10")
    t.upsert(rows(range(50, 60), tag="z"))
    path = tmp_path / "frags.pkl"
    path.write_bytes(pickle.dumps(t.fragments(rows_per_fragment=20)))
    out = tmp_path / "out.parquet"
    code = (
        "import pickle, sys, pyarrow as pa, pyarrow.parquet as pq\n"
        "frags = pickle.load(open(sys.argv[1], 'rb'))\n"
        "pq.write_table(pa.concat_tables(f.to_arrow() for f in frags), sys.argv[2])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code, str(path), str(out)], check=True, env=env, cwd=tmp_path)
    assert pq.read_table(out).equals(t.read())


def test_fragments_on_an_object_store(s3_server, s3_url, tmp_path):
    store = logstore.init(s3_url, storage_options=s3_server.options())
    t = store.create_table("t", rows(range(50)), key="k")
    t.update({"s": "'q'"}, "k % 2 = 0")
    blob = pickle.dumps(t.fragments(rows_per_fragment=10))
    code = (
        "import os, pickle, sys, pyarrow as pa\n"
        "os.environ['LOGSTORE_CACHE_DIR'] = sys.argv[2]\n"
        "frags = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "sys.stdout.write(str(pa.concat_tables(f.to_arrow() for f in frags).to_pydict()))\n"
    )
    path = tmp_path / "frags.pkl"
    path.write_bytes(blob)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "cache")], check=True, env=env, capture_output=True, text=True)
    assert done.stdout == str(t.read().to_pydict())


# --- streaming writes -------------------------------------------------------------------------------------------


def generated(start: int, stop: int, step: int = 300):
    for i in range(start, stop, step):
        keys = np.arange(i, min(i + step, stop))
        yield pa.record_batch({"k": keys, "x": keys * 10, "s": pa.array([f"a{k}" for k in keys])})


@pytest.fixture
def small_buffer(monkeypatch):
    monkeypatch.setattr(ingest, "BUFFER_ROWS", 1000)
    monkeypatch.setattr("logstore.ingest.ROW_GROUP_ROWS", 700)


def test_streaming_writes_of_every_input_kind(store, small_buffer, tmp_path):
    t = store.create_table("t", generated(0, 2500), key="k")
    assert t.read().equals(rows(range(2500)))
    files = t.commit_info(0)
    assert files.rows_inserted == 2500
    t.append(pa.RecordBatchReader.from_batches(rows([0]).schema, generated(2500, 5000)))
    pq.write_table(rows(range(5000, 6000)), tmp_path / "p1.parquet", row_group_size=300)
    pq.write_table(rows(range(6000, 7500)), tmp_path / "p2.parquet", row_group_size=300)
    t.append(str(tmp_path / "p*.parquet"))
    t.append(duckdb.sql("SELECT range AS k, range * 10 AS x, 'a' || range AS s FROM range(7500, 9000)"))
    t.append(list(generated(9000, 9010)))  # a small stream: the in-memory path
    assert t.read().equals(rows(range(9010)))
    assert t.verify(full=True).problems == []
    assert staging_leftovers(store.path) == []
    t.update({"x": "0"}, "k % 2 = 0")  # the head cache sees the staged appends
    with pytest.raises(logstore.KeyViolationError):
        t.append(generated(8000, 9500))
    # upsert and overwrite take streams too
    t.upsert(generated(9000, 9020))
    t.overwrite(generated(0, 100))
    assert t.read().sort_by("k").equals(rows(range(100)))


def test_streamed_key_checks_hold_across_the_whole_input(store, small_buffer):
    t = store.create_table("t", rows(range(10)), key="k")
    before = file_state(store.path)

    def repeated():
        yield from generated(100, 1900)
        yield from generated(1800, 1801)  # one key again, at the end

    with pytest.raises(logstore.KeyViolationError, match="duplicate"):
        t.append(repeated())
    with pytest.raises(logstore.KeyViolationError, match="already in the table"):
        t.append(generated(5, 2000))
    assert file_state(store.path) == before and staging_leftovers(store.path) == []


def test_a_failure_mid_stream_leaves_the_store_as_before(store, small_buffer):
    t = store.create_table("t", rows(range(10)), key="k")
    before = file_state(store.path)

    def failing():
        yield from generated(100, 2500)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        t.append(failing())

    def bad_type():
        yield from generated(100, 2500)
        yield pa.record_batch({"k": pa.array(["x"]), "x": pa.array([1]), "s": pa.array(["s"])})

    with pytest.raises(logstore.InvalidInputError):
        t.append(bad_type())
    with pytest.raises(logstore.InvalidInputError):
        t.append(iter([1, 2]))
    with pytest.raises(logstore.InvalidInputError):
        t.append(str(store.path) + "/nothing-*.parquet")
    assert file_state(store.path) == before and staging_leftovers(store.path) == []
    assert t.version == 0


def test_a_streamed_append_that_loses_a_race_rewrites_its_change_file(store, small_buffer, monkeypatch):
    t = store.create_table("t", rows(range(10)), key="k")
    other = store.table("t")
    from logstore import commit as commits

    real = commits._publish
    raced = []

    def publish(files, operation, head, changes, info):
        if not raced and getattr(changes, "staged", None):
            raced.append(True)
            other.append(rows(range(10, 20)))  # another writer wins this version
        return real(files, operation, head, changes, info)

    monkeypatch.setattr(commits, "_publish", publish)
    t.append(generated(100, 2000))
    assert t.version == 2 and t.read().num_rows == 1920
    assert t.read(columns=["k"]).column("k").to_pylist() == list(range(20)) + list(range(100, 2000))
    assert t.verify(full=True).problems == [] and t.verify(full=True).unreferenced == []


def test_a_glob_naming_a_file_that_is_not_parquet_is_refused(store, small_buffer, tmp_path):
    t = store.create_table("t", rows(range(3)), key="k")
    pq.write_table(rows(range(10, 1500)), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_text("not parquet")
    before = file_state(store.path)
    with pytest.raises(logstore.InvalidInputError, match="Parquet"):
        t.append(str(tmp_path / "*.parquet"))
    assert file_state(store.path) == before


def test_compaction_carries_all_or_none_of_a_versions_files(store, monkeypatch):
    monkeypatch.setattr(compaction, "FANOUT", 3)
    monkeypatch.setattr(compaction, "CARRY_MIN_BYTES", 1)  # the big partition's file alone would be carried over
    monkeypatch.setenv("LOGSTORE_AUTO_COMPACT", "0")
    t = store.create_table("t", rows(range(2)), key="k")
    big = pa.table({"k": pa.array(range(2, 3000), pa.int64()), "x": pa.array(np.random.default_rng(1).integers(0, 1 << 40, 2998)), "s": pa.array([f"r{i}" * 5 for i in range(2998)])})
    distributed.append(t, distributed.Local([big, rows(range(3000, 3002)), rows([])]), merge=False, info=CommitInfo())
    assert len(t._log.read(1).files) == 2
    t.append(rows(range(3002, 3004)))
    before = [t.read(version=v) for v in range(3)]
    records = t.compact()
    assert records
    for r in records:  # version 1's own files: both carried over, or both merged
        assert len([f for f in r.files if f.file.path.startswith("data/00000000000000000001-")]) in (0, 2)
    scan.forget()
    assert [t.read(version=v) for v in range(3)] == before
    for v in range(3):
        assert pa.concat_tables(f.to_arrow() for f in t.fragments(version=v, rows_per_fragment=500)).equals(before[v])


def test_a_distributed_append_that_loses_a_race_writes_its_partitions_again(store, monkeypatch):
    t = store.create_table("t", rows(range(10)), key="k")
    other = store.table("t")
    from logstore import commit as commits

    real = commits._publish
    raced = []

    def publish(files, operation, head, changes, info):
        if not raced and getattr(changes, "staged", None):
            raced.append([f.path for f in changes.written])
            other.append(rows(range(10, 20)))  # another writer wins this version and its row ids
        return real(files, operation, head, changes, info)

    monkeypatch.setattr(commits, "_publish", publish)
    distributed.append(t, distributed.Local([rows(range(100, 150)), rows(range(150, 160))]), merge=False, info=CommitInfo())
    assert t.version == 2 and len(t._log.read(2).files) == 2
    assert t.read(columns=["k"]).column("k").to_pylist() == list(range(20)) + list(range(100, 160))
    assert not any(os.path.exists(os.path.join(store.path, "tables", "t", p)) for p in raced[0])  # the lost attempt's files
    assert t.verify(full=True).problems == [] and staging_leftovers(store.path) == []
    with pytest.raises(logstore.KeyViolationError):  # the same key checks as any append
        distributed.append(t, distributed.Local([rows(range(200, 205)), rows(range(204, 206))]), merge=False, info=CommitInfo())
    assert t.version == 2 and sorted(os.listdir(os.path.join(store.path, "tables", "t", "data"))) == sorted(
        p.split("/")[1] for v in range(3) for p in (f.path for f in t._log.read(v).files)
    )


def test_a_version_of_several_files_raises_a_format_3_marker_to_4(store):
    import json

    t = store.create_table("t", rows(range(3)), key="k")
    marker = os.path.join(store.path, "logstore.json")
    with open(marker, "w") as f:
        json.dump({"format": "logstore", "format_version": 3}, f)
    distributed.append(t, distributed.Local([rows(range(3, 5))]), merge=False, info=CommitInfo())  # one file: format 3
    assert json.load(open(marker))["format_version"] == 3
    distributed.append(t, distributed.Local([rows(range(5, 7)), rows(range(7, 9))]), merge=False, info=CommitInfo())
    assert json.load(open(marker))["format_version"] == 4
    assert t.read().equals(rows(range(9)))


WORKER = (
    "import pickle, sys, pyarrow as pa, pyarrow.parquet as pq, logstore\n"
    "from logstore import storage\n"
    "hashed = []\n"
    "real = storage.LocalStorage.sha256\n"
    "storage.LocalStorage.sha256 = lambda self, path: hashed.append(path) or real(self, path)\n"
    "frags = pickle.load(open(sys.argv[1], 'rb'))\n"
    "try:\n"
    "    pq.write_table(pa.concat_tables(f.to_arrow() for f in frags), sys.argv[2])\n"
    "except logstore.CorruptionError as e:\n"
    "    print('refused:', e)\n"
    "print('hashed', len(hashed))\n"
)


def read_in_a_worker(frags, tmp_path) -> tuple[pa.Table | None, str]:
    """Read pickled fragments in a fresh process: their rows (None if refused) and what it printed."""
    path, out = tmp_path / "frags.pkl", tmp_path / "out.parquet"
    path.write_bytes(pickle.dumps(frags))
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", WORKER, str(path), str(out)], check=True, env=env, cwd=tmp_path, capture_output=True, text=True)
    return (pq.read_table(out) if out.exists() else None), done.stdout


def same_size_impostor(path: str) -> bytes:
    """Another valid change file of the same byte size as `path`'s, its strings changed (zstd, as the store writes)."""
    original = pq.read_table(path)
    for tag in "bcdefhijk":
        values = [tag + v[1:] for v in original.column("s").to_pylist()]
        sink = pa.BufferOutputStream()
        changed = original.set_column(original.column_names.index("s"), "s", pa.array(values))
        pq.write_table(changed, sink, compression="zstd", **change_file_encoding(changed.column_names))
        if sink.getvalue().size == os.path.getsize(path):
            return sink.getvalue().to_pybytes()
    raise AssertionError("no impostor of the same size")


def test_a_worker_does_not_hash_again_a_file_the_drivers_plan_checked(store, tmp_path):
    t = store.create_table("t", rows(range(100)), key="k")
    t.upsert(rows(range(50, 150), tag="z"))
    frags = t.fragments(rows_per_fragment=30)
    assert all(p.tag is not None for f in frags for p in f.pieces)
    got, printed = read_in_a_worker(frags, tmp_path)
    assert got is not None and got.equals(t.read()) and "hashed 0" in printed
    target = os.path.join(store.path, frags[0].pieces[0].path)
    os.utime(target, ns=(1, 1))  # same bytes, another tag (times): the worker hashes that file before reading it
    got, printed = read_in_a_worker(frags, tmp_path)
    assert got is not None and got.equals(t.read()) and "hashed 1" in printed


@pytest.mark.parametrize("how", ["rename", "in place"])
def test_a_file_replaced_after_planning_by_a_valid_one_of_the_same_size_is_refused(store, tmp_path, how):
    t = store.create_table("t", rows(range(10)))
    frags = t.fragments()
    target = os.path.join(store.path, frags[0].pieces[0].path)
    impostor = same_size_impostor(target)
    os.chmod(target, 0o644)
    if how == "rename":
        (tmp_path / "impostor").write_bytes(impostor)
        os.replace(tmp_path / "impostor", target)
    else:
        stat = os.stat(target)
        with open(target, "r+b") as f:
            f.write(impostor)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the times put back
    got, printed = read_in_a_worker(frags, tmp_path)
    assert got is None and "refused" in printed and "checksum mismatch" in printed
    with pytest.raises(logstore.CorruptionError, match="checksum mismatch"):
        frags[0].to_arrow()  # and in the driver's process, which had checked the file before
