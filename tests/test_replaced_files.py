"""Fault family: replace a file with another *valid* file of the same kind (another version's, another table's).

No checksum catches these: every byte is as some writer wrote it, only in the wrong place. Whatever is replaced,
every read (each version by number, by as_of timestamp and by tag), history() and a write give the right answer or
raise a LogstoreError, never a wrong answer; and verify(full=True) reports a problem, also for derived data that
readers ignore.

Two tables "a" and "b" in one store, built once per module (then the store is copied per test): 105 versions each
(a log checkpoint of versions 0..99), snapshots every 20 commits (versions 19, 39, ..., 99), automatic compactions (level 1 every 10 versions,
level 2 over 0..99; the replaced originals are kept), tags. "b" has other rows and its commits fall between a's.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil
import warnings
from dataclasses import dataclass

import pytest

import logstore
from logstore import checkpoint, compaction, integrity, testing
from logstore.errors import LogstoreError

from conftest import people

START = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
LATEST = 104
TAGS = {"a": {"t20": 20, "t50": 50, "t103": 103}, "b": {"t20": 21, "t50": 55, "t103": 90}}


@dataclass
class Template:
    root: str
    rows: dict  # version -> rows of table a
    times: list  # version -> commit time of table a
    history: list  # table a's history(), newest first
    old_hint: bytes  # table a's head hint as written after version 50


def _build(store, name: str, offset: dt.timedelta, first_id: int, hints: dict):
    props = {"snapshot_fraction": 1000.0, "snapshot_commits": 20}
    t = store.create_table(name, people(range(first_id, first_id + 3)), key="id", timestamp=START + offset, properties=props)
    for v in range(1, LATEST + 1):
        moment = START + offset + dt.timedelta(hours=v)
        if v % 3 == 1:
            t.append(people([first_id + 100 + v]), timestamp=moment)
        elif v % 3 == 2:
            t.update(set={"score": f"score + {v}"}, where=f"id % 2 = {v % 2}", timestamp=moment)
        else:
            t.delete(where=f"id = {first_id + 100 + v - 2}", timestamp=moment)
        if v == 50:
            hints[name] = open(os.path.join(store.path, "tables", name, "_head.json"), "rb").read()
    t.compact()
    for tag, version in TAGS[name].items():
        t.tag(tag, version)
    return t


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        import logstore.storage

        mp.setattr(logstore.storage, "_fsync", lambda path: None)
        store = logstore.init(tmp_path_factory.mktemp("replaced") / "store")
        hints: dict = {}
        a = _build(store, "a", dt.timedelta(0), 0, hints)
        _build(store, "b", dt.timedelta(minutes=30), 1000, hints)
    assert compaction.load(testing.storage(a), testing.prefix(a), 0, 99) is not None and checkpoint.exists(testing.storage(a), testing.prefix(a), 0)
    assert a.snapshots() == [19, 39, 59, 79, 99]
    rows = {v: a.read(version=v).to_pylist() for v in range(LATEST + 1)}
    times = [testing.log(a).read(v).commit.timestamp for v in range(LATEST + 1)]
    return Template(str(store.path), rows, times, a.history(), hints["a"])


@pytest.fixture
def root(template, tmp_path):
    copy = str(tmp_path / "store")
    shutil.copytree(template.root, copy)
    integrity.forget()
    return copy


# --- replacing one file ------------------------------------------------------------------------------------------


def _one(root: str, pattern) -> str:
    if callable(pattern):
        return pattern(root)
    (found,) = glob.glob(os.path.join(root, "tables", pattern))
    return found


def _log(table: str, v: int) -> str:
    return f"{table}/_log/{v:020d}.json"


def _data(table: str, v: int) -> str:
    return f"{table}/data/{v:020d}-*.parquet"


def _snap_record(table: str, v: int) -> str:
    return f"{table}/_snapshots/{v:020d}.json"


def _snap_file(table: str, v: int) -> str:
    return f"{table}/snapshots/{v:020d}-*.parquet"


def _block_record(table: str, first: int, last: int) -> str:
    return f"{table}/_compactions/{compaction.record_name(first, last)}"


def _block_file(table: str, first: int, last: int):
    """The file a block's compaction wrote for its update and delete rows (the other one holds its inserts)."""

    def find(root: str) -> str:
        record = json.load(open(_one(root, _block_record(table, first, last))))
        (f,) = [f for f in record["files"] if not f["inserts_only"] and f["path"].startswith(f"compacted/{first:020d}-")]
        return os.path.join(root, "tables", table, f["path"])

    return find


def _copy(source: str, target: str):
    def replace(root: str, template: Template) -> None:
        shutil.copyfile(_one(root, source), _one(root, target))

    return replace


def _rename(source: str, target: str):
    def replace(root: str, template: Template) -> None:
        os.replace(_one(root, source), _one(root, target))

    return replace


def _with_files(files: str, copy_record):
    """Also copy the files (pattern) the other table's record lists, under their own names: a consistent pair."""

    def replace(root: str, template: Template) -> None:
        for path in glob.glob(os.path.join(root, "tables", files)):
            shutil.copy(path, os.path.join(root, "tables", "a", os.path.basename(os.path.dirname(path))))
        copy_record(root, template)

    return replace


def _old_hint(root: str, template: Template) -> None:
    with open(os.path.join(root, "tables", "a", "_head.json"), "wb") as f:
        f.write(template.old_hint)


CASES = {
    "commit record 0 <- version 1": _copy(_log("a", 1), _log("a", 0)),
    "commit record 50 <- version 49": _copy(_log("a", 49), _log("a", 50)),
    "commit record 104 (newest) <- version 103": _copy(_log("a", 103), _log("a", LATEST)),
    "commit record 0 <- other table": _copy(_log("b", 0), _log("a", 0)),
    "commit record 50 <- other table": _copy(_log("b", 50), _log("a", 50)),
    "commit record 104 (newest) <- other table": _copy(_log("b", LATEST), _log("a", LATEST)),
    "tag t20 <- tag t50": _copy("a/_tags/t50.json", "a/_tags/t20.json"),
    "tag t50 <- other table's t50": _copy("b/_tags/t50.json", "a/_tags/t50.json"),
    "snapshot record 39 <- version 19": _copy(_snap_record("a", 19), _snap_record("a", 39)),
    "snapshot record 99 <- other table": _copy(_snap_record("b", 99), _snap_record("a", 99)),
    "snapshot file 39 <- version 19": _copy(_snap_file("a", 19), _snap_file("a", 39)),
    "snapshot file 99 <- other table": _copy(_snap_file("b", 99), _snap_file("a", 99)),
    "snapshot record and file 99 <- other table": _with_files(_snap_file("b", 99), _copy(_snap_record("b", 99), _snap_record("a", 99))),
    "checkpoint 0..99 <- other table": _copy(f"b/_checkpoints/{checkpoint.name(0)}", f"a/_checkpoints/{checkpoint.name(0)}"),
    "compaction record 0..99 <- block 0..9": _copy(_block_record("a", 0, 9), _block_record("a", 0, 99)),
    "compaction record 10..19 <- block 20..29": _copy(_block_record("a", 20, 29), _block_record("a", 10, 19)),
    "compaction record 0..99 <- other table": _copy(_block_record("b", 0, 99), _block_record("a", 0, 99)),
    "compaction record and files 0..99 <- other table": _with_files(f"b/compacted/{0:020d}-{99:020d}-*", _copy(_block_record("b", 0, 99), _block_record("a", 0, 99))),
    "compacted file 0..99 <- block 10..19": _copy(_block_file("a", 10, 19), _block_file("a", 0, 99)),
    "compacted file 10..19 <- block 20..29": _copy(_block_file("a", 20, 29), _block_file("a", 10, 19)),
    "compacted file 0..99 <- other table": _copy(_block_file("b", 0, 99), _block_file("a", 0, 99)),
    "change file 50 <- version 49 renamed": _rename(_data("a", 49), _data("a", 50)),
    "change file 103 <- version 101 renamed": _rename(_data("a", 101), _data("a", 103)),
    "head hint <- other table": _copy("b/_head.json", "a/_head.json"),
    "head hint <- older one": _old_hint,
}
# Derived data readers skip (snapshots, checkpoints, compactions whose originals are kept, hints) and files no read
# needs: every read and the write must succeed, not only refuse rightly.
SURVIVES = {
    case
    for case in CASES
    if case.split()[0] in ("snapshot", "checkpoint", "compaction", "compacted", "head") or case.startswith("change file 50 ")
}
# An older head hint is no damage: writers racing may leave a lower version there (docs/format.md, head hint), so
# verify has nothing to report.
NOT_DAMAGE = {"head hint <- older one"}


# --- the outcome of everything a reader or writer can do -------------------------------------------------------


def _outcome(call):
    """(result, None) or (None, the LogstoreError it raised)."""
    try:
        return call(), None
    except LogstoreError as e:
        return None, e


def _rows(table, **selector):
    return _outcome(lambda: table.read(**selector).to_pylist())


def _check_reads(t, template: Template) -> tuple[list[str], list[LogstoreError]]:
    """Every read of table a: right or a LogstoreError. Returns what was wrong, and the errors."""
    wrong, errors = [], []
    selectors = [({"tag": tag}, version) for tag, version in TAGS["a"].items()]
    for v in range(LATEST + 1):
        selectors += [({"version": v}, v), ({"as_of": template.times[v]}, v), ({"as_of": template.times[v] + dt.timedelta(minutes=45)}, v)]
    for selector, v in selectors:
        got, error = _rows(t, **selector)
        if got is not None and got != template.rows[v]:
            wrong.append(f"read({selector}) gave the rows of another version")
        errors += [error] if error is not None else []
    return wrong, errors


def _check_history(t, template: Template, *, survives: bool) -> list[str]:
    """history(): all of it, or a LogstoreError, or (with a warning) the part below damage at the top."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got, error = _outcome(t.history)
    if got == template.history or (got is None and not survives):
        return []
    if got is None:
        return [f"history() failed: {error}"]
    below_top = got == template.history[len(template.history) - len(got) :]
    if below_top and any(issubclass(w.category, RuntimeWarning) for w in caught):
        return []
    return [f"history() gave {len(got)} commits that are not table a's history"]


def _check_write(t, template: Template, *, survives: bool) -> list[str]:
    """A write either is refused or adds exactly one version holding the new row."""
    latest = testing.log(t).head_version()
    _, error = _outcome(lambda: t.append(people([9999]), timestamp=template.times[-1] + dt.timedelta(hours=1)))
    if error is not None:
        return [f"the write failed: {error}"] if survives else []
    after = logstore.open(testing.store(t).path).table("a")
    got, error = _rows(after, version=latest + 1)
    expected = template.rows[LATEST] + people([9999]).to_pylist()
    if latest != LATEST or (got is not None and got != expected):
        return [f"the write on top of version {latest} gave {got}"]
    return []


# make test runs one case or two of each file kind; the rest run with the stress marker (make stress)
FAST = {
    "commit record 0 <- other table",
    "commit record 104 (newest) <- version 103",
    "tag t20 <- tag t50",
    "snapshot record 39 <- version 19",
    "snapshot record and file 99 <- other table",
    "checkpoint 0..99 <- other table",
    "compaction record and files 0..99 <- other table",
    "compacted file 0..99 <- block 10..19",
    "change file 103 <- version 101 renamed",
    "head hint <- other table",
}


@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=pytest.mark.stress) for c in CASES])
def test_a_replaced_file_never_gives_a_wrong_answer(root, template, case):
    CASES[case](root, template)
    survives = case in SURVIVES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # damaged derived data is skipped with a warning
        t = logstore.open(root).table("a")
        wrong, errors = _check_reads(t, template)
        wrong += _check_history(t, template, survives=survives)
        report = logstore.open(root).table("a").verify(full=True)
        wrong += _check_write(logstore.open(root).table("a"), template, survives=survives)
    assert not wrong, wrong
    assert not (survives and errors), f"{len(errors)} reads failed, e.g. {errors[0]}"
    if case in NOT_DAMAGE:
        assert report.ok, report.problems
    else:
        assert not report.ok, f"verify found nothing wrong after: {case}"
