"""Sealed records: the JSON files of a table, written with their checksum and read back into one kind of error.

Commit, snapshot, compaction and repair records, tags and the head hint (docs/format.md) are JSON objects carrying
`checksum`, the SHA-256 of their canonical JSON without it (integrity.seal). encode() writes one: sorted keys,
indented by one space (records written once) or on one line (`indent=None`: tags and the head hint), exactly
the bytes each kind always had. decode() and parse() read one back; whatever is wrong with it (not JSON, not an
object, a checksum that does not match, a field missing, of the wrong type or out of range while `build` turns
it into its dataclass) raises the same CorruptionError naming the file: "malformed <what> (<Type>: <message>)".
Log checkpoints have a format of their own (checkpoint.py) but report damage through `reading` as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from . import integrity
from .errors import CorruptionError

T = TypeVar("T")

# what reading a damaged record raises: json (ValueError), integrity.check_seal (ValueError), and `build` taking
# its fields apart (KeyError, TypeError, AttributeError; ValueError and OverflowError from int(), timestamps, ...)
FIELD_ERRORS = (ValueError, KeyError, TypeError, AttributeError, OverflowError)


def encode(obj: dict, *, indent: int | None = 1) -> bytes:
    """The bytes of `obj` sealed with its checksum."""
    return json.dumps(integrity.seal(obj), sort_keys=True, indent=indent).encode()


@contextmanager
def reading(path: str, version: int | None, what: str) -> Iterator[None]:
    """Turn a FIELD_ERRORS exception inside the block into CorruptionError(path, version, "malformed <what> ...")."""
    try:
        yield
    except FIELD_ERRORS as e:
        raise CorruptionError(path, version, f"malformed {what} ({type(e).__name__}: {e})") from None


def decode(raw: bytes, *, path: str, version: int | None, what: str) -> dict:
    """The JSON object stored at `path`, its checksum checked (a record without one is accepted)."""
    with reading(path, version, what):
        obj = json.loads(raw)
        integrity.check_seal(obj)
    return obj


def parse(raw: bytes, build: Callable[[dict], T], *, path: str, version: int | None, what: str) -> T:
    """`build` applied to the decoded object: the record as its dataclass."""
    obj = decode(raw, path=path, version=version, what=what)
    with reading(path, version, what):
        return build(obj)


def read(storage, path: str, build: Callable[[dict], T] | None = None, *, version: int | None, what: str):
    """parse() (or, without `build`, decode()) of the file at `path`; a missing file is a CorruptionError too."""
    try:
        raw = storage.read(path)
    except FileNotFoundError:
        raise CorruptionError(path, version, f"{what} is missing") from None
    if build is None:
        return decode(raw, path=path, version=version, what=what)
    return parse(raw, build, path=path, version=version, what=what)
