"""Remotes: named locations of other stores that push and pull (sync.py) exchange tables with.

A store keeps its remotes in one sealed record at its root, `remotes.json` (docs/format.md, "Remotes"):

    {"format_version": 1, "remotes": {"<name>": {"url": "<location>", "options": {"<key>": "<value>", ...}}},
     "checksum": ...}

`url` is anything open_storage accepts (a path, file://, s3://, gs://, az://, memory://); `options` are the
storage options to open it with, minus credentials: a key whose name contains one of SECRET_WORDS as a word (split
on `_`, `-` and `.`: `secret_access_key`, `session_token`, `access_key_id`, `account_key`, `password`, ...) is never
written. add() refuses such keys (so nobody believes a secret was saved), clone keeps only the others; credentials
come from the environment (AWS_*, GOOGLE_*, AZURE_*) or from storage_options given to each push, pull or clone.

The record is replaced as a whole (`storage.put`, atomic; not a commit record): two processes adding remotes at the
same moment may lose one of the two additions, never damage the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from . import codec, layout, names
from .errors import InvalidInputError, InvalidNameError, RemoteExistsError, RemoteNotFoundError
from .storage import OBJECT_SCHEMES

FORMAT_VERSION = 1
SECRET_WORDS = frozenset({"secret", "token", "password", "passwd", "key", "credential", "credentials", "sas"})
DEFAULT = "origin"  # the remote push and pull use when none is named (clone sets it)


@dataclass(frozen=True)
class Remote:
    """A configured remote: its name, location and the (non-secret) storage options it is opened with."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "options": dict(self.options)}


def is_secret(key: str) -> bool:
    """Whether a storage option names a credential (and so is never stored)."""
    return any(word in SECRET_WORDS for word in re.split(r"[_\-.]", key.lower()))


def public_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The storage options that may be stored: all but the secret ones."""
    return {k: v for k, v in (options or {}).items() if not is_secret(str(k))}


def check_url(url: object) -> str:
    """A remote location as a string (a local path made absolute); InvalidInputError for what cannot be one (empty,
    not text, an unknown scheme, credentials in it)."""
    try:
        text = os.fspath(url)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidInputError(url, f"a remote URL must be a path or a URL string, not {url!r}") from None
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(url, f"a remote URL must be a non-empty path or URL, not {url!r}")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("", "file", *OBJECT_SCHEMES):
        raise InvalidInputError(url, f"unsupported remote URL {text!r}: give a path, file://, s3://, gs://, az:// or memory://")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@", text):
        raise InvalidInputError(url, "a remote URL must not carry credentials (user:password@): give them through the environment or storage_options")
    return os.path.abspath(text) if scheme == "" else text  # a relative path means the same place from anywhere


class Remotes:
    """The remotes of the store whose storage is `storage`."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def all(self) -> dict[str, Remote]:
        """Every configured remote by name ({} when the store has none)."""
        return self._load()[0]

    def lazy(self) -> Remote | None:
        """The remote a lazy clone fetches its data files from (ondemand.py), None for a store holding its own."""
        known, lazy = self._load()
        return known.get(lazy) if lazy is not None else None

    def set_lazy(self, name: str) -> None:
        """Make this store a lazy clone of remote `name`: data files missing here are fetched from it when needed."""
        known, _ = self._load()
        if name not in known:
            raise RemoteNotFoundError(name, known)
        self._write(known, name)

    def _load(self) -> tuple[dict[str, Remote], str | None]:
        try:
            raw = self.storage.read(layout.REMOTES)
        except FileNotFoundError:
            return {}, None
        return codec.parse(raw, _remotes, path=layout.REMOTES, version=None, what="remotes record")

    def get(self, name: str | None) -> Remote:
        """The remote `name`; with None, 'origin' if there is one, else the only remote; RemoteNotFoundError if none."""
        known = self.all()
        if name is None:
            if DEFAULT in known:
                return known[DEFAULT]
            if len(known) == 1:
                return next(iter(known.values()))
            raise RemoteNotFoundError(None, known)
        names.check("remote", name)
        if name not in known:
            raise RemoteNotFoundError(name, known)
        return known[name]

    def add(self, name: str, url: object, options: dict[str, Any] | None = None, *, drop_secrets: bool = False) -> Remote:
        """Configure a new remote; RemoteExistsError if the name is taken. A secret option is refused
        (InvalidInputError naming it) unless `drop_secrets`, which leaves it out instead."""
        names.check("remote", name)
        text = check_url(url)
        given = dict(options or {})
        for key, value in given.items():
            if not isinstance(key, str):
                raise InvalidInputError(key, f"storage option names must be strings, not {key!r}")
            if not isinstance(value, (str, int, float, bool)):
                raise InvalidInputError(value, f"storage option {key!r} must be a string, number or boolean, not {value!r}")
        secret = sorted(k for k in given if is_secret(k))
        if secret and not drop_secrets:
            raise InvalidInputError(
                secret[0],
                f"storage option {secret[0]!r} looks like a credential and is never stored in the store: give it "
                "through the environment (AWS_*, GOOGLE_*, AZURE_*) or as storage_options to push, pull or clone",
            )
        known, lazy = self._load()
        if name in known:
            raise RemoteExistsError(name, known[name].url)
        remote = Remote(name, text, public_options(given))
        self._write({**known, name: remote}, lazy)
        return remote

    def remove(self, name: str) -> Remote:
        removed = self.get(name)
        known, lazy = self._load()
        if lazy == name:
            raise InvalidInputError(name, f"remote {name!r} holds the data files of this lazy clone; it cannot be removed")
        del known[name]
        self._write(known, lazy)
        return removed

    def _write(self, remotes: dict[str, Remote], lazy: str | None = None) -> None:
        body: dict[str, Any] = {"format_version": FORMAT_VERSION, "remotes": {n: r.to_json() for n, r in sorted(remotes.items())}}
        if lazy is not None:
            body["lazy"] = lazy
        self.storage.put(layout.REMOTES, codec.encode(body))


def _remotes(obj: dict[str, Any]) -> tuple[dict[str, Remote], str | None]:
    """The remotes of a decoded record and the remote of a lazy clone (ValueError and the like for a malformed one:
    codec turns them into CorruptionError naming the file)."""
    if int(obj["format_version"]) != FORMAT_VERSION:
        raise ValueError(f"format_version {obj['format_version']!r} is not supported")
    found = {}
    for name, entry in dict(obj["remotes"]).items():
        options = dict(entry.get("options") or {})
        try:
            names.check("remote", name)
        except InvalidNameError as e:
            raise ValueError(str(e)) from None
        found[name] = Remote(name, str(entry["url"]), options)
    lazy = obj.get("lazy")
    if lazy is not None and lazy not in found:
        raise ValueError(f"lazy names no remote ({lazy!r})")
    return found, lazy

