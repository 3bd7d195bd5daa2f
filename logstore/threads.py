"""The process's worker threads: one pool, started on first use and kept, for work that releases the GIL (file
reads, hashing, compression, Parquet encoding, fsyncs, DuckDB queries) done beside the calling thread.

Starting threads per call costs ~1-2 ms each on two busy cores, more than the work a commit hands them. A forked
child starts a pool of its own (the parent's threads do not exist in it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

SIZE = 8  # threads; no caller keeps more than this many tasks in flight

_lock = threading.Lock()
_state: tuple[int, ThreadPoolExecutor] | None = None

T = TypeVar("T")


def pool() -> ThreadPoolExecutor:
    global _state
    with _lock:
        if _state is None or _state[0] != os.getpid():
            _state = (os.getpid(), ThreadPoolExecutor(SIZE, thread_name_prefix="logstore"))
        return _state[1]


def submit(task: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    return pool().submit(task, *args, **kwargs)


def run_all(tasks: list[Callable[[], T]]) -> list[T]:
    """Run the tasks on the pool (the last one in the calling thread); once all have finished, return their results
    in order or raise the first task's error."""
    if not tasks:
        return []
    futures = [pool().submit(task) for task in tasks[:-1]]
    try:
        last = tasks[-1]()
    finally:
        wait(futures)
    return [f.result() for f in futures] + [last]
