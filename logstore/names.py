"""Validation of the names users give to tables and tags: they become file names, so they must be plain."""

from __future__ import annotations

import re

from .errors import InvalidNameError

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def check(kind: str, name) -> str:
    if not isinstance(name, str) or not _PLAIN.fullmatch(name) or ".." in name:
        raise InvalidNameError(kind, name)
    return name
