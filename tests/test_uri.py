"""Dataset URIs (logstore/uri.py): the public fingerprint, t.uri, read_uri, resolve_uri, stores that moved, and
what an attacker or a careless operator can do to a URI or to the store behind it."""

from __future__ import annotations

import json
import shutil
import string

import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import logstore
from logstore import codec, layout, uri
from logstore_cli.main import cli

from conftest import age_files, people


@pytest.fixture(autouse=True)
def _fast(no_fsync, monkeypatch):
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")
    monkeypatch.delenv(uri.STORES_ENV, raising=False)


def history(store: logstore.Store, name: str = "events") -> logstore.Table:
    """A table with every kind of commit and snapshots: versions 0..5."""
    t = store.create_table(name, people(range(6)), key="id", properties={"snapshot_commits": 2})
    t.append(people([10, 11]))
    t.update(set={"score": "score * 10"}, where="id < 3")
    t.delete(where="id = 4")
    t.upsert(people([1, 12], names=["one", "twelve"]))
    t.tag("v1.0")
    t.overwrite(people([1, 2, 3]))
    return t


def churn(t: logstore.Table) -> None:
    """Change the table after a URI was taken: more commits, a compaction, a vacuum removing what it can."""
    t.append(people([100, 101]))
    t.delete(where="id = 2")
    t.restore(version=0)
    t.compact()
    age_files(t._store._storage.root, 7200)
    t.vacuum(dry_run=False, older_than=0)


def test_commit_fingerprint_is_public_and_matches_the_table(store):
    t = history(store)
    for commit in t.history():
        assert commit.fingerprint is not None and len(commit.fingerprint) == 16
        assert t.fingerprint(version=commit.version) == commit.fingerprint == t.commit_info(version=commit.version).fingerprint
    done = t.append(people([50]))
    assert done.fingerprint == t.fingerprint() == t.history()[0].fingerprint
    assert t.fingerprint(tag="v1.0") == t.commit_info(tag="v1.0").fingerprint
    assert len({c.fingerprint for c in t.history()}) == len(t.history())  # every version here has other rows


def test_every_version_reads_back_exactly_after_more_commits_compaction_and_vacuum(store):
    t = history(store)
    uris = {v: t.uri(version=v) for v in range(t.version + 1)}
    expected = {v: t.read(version=v) for v in uris}
    churn(t)
    for v, text in uris.items():
        assert logstore.read_uri(text).equals(expected[v]), v
        opened, table, version = logstore.resolve_uri(text)
        assert (table.name, version) == ("events", v) and opened._storage.root == store._storage.root


def test_a_uri_names_the_number_never_the_tag_or_moment(store):
    t = history(store)
    tagged = t.uri(tag="v1.0")
    at = t.uri(as_of=t.commit_info(version=2).timestamp)
    assert tagged == t.uri(version=4) and "v1.0" not in tagged
    assert at == t.uri(version=2)
    t.delete_tag("v1.0")
    t.tag("v1.0", version=0)  # the tag moves: the URI does not
    assert logstore.read_uri(tagged).equals(t.read(version=4))
    assert t.uri() == t.uri(version=t.version)


@pytest.mark.parametrize("directory", ["plain", "with space", "hash#and?query", "100%done&x=1", "ünïcode-日本", "semi;colon+plus'quote"])
def test_paths_that_need_quoting(tmp_path, directory):
    s = logstore.init(tmp_path / directory / "store")
    t = s.create_table("t", people(range(3)))
    text = t.uri()
    body = text[len(uri.SCHEME):]
    assert body.count("#") == 1 and "?" not in body and " " not in body and text.isascii()
    assert text.startswith("logstore+file:///")
    parsed = uri.parse(text)
    assert parsed.location == str(tmp_path / directory / "store") and parsed.local
    assert str(parsed) == text
    assert logstore.read_uri(text).equals(t.read())


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1).map(lambda s: "/" + s),
    st.sampled_from(["s3://bucket/prefix", "gs://b/p?x=1#y", "az://container/a b/%41", "memory://m"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True).filter(lambda n: ".." not in n),
    st.integers(0, 10**12),
    st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
)
def test_the_grammar_round_trips_any_location(path, url, table, version, digest):
    for location, local in ((path, True), (url, False)):
        made = uri.DatasetURI(location, table, version, digest, local)
        text = str(made)
        assert text.isascii() and text.count("#") == 1 and not any(c in string.whitespace for c in text)
        assert uri.parse(text) == made


@pytest.mark.parametrize(
    "bad",
    [
        None,
        42,
        "",
        "file:///tmp/x#table=t&version=0&fingerprint=0123456789abcdef",  # no logstore+
        "logstore+file:///tmp/x",  # no fragment
        "logstore+file://relative/x#table=t&version=0&fingerprint=0123456789abcdef",
        "logstore+http://example.com/x#table=t&version=0&fingerprint=0123456789abcdef",
        "logstore+file:///tmp/x#table=t&version=0",
        "logstore+file:///tmp/x#version=0&table=t&fingerprint=0123456789abcdef",  # order
        "logstore+file:///tmp/x#table=t&version=0&fingerprint=0123456789abcdef&tag=v1",  # extra field
        "logstore+file:///tmp/x#table=t&table=u&version=0&fingerprint=0123456789abcdef",
        "logstore+file:///tmp/x#table=../x&version=0&fingerprint=0123456789abcdef",
        "logstore+file:///tmp/x#table=t&version=-1&fingerprint=0123456789abcdef",
        "logstore+file:///tmp/x#table=t&version=latest&fingerprint=0123456789abcdef",
        "logstore+file:///tmp/x#table=t&version=٣&fingerprint=0123456789abcdef",  # a non-ASCII digit
        "logstore+file:///tmp/x#table=t&version=0&fingerprint=0123456789ABCDEF",
        "logstore+file:///tmp/x#table=t&version=0&fingerprint=0123",
    ],
)
def test_malformed_uris_are_refused_naming_them(bad):
    with pytest.raises(logstore.DatasetURIError) as e:
        logstore.read_uri(bad)
    assert e.value.uri == bad and repr(bad) in str(e.value)
    assert isinstance(e.value, logstore.InvalidInputError)


def test_a_wrong_fingerprint_is_corruption_and_nothing_is_returned(store):
    t = history(store)
    text = t.uri(version=2)
    other = t.fingerprint(version=3)
    forged = text.replace(t.fingerprint(version=2), other)
    with pytest.raises(logstore.CorruptionError, match="not the data the URI was made from") as e:
        logstore.read_uri(forged)
    assert e.value.version == 2
    with pytest.raises(logstore.CorruptionError):
        logstore.resolve_uri(forged)


def test_a_version_or_table_that_does_not_exist(store):
    t = history(store)
    text = t.uri()
    with pytest.raises(logstore.VersionNotFoundError):
        logstore.read_uri(text.replace(f"version={t.version}", f"version={t.version + 1}"))
    with pytest.raises(logstore.TableNotFoundError):
        logstore.read_uri(text.replace("table=events", "table=nope"))


def test_another_store_with_a_table_of_the_same_name_is_refused(tmp_path, store):
    t = history(store)
    text = t.uri(version=1)
    twin = logstore.init(tmp_path / "twin")
    history(twin)  # the same operations in another store: other timestamps and table id, the same rows and row ids
    lookalike = logstore.init(tmp_path / "lookalike")
    lookalike.create_table("events", people(range(6)), key="id").append(people([10, 12]))  # version 1 differs
    with pytest.raises(logstore.CorruptionError):
        logstore.read_uri(text, store=lookalike)
    # the same rows under the same row ids are the same data, whatever else differs: the fingerprint says so
    assert logstore.read_uri(text, store=twin).equals(t.read(version=1))


def test_a_forged_record_carrying_the_uris_fingerprint_is_caught_by_the_rows(tmp_path, store):
    """The record check alone would pass: the attacker rewrote version 0's record of another store (other rows) to
    carry the fingerprint the URI names, with a valid checksum. The rows read do not have it."""
    t = store.create_table("events", people(range(4)), key="id")
    text = t.uri()
    other = logstore.init(tmp_path / "other")
    other.create_table("events", people(range(4), names=["a", "b", "c", "d"]), key="id")
    path = layout.join(layout.table_dir("events"), layout.log_record(0))
    raw = codec.decode(other._storage.read(path), path=path, version=0, what="commit record")
    raw["fingerprint"] = t.fingerprint()
    raw.pop("checksum", None)
    (tmp_path / "other" / path).write_bytes(codec.encode(raw))
    assert logstore.resolve_uri(text, store=tmp_path / "other")[2] == 0  # the record says what the URI says
    with pytest.raises(logstore.CorruptionError, match="rows read have fingerprint"):
        logstore.read_uri(text, store=tmp_path / "other")


def test_a_change_file_replaced_by_another_valid_one_is_refused(store):
    t = store.create_table("events", people(range(4)), key="id")
    text = t.uri()
    u = store.create_table("other", people(range(4), names=list("wxyz")), key="id")
    ours = t._files.log.read(0).files[0].path
    theirs = u._files.log.read(0).files[0].path
    root = store._storage.root
    shutil.copyfile(root / u._files.prefix / theirs, root / t._files.prefix / ours)
    with pytest.raises(logstore.CorruptionError):
        logstore.read_uri(text)


def test_a_copied_directory_resolves_with_store_or_the_environment(tmp_path, store, monkeypatch):
    t = history(store)
    text = t.uri(version=3)
    expected = t.read(version=3)
    moved = tmp_path / "moved here"
    shutil.copytree(store._storage.root, moved)
    shutil.rmtree(store._storage.root)
    with pytest.raises(logstore.StoreNotFoundError):
        logstore.read_uri(text)
    assert logstore.read_uri(text, store=moved).equals(expected)
    assert logstore.read_uri(text, store=logstore.open(moved)).equals(expected)
    monkeypatch.setenv(uri.STORES_ENV, json.dumps({str(store._storage.root) + "/": str(moved)}))
    assert logstore.read_uri(text).equals(expected)
    opened, table, version = logstore.resolve_uri(text)
    assert opened._storage.root == moved and version == 3
    monkeypatch.setenv(uri.STORES_ENV, json.dumps({"file://" + str(store._storage.root): str(moved)}))
    assert logstore.read_uri(text).equals(expected)
    monkeypatch.setenv(uri.STORES_ENV, json.dumps({"/somewhere/else": str(moved)}))  # names another store: no effect
    with pytest.raises(logstore.StoreNotFoundError):
        logstore.read_uri(text)
    monkeypatch.setenv(uri.STORES_ENV, "not json")
    with pytest.raises(logstore.InvalidInputError, match=uri.STORES_ENV):
        logstore.read_uri(text)


def test_a_pushed_remote_on_s3_resolves_and_its_own_uris_name_the_url(tmp_path, store, s3_server, s3_url, monkeypatch):
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    t = history(store)
    local_uri = t.uri(version=2)
    logstore.init(s3_url)
    store.add_remote("origin", s3_url)
    store.push()
    remote = logstore.open(s3_url).table("events")
    remote_uri = remote.uri(version=2)
    assert remote_uri.startswith(f"logstore+{s3_url}#table=events&version=2&fingerprint=")
    assert uri.parse(remote_uri).fingerprint == uri.parse(local_uri).fingerprint
    expected = t.read(version=2)
    assert logstore.read_uri(remote_uri).equals(expected)
    assert logstore.read_uri(local_uri, store=s3_url).equals(expected)
    monkeypatch.setenv(uri.STORES_ENV, json.dumps({str(store._storage.root): s3_url}))
    shutil.rmtree(store._storage.root)
    assert logstore.read_uri(local_uri).equals(expected)


def test_a_store_of_format_1_without_fingerprints_still_gets_one(store):
    """A record without a fingerprint (written before fingerprints): the URI carries one computed from the rows."""
    t = store.create_table("events", people(range(5)), key="id")
    known = t.fingerprint()
    path = layout.join(layout.table_dir("events"), layout.log_record(0))
    raw = codec.decode(store._storage.read(path), path=path, version=0, what="commit record")
    raw["fingerprint"] = None
    raw.pop("checksum", None)
    (store._storage.root / path).write_bytes(codec.encode(raw))
    fresh = logstore.open(store.path).table("events")
    assert fresh.commit_info().fingerprint is None
    assert fresh.fingerprint() == known
    assert logstore.read_uri(fresh.uri()).equals(fresh.read())


def test_a_table_without_columns(store):
    t = store.create_table("empty")
    assert logstore.read_uri(t.uri()).num_columns == 0


def test_cli_uri(tmp_path, cli_env):
    s = logstore.init(tmp_path / "my store")
    t = history(s)
    runner = CliRunner()
    base = ["--store", str(tmp_path / "my store"), "uri", "events"]
    for extra, version in (([], t.version), (["--version", "2"], 2), (["--tag", "v1.0"], 4)):
        result = runner.invoke(cli, [*base, *extra])
        assert result.exit_code == 0, result.stderr
        assert result.stdout.strip() == t.uri(version=version)
        assert logstore.read_uri(result.stdout.strip()).equals(t.read(version=version))
    at = t.commit_info(version=1).timestamp.isoformat()
    assert runner.invoke(cli, [*base, "--at", at]).stdout.strip() == t.uri(version=1)
    both = runner.invoke(cli, [*base, "--version", "1", "--tag", "v1.0"])
    assert both.exit_code == 2
    missing = runner.invoke(cli, [*base, "--version", "99"])
    assert missing.exit_code == 1 and "version 99 does not exist" in missing.stderr


def test_object_store_uri_with_a_memory_store():
    s = logstore.init("memory://lineage-uri-test/a b#c")
    t = s.create_table("t", pa.table({"x": [1, 2, 3]}))
    text = t.uri()
    assert text.startswith("logstore+memory://lineage-uri-test/a%20b%23c#table=t&version=0&")
    assert logstore.read_uri(text).equals(t.read())
