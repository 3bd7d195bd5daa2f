"""Shared fixtures and helpers for the core test suite."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest

import logstore


@pytest.fixture
def store(tmp_path):
    """A fresh, empty store in a temporary directory."""
    return logstore.init(tmp_path / "store")


@pytest.fixture
def no_fsync(monkeypatch):
    """Skip fsync calls: durability is not what these tests check, and it makes commits several times faster."""
    import logstore.storage

    monkeypatch.setattr(logstore.storage, "_fsync", lambda path: None)


@pytest.fixture
def cli_env(no_fsync, monkeypatch):
    """What the CLI tests run in: no fsync, a fixed author independent of the machine, no store found from the
    environment."""
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")
    monkeypatch.delenv("LOGSTORE_DIR", raising=False)


def file_state(root) -> dict[str, str]:
    """Every file under `root` (relative path -> SHA-256 of its bytes); directories are ignored."""
    root = Path(root)
    state = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = Path(dirpath) / name
            state[str(full.relative_to(root))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return state


def staging_leftovers(root) -> list[str]:
    staging = Path(root) / "_staging"
    return sorted(os.listdir(staging)) if staging.exists() else []


def people(ids, names=None, scores=None) -> pa.Table:
    """A small keyed table: id BIGINT, name VARCHAR, score DOUBLE."""
    ids = list(ids)
    names = names if names is not None else [f"n{i}" for i in ids]
    scores = scores if scores is not None else [float(i) / 2 for i in ids]
    return pa.table(
        {"id": pa.array(ids, pa.int64()), "name": pa.array(names, pa.string()), "score": pa.array(scores, pa.float64())}
    )


def age_files(root, seconds: float) -> None:
    """Set every file's modification time `seconds` into the past, as if that much time had passed (vacuum keeps
    what an in-flight writer could still publish a record for while it is younger than vacuum.IN_FLIGHT_GRACE)."""
    then = time.time() - seconds
    for path in Path(root).rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Object stores' local file caches go to a temporary directory, not the user's ~/.cache."""
    previous = os.environ.get("LOGSTORE_CACHE_DIR")
    os.environ["LOGSTORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("logstore-cache"))
    yield
    if previous is None:
        os.environ.pop("LOGSTORE_CACHE_DIR", None)
    else:
        os.environ["LOGSTORE_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on 127.0.0.1, for the whole session."""
    from s3server import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_url(s3_server, request):
    """A fresh bucket on the S3 server and the URL of a store location in it; storage options in s3_server.options()."""
    bucket = f"b{abs(hash(request.node.nodeid)) % 10**12}-{time.time_ns() % 10**9}"
    s3_server.create_bucket(bucket)
    return f"s3://{bucket}/stores/one"
