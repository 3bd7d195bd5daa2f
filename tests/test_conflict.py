"""A writer that keeps losing the race for the next version gives up with CommitConflictError, leaving nothing."""

from __future__ import annotations

import pytest

from logstore import commit as commit_module
from logstore import testing
from logstore.errors import CommitConflictError

from conftest import file_state, people


def test_a_writer_that_always_loses_gives_up_cleanly(store, no_fsync, monkeypatch, tmp_path):
    t = store.create_table("p", people(range(3)), key="id")
    before = {k: v for k, v in file_state(tmp_path / "store").items() if not k.startswith("_staging")}
    monkeypatch.setattr(commit_module, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(commit_module, "RETRY_SECONDS", 0.0)
    monkeypatch.setattr(commit_module, "FIRST_BACKOFF", 0.0)
    monkeypatch.setattr(testing.log(t), "publish", lambda record: False)  # another writer always took the version
    with pytest.raises(CommitConflictError) as caught:
        t.update({"score": "1"}, "id = 1")
    assert caught.value.attempts == 3 and caught.value.base_version == 0 and caught.value.table == "p"
    after = {k: v for k, v in file_state(tmp_path / "store").items() if not k.startswith("_staging")}
    assert after == before  # each lost attempt removed its change file


def test_it_keeps_trying_while_the_retry_time_lasts(store, no_fsync, monkeypatch):
    t = store.create_table("p", people(range(3)), key="id")
    monkeypatch.setattr(commit_module, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(commit_module, "RETRY_SECONDS", 60.0)
    monkeypatch.setattr(commit_module, "FIRST_BACKOFF", 0.0)
    real, losses = testing.log(t).publish, []

    def lose_five_times(record):
        if len(losses) < 5:
            losses.append(record.commit.version)
            return False
        return real(record)

    monkeypatch.setattr(testing.log(t), "publish", lose_five_times)
    made = t.update({"score": "1"}, "id = 1")
    assert losses == [1] * 5 and made.version == 1
    assert {r["id"]: r["score"] for r in t.read().to_pylist()}[1] == 1.0
