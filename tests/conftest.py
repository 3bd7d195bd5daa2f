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
