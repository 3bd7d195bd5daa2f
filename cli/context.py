"""Finding the store a command works on."""

from __future__ import annotations

import os
from pathlib import Path

import logstore

from .shutdown import keep

STORE_DIR = ".logstore"
MARKER = "logstore.json"


class NoStoreFoundError(logstore.StoreNotFoundError):
    """No --store, no LOGSTORE_DIR, and no `.logstore/` here or above."""

    def __init__(self, here: Path):
        self.path = str(here)
        logstore.LogstoreError.__init__(
            self,
            f"no logstore store in {self.path} or any parent directory "
            "(create one with `logstore init`, or pass --store PATH / set LOGSTORE_DIR)",
        )


class State:
    """What the group passes to every command: where the store is (found lazily) and whether --debug is on."""

    def __init__(self, store_option: str | None, debug: bool):
        self.store_option = store_option
        self.debug = debug
        self._store = None

    @property
    def store(self) -> logstore.Store:
        if self._store is None:
            self._store = logstore.open(locate_store(self.store_option))
            keep(self._store)  # its connections are not closed one by one when the command returns (shutdown.py)
        return self._store

    def table(self, name: str) -> logstore.Table:
        return self.store.table(name)


def locate_store(option: str | None, start: str | os.PathLike | None = None) -> Path | str:
    """--store PATH (or LOGSTORE_DIR, which click maps onto it); else the nearest `.logstore/` upward, like git.

    A --store directory that is not a store itself but holds a `.logstore/` means that one.
    """
    if option and "://" in option and not option.startswith("file://"):
        return option  # an object store URL (s3://, gs://, az://, memory://): opened as given
    if option:
        path = Path(option[len("file://"):] if option.startswith("file://") else option)
        if not (path / MARKER).exists() and (path / STORE_DIR / MARKER).exists():
            return path / STORE_DIR
        return path
    found = find_store(start)
    if found is None:
        raise NoStoreFoundError(Path(start or os.getcwd()).resolve())
    return found


def find_store(start: str | os.PathLike | None = None) -> Path | None:
    here = Path(start or os.getcwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / STORE_DIR
        if candidate.is_dir():
            return candidate
    return None


def init_target(path: str | None, option: str | None) -> Path | str:
    """Where `logstore init [PATH]` creates the store: PATH/.logstore, else --store/LOGSTORE_DIR (a path or an
    object store URL), else ./.logstore."""
    if path is not None:
        return Path(path) / STORE_DIR
    if option:
        return option if "://" in option else Path(option)
    return Path(os.getcwd()) / STORE_DIR

